/**
 * One mutex per key (container name): operations on one container queue up,
 * operations on different containers run in parallel. Also a shared/exclusive
 * mode for the base: creates share it, install takes it alone.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly held = new Set<string>();

  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    this.held.add(key);
    try {
      return await fn();
    } finally {
      this.held.delete(key);
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** Many readers or one writer; writers wait for readers to drain and block new ones. */
export class SharedExclusiveLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: Array<{ exclusive: boolean; go: () => void }> = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try { return await fn(); } finally { this.readers--; this.pump(); }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try { return await fn(); } finally { this.writer = false; this.pump(); }
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((go) => {
      this.waiting.push({ exclusive, go });
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (next.exclusive ? this.writer || this.readers > 0 : this.writer) return;
      this.waiting.shift();
      if (next.exclusive) this.writer = true; else this.readers++;
      next.go();
      if (next.exclusive) return;
    }
  }
}
