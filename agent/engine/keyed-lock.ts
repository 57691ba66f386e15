import { AbortedError } from '../errors.js';

/** What holds a container: shown by list as a transient state, and told to whoever finds it busy. */
export type BusyOp = 'creating' | 'configuring' | 'starting' | 'stopping' | 'deleting' | 'recovering' | 'console';

export interface Busy {
  readonly op: BusyOp;
  readonly since: Date;
  readonly requestId?: string;
}

/** Another operation holds the container; the caller may retry when it is done. */
export class BusyError extends AbortedError {
  constructor(readonly container: string, readonly busy: Busy) {
    super(`Error; ${container} is busy ${describeBusy(busy)}; try again when that is done.`, {
      reason: 'busy',
      fields: { container, op: busy.op, since: busy.since.toISOString(), request_id: busy.requestId },
    });
  }
}

/** "stopping since 2026-11-28T08:00:00.000Z (request 1f2e…)". */
export function describeBusy(b: Busy): string {
  return `${b.op} since ${b.since.toISOString()}${b.requestId ? ` (request ${b.requestId})` : ''}`;
}

/**
 * One holder per container. A command that finds its container held does not
 * queue behind the holder (which may be a start still waiting on an rc script,
 * for a client that has long gone): tryRun answers at once with BusyError,
 * saying what holds the container and since when. Operations on different
 * containers run in parallel. `run` waits, for the agent's own follow-up work
 * (a console's clean-up, recovery) that must happen once the holder is done.
 */
export class ContainerLocks {
  private readonly holders = new Map<string, Busy>();
  private readonly waiters = new Map<string, Array<() => void>>();

  holder(name: string): Busy | undefined {
    return this.holders.get(name);
  }

  isHeld(name: string): boolean {
    return this.holders.has(name);
  }

  async tryRun<T>(name: string, busy: Busy, fn: () => Promise<T>): Promise<T> {
    const held = this.holders.get(name);
    if (held) throw new BusyError(name, held);
    return this.hold(name, busy, fn);
  }

  async run<T>(name: string, busy: Busy, fn: () => Promise<T>): Promise<T> {
    while (this.holders.has(name)) {
      await new Promise<void>((resolve) => {
        const list = this.waiters.get(name) ?? [];
        list.push(resolve);
        this.waiters.set(name, list);
      });
    }
    return this.hold(name, busy, fn);
  }

  private async hold<T>(name: string, busy: Busy, fn: () => Promise<T>): Promise<T> {
    this.holders.set(name, busy);
    try {
      return await fn();
    } finally {
      this.holders.delete(name);
      const list = this.waiters.get(name);
      this.waiters.delete(name);
      // Every waiter re-checks; the first to run takes the container, the rest wait again.
      for (const wake of list ?? []) wake();
    }
  }
}

/**
 * The base: creates share it (each copies the template), install takes it
 * alone. Neither waits for the other: a create during an install, or an
 * install while creates copy, answers at once with what is in the way.
 */
export class BaseLock {
  private readers = 0;
  private writer: { readonly since: Date } | undefined;

  /** What tryShared would refuse, without taking the base (validate-only calls). */
  checkShared(): void {
    if (this.writer) {
      throw new AbortedError(`Error; a base install is running (since ${this.writer.since.toISOString()}); create containers when it is done.`, {
        fields: { op: 'installing', since: this.writer.since.toISOString() },
      });
    }
  }

  /** What tryExclusive would refuse, without taking the base (validate-only calls). */
  checkExclusive(): void {
    if (this.writer) {
      throw new AbortedError(`Error; another install is running (since ${this.writer.since.toISOString()}); run install again when it is done.`, {
        fields: { op: 'installing', since: this.writer.since.toISOString() },
      });
    }
    if (this.readers > 0) {
      throw new AbortedError(`Error; ${this.readers} create(s) are copying the template; run install again when they are done.`, { fields: { op: 'creating' } });
    }
  }

  async tryShared<T>(fn: () => Promise<T>): Promise<T> {
    this.checkShared();
    this.readers++;
    try { return await fn(); } finally { this.readers--; }
  }

  async tryExclusive<T>(busy: { readonly since: Date }, fn: () => Promise<T>): Promise<T> {
    this.checkExclusive();
    this.writer = busy;
    try { return await fn(); } finally { this.writer = undefined; }
  }
}
