/**
 * Runs tasks at most `limit` at a time, urgent ones before the rest, each kind
 * first come, first served. The drivers measure disk use through one (a du
 * of a batch of containers per task, du-batches.ts): the engine refreshes
 * every container's figure in the background, and a thousand measurements at
 * once would flood the host's disks and the agent's memory; a container's
 * first measurement (the Get RPC waits for it) is urgent.
 *
 * An urgent task never waits behind background work: it starts while fewer
 * than `limit` urgent tasks run, whatever else runs (background tasks run at
 * a low priority, and a busy host could hold one for long); a background task
 * starts only while fewer than `limit` tasks of either kind run.
 *
 * With `restRatio` r, after a task that is not urgent took t ms the next one
 * that is not urgent waits r·t ms: background work then takes at most
 * 1/(1+r) of the time, leaving the rest to what callers wait for.
 *
 * A task still running after `aside.afterMs` (a du of a tree of millions of
 * files may take minutes) is set aside: it no longer holds its place, so the
 * tasks behind it start (a Get waits on a first measurement). At most
 * `aside.max` tasks are aside at once; one more long task keeps its place. Its
 * rest is counted from the time it held its place.
 */
export class WorkQueue {
  /** Tasks holding their place, of either kind; `runningUrgent` of them urgent. */
  private running = 0;
  private runningUrgent = 0;
  private asideNow = 0;
  private readonly urgent: (() => void)[] = [];
  private readonly normal: (() => void)[] = [];
  /** When the next task that is not urgent may start (performance.now() ms). */
  private normalNotBefore = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limit: number,
    private readonly restRatio = 0,
    private readonly aside: { readonly afterMs: number; readonly max: number } = { afterMs: Infinity, max: 0 },
  ) {}

  run<T>(task: () => Promise<T>, urgent = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        if (urgent) this.runningUrgent++;
        const t0 = performance.now();
        let setAside = false;
        const long = Number.isFinite(this.aside.afterMs)
          ? setTimeout(() => {
              if (this.asideNow >= this.aside.max) return;
              setAside = true;
              this.asideNow++;
              this.running--;
              if (urgent) this.runningUrgent--;
              this.next();
            }, this.aside.afterMs)
          : undefined;
        let p: Promise<T>;
        try { p = task(); } catch (e) { p = Promise.reject(e); }
        p.then(resolve, reject).finally(() => {
          clearTimeout(long);
          if (setAside) {
            this.asideNow--;
          } else {
            this.running--;
            if (urgent) this.runningUrgent--;
          }
          const held = setAside ? this.aside.afterMs : performance.now() - t0;
          if (!urgent) this.normalNotBefore = performance.now() + held * this.restRatio;
          this.next();
        });
      };
      (urgent ? this.urgent : this.normal).push(start);
      this.next();
    });
  }

  /** Tasks waiting to start. */
  get waiting(): number {
    return this.urgent.length + this.normal.length;
  }

  private next(): void {
    while (this.urgent.length && this.runningUrgent < this.limit) this.urgent.shift()!();
    // Background work waits for the urgent work queued too (it could not start just now only for its own limit).
    while (this.normal.length && !this.urgent.length && this.running < this.limit) {
      const wait = this.normalNotBefore - performance.now();
      if (wait > 0) {
        // One timer at a time; its wait is bounded by restRatio times the last task's own time.
        this.timer ??= setTimeout(() => { this.timer = undefined; this.next(); }, Math.ceil(wait));
        return;
      }
      this.normal.shift()!();
    }
  }
}
