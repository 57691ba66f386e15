import { UnavailableError } from '../errors.js';

/** One mutating call the agent has taken: what it does, to which containers, and how to tell its caller if it is cut short. */
export interface Admitted {
  /** Call once the call has been answered (or its stream ended). */
  done(): void;
  /** Called, at most once, if the agent stops before the call is done: answer the caller with this error. */
  onAbandon(fn: (err: UnavailableError) => void): void;
}

export interface CallInfo {
  /** The RPC, e.g. 'Stop'. */
  readonly method: string;
  /** The containers it touches, if it names them (empty for -A or install). */
  readonly names: readonly string[];
}

/**
 * Which mutating calls the agent takes. On SIGTERM it stops taking new ones
 * (UNAVAILABLE, in words), lets those in flight finish within a bound, and
 * answers the rest before it exits: each such operation left its pending
 * marker in the container's state file, and the next start finishes or rolls
 * it back. Reads (health, list, get, version) are never refused here.
 */
export class Admission {
  private draining = false;
  private readonly inFlight = new Map<number, { info: CallInfo; abandon?: (err: UnavailableError) => void }>();
  private nextId = 0;
  private wake: (() => void) | undefined;

  get isDraining(): boolean {
    return this.draining;
  }

  admit(info: CallInfo): Admitted {
    if (this.draining) {
      throw new UnavailableError(`Error; qfleetd is shutting down and takes no new ${info.method}; run it again once the agent is back.`);
    }
    const id = this.nextId++;
    this.inFlight.set(id, { info });
    let finished = false;
    return {
      done: () => {
        if (finished) return;
        finished = true;
        this.inFlight.delete(id);
        if (this.inFlight.size === 0) this.wake?.();
      },
      onAbandon: (fn) => {
        const entry = this.inFlight.get(id);
        if (entry) entry.abandon = fn;
      },
    };
  }

  /**
   * Refuses new calls, waits up to `boundMs` for those in flight, then answers
   * each one still running with UNAVAILABLE and what happens to it next.
   * Resolves with the calls that were cut short.
   */
  async drain(boundMs: number): Promise<CallInfo[]> {
    this.draining = true;
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, boundMs);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
    }
    const cut = [...this.inFlight.values()];
    for (const { info, abandon } of cut) abandon?.(new UnavailableError(abandonedMessage(info, boundMs)));
    this.inFlight.clear();
    return cut.map((c) => c.info);
  }
}

/** What the caller of a call cut short by shutdown needs to know: it did not finish, and what the next start does with it. */
export function abandonedMessage(info: CallInfo, boundMs: number): string {
  const what = info.names.length ? `${info.method} of ${info.names.join(', ')}` : info.method;
  const next: Record<string, string> = {
    Create: 'the half-made container is removed',
    Start: 'the start is rolled back (the container ends stopped)',
    Stop: 'the stop is finished',
    Delete: 'the delete is finished',
    Install: 'the half-staged base is discarded (the installed base is unchanged; install again)',
    Console: 'the console session\'s mounts are removed',
    Exec: 'nothing further: the command was ended',
  };
  return (
    `Error; qfleetd is shutting down: the ${what} did not finish within ${Math.round(boundMs / 1000)} s. ` +
    `It stays marked in the host's state, and when the agent starts again ${next[info.method] ?? 'it is recovered'}; ` +
    'run qfleet list then to see the outcome.'
  );
}
