import type { CommandResult } from '../runner/command-runner.js';
import { WorkQueue } from './work-queue.js';

/** One du of a batch of trees: a thousand containers of a few hundred files take seconds, a huge tree may take minutes. */
export const DU_BATCH_TIMEOUT_MS = 300_000;

/**
 * nice(1)'s increment for the du batches nobody waits for: the lowest CPU
 * priority, so a background measurement (a List's first figures after a burst
 * of creates, a refresh) never takes a core from the agent's answers on a
 * small host. Linux's CFQ and BFQ take a process's I/O priority from its nice
 * value unless one is set. nice is in the base of both systems (coreutils,
 * like GNU du; FreeBSD's /usr/bin/nice).
 */
export const BACKGROUND_NICE = 19;

/** du with `args`, as a batch runs it: at once for a caller who waits (urgent), else at BACKGROUND_NICE. */
export function duArgv(args: readonly string[], urgent: boolean): string[] {
  return urgent ? ['du', ...args] : ['nice', '-n', String(BACKGROUND_NICE), 'du', ...args];
}

/**
 * The drivers' queue of du batches: one at a time, refreshes resting three
 * times their time (a quarter of the machine at most); a batch a Get waits
 * for goes beside a running refresh rather than behind it (WorkQueue). A
 * batch still running after 10 s (a batch of ordinary trees takes well under
 * a second) holds a huge tree: it is set aside so the other containers'
 * measurements go on, up to three aside at once (then at most five du at a
 * time: three aside, an urgent one and a refresh).
 */
export function duQueue(): WorkQueue {
  return new WorkQueue(1, 3, { afterMs: 10_000, max: 3 });
}

/**
 * Measures many trees per task of a WorkQueue: the callers of a moment
 * (a List that finds a thousand figures stale asks for them all at once) are
 * answered by one `measureMany` of up to `maxBatch` trees, which the drivers
 * make one du(1) where they can. A tree walk in the agent cost ~20 µs of its
 * event loop per file; du does the same in its own process, and one process
 * per batch keeps the spawns few.
 *
 * Urgent measurements (the Get RPC waits for them) are batched apart from the
 * rest (List's first measurements, refreshes) and go first, as the queue
 * orders them; a tree already waiting among the rest when it is asked for
 * urgently moves over, with its callers. `measureMany` is told which kind of
 * batch it measures (the rest run at a low priority: duArgv).
 */
export class DiskUsageBatches {
  private readonly waiting = { urgent: new Map<string, Waiter[]>(), normal: new Map<string, Waiter[]>() };
  private readonly queued = { urgent: false, normal: false };

  /**
   * `measureMany` answers each tree's bytes, or why it could not measure it
   * (that tree fails alone; one it leaves out too); a throw fails its whole batch.
   */
  constructor(
    private readonly queue: WorkQueue,
    private readonly measureMany: (roots: readonly string[], urgent: boolean) => Promise<ReadonlyMap<string, number | Error>>,
    private readonly maxBatch = 64,
  ) {}

  measure(root: string, urgent: boolean): Promise<number> {
    const kind = urgent ? 'urgent' : 'normal';
    return new Promise<number>((resolve, reject) => {
      const waiting = this.waiting[kind];
      const moved = urgent ? this.waiting.normal.get(root) : undefined;
      if (moved) this.waiting.normal.delete(root);
      const waiters = waiting.get(root) ?? [];
      waiters.push(...(moved ?? []), { resolve, reject });
      waiting.set(root, waiters);
      this.enqueue(kind);
    });
  }

  /** One task in the queue per kind at a time: it takes what waits when it starts. */
  private enqueue(kind: 'urgent' | 'normal'): void {
    if (this.queued[kind]) return;
    this.queued[kind] = true;
    void this.queue.run(() => this.batch(kind), kind === 'urgent');
  }

  private async batch(kind: 'urgent' | 'normal'): Promise<void> {
    // The rest of this turn's callers join (a List asks for its stale figures in one loop).
    await new Promise((r) => setImmediate(r));
    this.queued[kind] = false;
    const waiting = this.waiting[kind];
    const taken: [string, Waiter[]][] = [];
    for (const entry of waiting) {
      if (taken.length >= this.maxBatch) break;
      taken.push(entry);
    }
    for (const [root] of taken) waiting.delete(root);
    if (waiting.size) this.enqueue(kind);
    if (!taken.length) return;
    let sizes: ReadonlyMap<string, number | Error>;
    try {
      sizes = await this.measureMany(taken.map(([root]) => root), kind === 'urgent');
    } catch (e) {
      for (const [, waiters] of taken) for (const w of waiters) w.reject(e);
      return;
    }
    for (const [root, waiters] of taken) {
      const bytes = sizes.get(root) ?? new Error(`the disk use of ${root} could not be measured`);
      for (const w of waiters) {
        if (typeof bytes === 'number') w.resolve(bytes);
        else w.reject(bytes);
      }
    }
  }
}

interface Waiter {
  resolve(bytes: number): void;
  reject(e: unknown): void;
}

/**
 * du's answer for the trees it was given, by path: lines of "SIZE<TAB>PATH",
 * each ended by `end` (NUL with GNU du's -0, so any path reads back whole).
 * Only paths that were asked are taken; `unit` is the bytes of one SIZE.
 */
export function parseDuLines(out: string, asked: readonly string[], unit: number, end = '\0'): Map<string, number> {
  const wanted = new Set(asked);
  const sizes = new Map<string, number>();
  for (const line of out.split(end)) {
    const tab = line.indexOf('\t');
    if (tab <= 0) continue;
    const size = line.slice(0, tab);
    const path = line.slice(tab + 1);
    if (/^\d+$/.test(size) && wanted.has(path)) sizes.set(path, Number(size) * unit);
  }
  return sizes;
}

/**
 * Each asked tree's bytes from a du run, or why du gave none: its complaint
 * naming the tree (a tree deleted meanwhile), else its first.
 */
export function duAnswers(r: CommandResult, roots: readonly string[], unit: number, end = '\0'): Map<string, number | Error> {
  const got = parseDuLines(r.stdout, roots, unit, end);
  const complaints = r.stderr.split('\n').filter(Boolean);
  const out = new Map<string, number | Error>();
  for (const root of roots) {
    out.set(root, got.get(root) ?? new Error(`du did not measure ${root}: ${complaints.find((l) => l.includes(root)) ?? complaints[0] ?? 'no line for it'}`));
  }
  return out;
}
