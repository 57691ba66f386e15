import type { HostDriver } from '../drivers/host-driver.js';
import { asQfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { mapLimit } from '../worker-pool.js';
import type { Clock } from './clock.js';
import type { BaseLock, ContainerLocks } from './keyed-lock.js';
import type { Known } from './observation.js';
import type { ContainerRecord, PendingOp, StateStore } from './state-store.js';

/** What recovery shares with the engine: its host, state and locks, and the steps that stop or save a container. */
export interface RecoveryContext {
  readonly driver: HostDriver;
  readonly store: StateStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly parallelism: number;
  readonly locks: ContainerLocks;
  readonly base: BaseLock;
  know(name: string): Promise<Known>;
  bringDown(rec: ContainerRecord): Promise<void>;
  removeIfPresent(name: string): Promise<void>;
  save(rec: ContainerRecord): Promise<void>;
}

/** The engine's start-up: finishes or rolls back what a crash (or a shutdown's cut) interrupted. */
export class Recovery {
  private active = false;

  constructor(private readonly ctx: RecoveryContext) {}

  /** True from the start of run() until every interrupted operation has been dealt with. */
  get running(): boolean {
    return this.active;
  }

  /**
   * Finishes or rolls back whatever a crash interrupted: a create is undone, a
   * start is rolled back to stopped, a stop or delete is completed, a console's
   * mounts are removed, a staged install is discarded. What cannot be recovered
   * stays pending and the container reports `broken` with the reason.
   *
   * The agent serves while this runs: containers waiting for recovery show as
   * `recovering` and commands on them answer busy; the others work as usual.
   * At most `parallelism` containers are recovered at once. An unusable state
   * file is left alone (the container lists as broken; delete removes it).
   */
  async run(): Promise<void> {
    const { store, log, clock, base, locks } = this.ctx;
    this.active = true;
    try {
      const stale = await store.removeStaleTemps();
      if (stale.length) log.info('removed temporary state files a crash left', { files: stale });
      await base.tryExclusive({ since: clock.now() }, () => this.discardStagedInstalls());
      const pending: ContainerRecord[] = [];
      for (const name of await store.names()) {
        const known = await this.ctx.know(name);
        if (known.kind === 'ok' && known.record.pending) pending.push(known.record);
        if (known.kind === 'unusable') log.warn('container is broken', { container: name, reason: known.reason });
      }
      await mapLimit(pending, this.ctx.parallelism, async (rec) => {
        const op = rec.pending!.op;
        try {
          await locks.run(rec.name, { op: 'recovering', since: clock.now() }, async () => {
            // Re-read under the lock: the record is the truth, not the scan's copy.
            const now = await store.read(rec.name);
            if (now?.pending) await this.recoverOne(now, now.pending.op);
          });
          log.info('recovered interrupted operation', { container: rec.name, op });
        } catch (e) {
          log.error('could not recover interrupted operation', { container: rec.name, op, error: asQfleetError(e).message });
        }
      });
    } finally {
      this.active = false;
    }
  }

  private async recoverOne(rec: ContainerRecord, op: PendingOp): Promise<void> {
    const { driver, store } = this.ctx;
    switch (op) {
      case 'create':
        await driver.unmountContainer(rec.name);
        await this.ctx.removeIfPresent(rec.name);
        await store.remove(rec.name);
        return;
      case 'start':
      case 'stop':
      case 'console':
        await this.ctx.bringDown(rec);
        await this.ctx.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
        return;
      case 'delete':
        await this.ctx.bringDown(rec);
        await this.ctx.removeIfPresent(rec.name);
        await store.remove(rec.name);
        return;
    }
  }

  private async discardStagedInstalls(): Promise<void> {
    const { driver, log } = this.ctx;
    for (const staging of await driver.layout.stagedBases()) {
      try {
        await driver.discardBase({ stagingDir: staging, release: '' });
        log.info('discarded an interrupted install', { staging });
      } catch (e) {
        log.error('could not discard an interrupted install', { staging, error: asQfleetError(e).message });
      }
    }
  }
}
