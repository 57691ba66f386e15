import type { ServiceProbe } from './host-driver.js';

/** How long an answer is used as it is; after that it is still given once more while a fresh one is asked for. */
export const PROBE_MAX_AGE_MS = 60_000;

interface Entry {
  readonly probe: ServiceProbe;
  /** The container's processes (ProcessTable.fingerprint) in the table read before the probe. */
  readonly fingerprint: string;
  readonly at: number;
}

/**
 * A service's status changes only with the processes in its container: an rc
 * script's status looks for its daemon. So the answer to a status probe holds
 * while the container's processes are exactly the ones (pid and start time)
 * the process table showed just before the probe: one that starts, exits or
 * is replaced shows as a different fingerprint at the next List, and the
 * script is asked again. The fingerprint comes from the table read *before*
 * the probe, so a change during the probe is caught the next time too.
 *
 * This spares running every started container's status script at every List
 * (a process spawn each: about 3 s per List with 50 running on a small host).
 * An answer older than maxAgeMs is still given, once, while the script is
 * asked again in the background (one at a time, so a List never waits on a
 * burst of spawns), for a status that looks at more than processes.
 */
export class ProbeMemo {
  private readonly entries = new Map<string, Entry>();
  private refreshing = false;

  constructor(private readonly now: () => number = Date.now, private readonly maxAgeMs = PROBE_MAX_AGE_MS) {}

  /**
   * The answer for `service` in container `name`: from `ask` (the status script), or the memo
   * when the container's processes now (`fingerprint`, e.g. ProcessTable.fingerprint of a table
   * read just before) are those the memo's answer went with. Without a fingerprint, it asks.
   */
  async probe(name: string, service: string, fingerprint: string | undefined, ask: () => Promise<ServiceProbe>): Promise<ServiceProbe> {
    const key = `${name}\0${service}`;
    if (fingerprint === undefined) {
      // Asked without a table (start, stop): the answer is fresh, but nothing says which processes it goes with.
      this.entries.delete(key);
      return ask();
    }
    const hit = this.entries.get(key);
    if (hit && hit.fingerprint === fingerprint) {
      if (this.now() - hit.at > this.maxAgeMs && !this.refreshing) this.refresh(key, hit, ask);
      return hit.probe;
    }
    this.entries.delete(key);
    const probe = await ask();
    this.entries.set(key, { probe, fingerprint, at: this.now() });
    return probe;
  }

  /** Drops what is known about a container's services (it was removed). */
  forget(name: string): void {
    for (const key of this.entries.keys()) if (key.startsWith(`${name}\0`)) this.entries.delete(key);
  }

  private refresh(key: string, hit: Entry, ask: () => Promise<ServiceProbe>): void {
    this.refreshing = true;
    ask().then(
      (probe) => { if (this.entries.get(key) === hit) this.entries.set(key, { probe, fingerprint: hit.fingerprint, at: this.now() }); },
      () => { if (this.entries.get(key) === hit) this.entries.delete(key); },
    ).finally(() => { this.refreshing = false; });
  }
}
