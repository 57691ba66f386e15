import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AbortedError,
  AlreadyExistsError,
  asQfleetError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from '../errors.js';
import { isUnder, mountsByContainer, type HostDriver, type InstallSpec, type MountEntry, type ProcessTable, type ProgressSink } from '../drivers/host-driver.js';
import type { CommandSpec } from '../runner/command-runner.js';
import type { Logger } from '../log.js';
import type { Clock } from './clock.js';
import { KeyedLock, SharedExclusiveLock } from './keyed-lock.js';
import { MSG } from './messages.js';
import { validateContainerName, validateNameList, validateServiceName } from './names.js';
import { StateStore, type ContainerRecord, type PendingOp } from './state-store.js';

export type ContainerState = 'stopped' | 'running' | 'broken';

export interface ServiceView {
  readonly name: string;
  readonly running: boolean;
  readonly pids: readonly number[];
}

/** A container as the host shows it now, checked against what was asked. */
export interface ContainerView {
  readonly name: string;
  readonly state: ContainerState;
  readonly reason: string;
  readonly services: readonly ServiceView[];
  readonly mounts: readonly MountEntry[];
  readonly baseRelease: string;
  readonly createdAt: Date;
  readonly diskUsageBytes: number;
  readonly path: string;
}

export type Outcome = 'started' | 'bypassed' | 'already-started' | 'stopped' | 'already-stopped' | 'deleted' | 'failed';

export interface ContainerResult {
  readonly name: string;
  readonly outcome: Outcome;
  readonly message: string;
}

/** Which containers a start/stop/delete targets: some names, or every one (-A). */
export interface Selection {
  readonly names: readonly string[];
  readonly all: boolean;
}

export interface EngineOptions {
  readonly driver: HostDriver;
  readonly store: StateStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** Between SIGTERM and SIGKILL when stopping; qchroot leaves this to rc.d. */
  readonly stopGraceMs?: number;
  /** How many containers start/stop/observe at once. */
  readonly parallelism?: number;
}

export interface InstallOutcome {
  readonly baseRelease: string;
  readonly notes: readonly string[];
}

/** An interactive session's command plus what must happen when it ends. */
export interface ExecSession {
  readonly spec: CommandSpec;
  /** Call exactly once when the command has exited. */
  end(): Promise<void>;
}

const DEFAULT_GRACE_MS = 10_000;
const DISK_USAGE_TTL_MS = 60_000;

/**
 * qchroot's semantics, host-agnostic. The engine owns names, state files,
 * locks and recovery; everything that touches the host goes through the driver.
 *
 * State model: the state file records what was asked (desired, services that
 * were started, an in-flight operation); the mount and process tables say what
 * is. A container whose host state disagrees with its file is `broken`, with
 * the reason, and stop/delete still work on it.
 */
export class Engine {
  private readonly driver: HostDriver;
  private readonly store: StateStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly graceMs: number;
  private readonly parallelism: number;
  private readonly locks = new KeyedLock();
  private readonly base = new SharedExclusiveLock();
  private readonly usage = new Map<string, { bytes: number; at: number; pending?: Promise<number> }>();
  /** Containers with an open console session (qchroot console needs them stopped). */
  private readonly consoles = new Set<string>();

  constructor(opts: EngineOptions) {
    this.driver = opts.driver;
    this.store = opts.store;
    this.clock = opts.clock;
    this.log = opts.log;
    this.graceMs = opts.stopGraceMs ?? DEFAULT_GRACE_MS;
    this.parallelism = Math.max(1, opts.parallelism ?? 8);
  }

  get hostDriver(): HostDriver {
    return this.driver;
  }

  // --- start-up -----------------------------------------------------------

  /**
   * Finishes or rolls back whatever a crash interrupted: a create is undone, a
   * start is rolled back to stopped, a stop or delete is completed, a console's
   * mounts are removed, a staged install is discarded. What cannot be recovered
   * stays pending and the container reports `broken` with the reason.
   */
  async recover(): Promise<void> {
    await this.discardStagedInstalls();
    for (const name of this.store.names()) {
      const rec = this.store.read(name);
      if (!rec?.pending) continue;
      const op = rec.pending.op;
      try {
        await this.locks.run(name, () => this.recoverOne(rec, op));
        this.log.info('recovered interrupted operation', { container: name, op });
      } catch (e) {
        this.log.error('could not recover interrupted operation', { container: name, op, error: asQfleetError(e).message });
      }
    }
  }

  private async recoverOne(rec: ContainerRecord, op: PendingOp): Promise<void> {
    switch (op) {
      case 'create':
        await this.driver.unmountContainer(rec.name);
        await this.removeIfPresent(rec.name);
        this.store.remove(rec.name);
        return;
      case 'start':
      case 'stop':
      case 'console':
        await this.bringDown(rec);
        this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
        return;
      case 'delete':
        await this.bringDown(rec);
        await this.removeIfPresent(rec.name);
        this.store.remove(rec.name);
        return;
    }
  }

  private async removeIfPresent(name: string): Promise<void> {
    if (existsSync(this.driver.layout.containerRoot(name))) await this.driver.removeContainer(name);
  }

  private async discardStagedInstalls(): Promise<void> {
    const staging = this.driver.layout.stagingDir;
    if (!existsSync(staging)) return;
    for (const entry of readdirSync(staging)) {
      try {
        await this.driver.discardBase({ stagingDir: join(staging, entry), release: '' });
        this.log.info('discarded an interrupted install', { staging: join(staging, entry) });
      } catch (e) {
        this.log.error('could not discard an interrupted install', { staging: join(staging, entry), error: asQfleetError(e).message });
      }
    }
  }

  // --- install --------------------------------------------------------------

  async install(spec: InstallSpec, force: boolean, progress: ProgressSink): Promise<InstallOutcome> {
    return this.base.exclusive(async () => {
      const host = await this.driver.facts();
      const prepared = await this.driver.prepareBase(spec, progress);
      if (!this.driver.releasesMatch(host.release, prepared.release) && !force) {
        await this.driver.discardBase(prepared);
        throw new FailedPreconditionError(
          `Error; the base is ${prepared.release} but this host runs ${host.release}. ` +
            'qchroot requires the host and sharedfs to run the same release: upgrade the host first, or install with --force.',
        );
      }
      try {
        const { notes } = await this.driver.activateBase(prepared, progress);
        this.log.info('installed base', { release: prepared.release, notes });
        return { baseRelease: prepared.release, notes };
      } catch (e) {
        await this.driver.discardBase(prepared).catch(() => undefined);
        throw e;
      }
    });
  }

  // --- create / configure ------------------------------------------------------

  async create(rawName: unknown, requestId?: string): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    const created = await this.base.shared(() =>
      this.locks.run(name, async () => {
        if (this.store.read(name)) throw new AlreadyExistsError(`Error; chroot container ${name} already exists.`);
        if (existsSync(this.driver.layout.containerRoot(name))) {
          throw new AlreadyExistsError(
            `Error; ${this.driver.layout.containerRoot(name)} already exists but has no state file; move it away before creating ${name}.`,
          );
        }
        const baseRelease = await this.driver.installedRelease();
        if (!baseRelease) throw new FailedPreconditionError('Error; no base is installed on this host: run qfleet install first.');
        const rec: ContainerRecord = {
          version: 1,
          name,
          services: [],
          createdAt: this.clock.now().toISOString(),
          baseRelease,
          desired: 'stopped',
          startedServices: [],
          pending: this.pending('create', requestId),
        };
        this.save(rec);
        try {
          await this.driver.createContainer(name);
        } catch (e) {
          await this.removeIfPresent(name).catch((re) =>
            this.log.error('could not clean up a failed create', { container: name, error: asQfleetError(re).message }),
          );
          this.store.remove(name);
          throw e;
        }
        this.save({ ...rec, pending: undefined });
        this.log.info('created container', { container: name, requestId });
        return name;
      }),
    );
    return this.get(created);
  }

  async configure(rawName: unknown, rawServices: readonly unknown[], requestId?: string): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    const services = validateNameList(rawServices, validateServiceName, 'service');
    await this.locks.run(name, async () => {
      const rec = this.mustRead(name);
      const missing: string[] = [];
      for (const s of services) if (!(await this.driver.hasServiceScript(name, s))) missing.push(s);
      if (missing.length > 0) {
        throw new FailedPreconditionError(
          `Error; ${name} has no rc script for ${missing.join(', ')}: install the service in the container first (qfleet console ${name}).`,
        );
      }
      this.save({ ...rec, services });
      this.log.info('configured services', { container: name, services, requestId });
    });
    return this.get(name);
  }

  // --- list / get ----------------------------------------------------------------

  async list(): Promise<ContainerView[]> {
    // The mount and process tables are read once per call, not once per container.
    const [mounts, procs] = await Promise.all([this.driver.mounts(), this.driver.processTable()]);
    const mountsOf = mountsByContainer(mounts, this.driver.layout.containersDir);
    const names = this.store.names();
    return mapLimit(names, this.parallelism, async (n) => {
      const rec = this.store.read(n);
      return rec ? this.observe(rec, mountsOf.get(n) ?? [], procs) : undefined;
    }).then((views) => views.filter((v): v is ContainerView => v !== undefined));
  }

  async get(rawName: unknown): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    return this.observe(this.mustRead(name), await this.driver.mounts());
  }

  /** Compares the state file with the mount and process tables (the process table is read if not given). */
  private async observe(rec: ContainerRecord, table: readonly MountEntry[], procs?: ProcessTable): Promise<ContainerView> {
    procs ??= await this.driver.processTable();
    const root = this.driver.layout.containerRoot(rec.name);
    const mounts = table.filter((m) => isUnder(m.target, root));
    const mounted = new Set(mounts.map((m) => m.target));
    const probeNames = rec.desired === 'running' ? rec.startedServices : rec.services;
    const services: ServiceView[] = [];
    const problems: string[] = [];
    const exists = existsSync(root);
    if (!exists) problems.push(`its directory ${root} is missing`);

    if (rec.desired === 'running' && exists) {
      const missing = this.driver.expectedMounts(rec.name).filter((t) => !mounted.has(t));
      if (missing.length) problems.push(`not mounted: ${missing.join(', ')}`);
    }
    for (const s of probeNames) {
      const probe = rec.desired === 'running' && exists && problems.length === 0
        ? await this.driver.probeService(rec.name, s, procs).catch(() => ({ running: false, pids: [] as number[] }))
        : { running: false, pids: [] as number[] };
      services.push({ name: s, running: probe.running, pids: probe.pids });
      if (rec.desired === 'running' && problems.length === 0 && !probe.running) problems.push(`service ${s} is not running`);
    }
    for (const s of rec.services) if (!probeNames.includes(s)) services.push({ name: s, running: false, pids: [] });

    if (rec.desired === 'stopped' && !this.consoles.has(rec.name)) {
      if (mounts.length) problems.push(`stopped but still mounted: ${mounts.map((m) => m.target).join(', ')}`);
      const pids = exists ? procs.pidsIn(rec.name) : [];
      if (pids.length) problems.push(`stopped but processes still run in it: ${pids.join(' ')}`);
    }
    if (rec.pending && !this.locks.isHeld(rec.name)) {
      problems.unshift(`an interrupted ${rec.pending.op} (${rec.pending.since}) was not recovered`);
    }

    const state: ContainerState = problems.length ? 'broken' : rec.desired;
    const diskUsageBytes = exists ? await this.diskUsage(rec.name) : 0;
    return {
      name: rec.name,
      state,
      reason: problems.join('; '),
      services,
      mounts,
      baseRelease: rec.baseRelease,
      createdAt: new Date(rec.createdAt),
      diskUsageBytes,
      path: root,
    };
  }

  /**
   * Disk use changes slowly and measuring it walks the whole tree, so List and
   * Get reuse a figure younger than DISK_USAGE_TTL_MS; a stale one is returned
   * at once while a fresh one is measured in the background.
   */
  private async diskUsage(name: string): Promise<number> {
    const now = this.clock.now().getTime();
    const cached = this.usage.get(name);
    const measure = () => {
      const p = this.driver.diskUsage(name).catch(() => cached?.bytes ?? 0);
      this.usage.set(name, { bytes: cached?.bytes ?? 0, at: now, pending: p });
      return p.then((bytes) => {
        this.usage.set(name, { bytes, at: this.clock.now().getTime() });
        return bytes;
      });
    };
    if (!cached) return measure();
    if (now - cached.at > DISK_USAGE_TTL_MS && !cached.pending) void measure();
    return cached.bytes;
  }

  // --- start / stop ----------------------------------------------------------------

  async start(sel: Selection, requestId?: string): Promise<ContainerResult[]> {
    const names = this.select(sel);
    return mapLimit(names, this.parallelism, (name) =>
      this.locks.run(name, () => this.startOne(name, requestId)).catch((e) => failed(name, e)),
    );
  }

  private async startOne(name: string, requestId?: string): Promise<ContainerResult> {
    const rec = this.mustRead(name);
    if (rec.services.length === 0) return { name, outcome: 'bypassed', message: MSG.bypassed };
    if (this.consoles.has(name)) throw new AbortedError(`Error; a console session is open on ${name}; exit it first.`);
    const view = await this.observe(rec, await this.driver.mounts());
    if (view.state === 'running') return { name, outcome: 'already-started', message: MSG.alreadyStarted };
    if (rec.desired === 'stopped' && view.state === 'broken') {
      throw new FailedPreconditionError(`Error; ${name} is broken (${view.reason}); stop it to clean up, then start it.`);
    }

    // Broken-while-running (e.g. after a reboot) is repaired by mounting and starting what is missing.
    const started: ContainerRecord = { ...rec, desired: 'running', startedServices: rec.services, pending: this.pending('start', requestId) };
    this.save(started);
    try {
      await this.driver.mountContainer(name);
      for (const s of rec.services) {
        if ((await this.driver.probeService(name, s)).running) continue;
        await this.driver.startService(name, s);
        if (!(await this.driver.probeService(name, s)).running) {
          throw new FailedPreconditionError(`service ${s} did not stay running after its rc script started it`);
        }
      }
    } catch (e) {
      const err = asQfleetError(e);
      this.log.error('start failed; rolling back', { container: name, error: err.message, requestId });
      try {
        await this.bringDown(started);
        this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
      } catch (re) {
        this.log.error('rollback of a failed start failed', { container: name, error: asQfleetError(re).message });
        this.save({ ...started, pending: undefined });
      }
      return { name, outcome: 'failed', message: `Error; ${stripError(err.message)}` };
    }
    this.save({ ...started, pending: undefined });
    this.log.info('started container', { container: name, services: rec.services, requestId });
    return { name, outcome: 'started', message: MSG.started };
  }

  async stop(sel: Selection, graceMs: number | undefined, requestId?: string): Promise<ContainerResult[]> {
    const names = this.select(sel);
    return mapLimit(names, this.parallelism, (name) =>
      this.locks.run(name, () => this.stopOne(name, graceMs ?? this.graceMs, requestId)).catch((e) => failed(name, e)),
    );
  }

  private async stopOne(name: string, graceMs: number, requestId?: string): Promise<ContainerResult> {
    const rec = this.mustRead(name);
    if (this.consoles.has(name)) throw new AbortedError(`Error; a console session is open on ${name}; exit it first.`);
    const view = await this.observe(rec, await this.driver.mounts());
    if (view.state === 'stopped') {
      return rec.services.length === 0
        ? { name, outcome: 'bypassed', message: MSG.bypassed }
        : { name, outcome: 'already-stopped', message: MSG.alreadyStopped };
    }
    this.save({ ...rec, pending: this.pending('stop', requestId) });
    try {
      await this.bringDown(rec, graceMs);
    } catch (e) {
      // Leave desired=stopped so the container shows as broken with what is left mounted or running.
      this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
      throw e;
    }
    this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
    this.log.info('stopped container', { container: name, requestId });
    return { name, outcome: 'stopped', message: MSG.stopped };
  }

  /**
   * Stops the started services through their rc scripts (in reverse order),
   * then SIGTERM to whatever is still rooted in the container, SIGKILL after the
   * grace period, then unmounts. Each step runs even if an earlier one failed.
   */
  private async bringDown(rec: ContainerRecord, graceMs = this.graceMs): Promise<void> {
    const name = rec.name;
    if (!existsSync(this.driver.layout.containerRoot(name))) return;
    for (const s of [...new Set([...rec.startedServices, ...rec.services])].reverse()) {
      try {
        if ((await this.driver.probeService(name, s)).running) await this.driver.stopService(name, s);
      } catch (e) {
        this.log.warn('rc stop failed; will signal the processes', { container: name, service: s, error: asQfleetError(e).message });
      }
    }
    let pids = await this.driver.processesIn(name);
    if (pids.length) {
      await this.driver.signalProcesses(pids, 'SIGTERM');
      const deadline = this.clock.now().getTime() + graceMs;
      while ((pids = await this.driver.processesIn(name)).length && this.clock.now().getTime() < deadline) {
        await this.clock.sleep(Math.min(200, Math.max(10, graceMs / 20)));
      }
      if (pids.length) {
        this.log.warn('processes ignored SIGTERM; sending SIGKILL', { container: name, pids });
        await this.driver.signalProcesses(pids, 'SIGKILL');
        for (let i = 0; i < 50 && (await this.driver.processesIn(name)).length; i++) await this.clock.sleep(100);
      }
    }
    await this.driver.unmountContainer(name);
  }

  // --- delete --------------------------------------------------------------------

  async delete(sel: Selection, requestId?: string): Promise<ContainerResult[]> {
    const names = this.select(sel);
    // All preconditions first: a delete -A that would hit a running container deletes nothing.
    const [mounts, procs] = await Promise.all([this.driver.mounts(), this.driver.processTable()]);
    const busy: string[] = [];
    for (const name of names) {
      if (this.consoles.has(name)) { busy.push(`${name} (console open)`); continue; }
      const view = await this.observe(this.mustRead(name), mounts, procs);
      const pids = view.state === 'running' ? [] : procs.pidsIn(name);
      if (view.state === 'running') busy.push(`${name} (running)`);
      else if (pids.length) busy.push(`${name} (processes ${pids.join(' ')})`);
    }
    if (busy.length) {
      throw new FailedPreconditionError(`Error; stop these chroot containers before deleting: ${busy.join(', ')}. Nothing was deleted.`);
    }
    const results: ContainerResult[] = [];
    for (const name of names) {
      results.push(await this.locks.run(name, () => this.deleteOne(name, requestId)).catch((e) => failed(name, e)));
    }
    return results;
  }

  private async deleteOne(name: string, requestId?: string): Promise<ContainerResult> {
    const rec = this.mustRead(name);
    // Checked again under the lock: a start or console may have taken the container since delete's first check.
    if (this.consoles.has(name)) throw new FailedPreconditionError(`Error; a console session was opened on ${name}; nothing was deleted.`);
    if ((await this.observe(rec, await this.driver.mounts())).state === 'running') {
      throw new FailedPreconditionError(`Error; ${name} was started since the check; stop it first.`);
    }
    if ((await this.driver.processesIn(name)).length) {
      throw new FailedPreconditionError(`Error; processes started in ${name} since the check; stop it first.`);
    }
    this.save({ ...rec, pending: this.pending('delete', requestId) });
    // Unmount what a broken container left; removeContainer re-checks and refuses if anything stays mounted.
    await this.driver.unmountContainer(name);
    await this.removeIfPresent(name);
    this.store.remove(name);
    this.usage.delete(name);
    this.log.info('deleted container', { container: name, requestId });
    return { name, outcome: 'deleted', message: MSG.deleted };
  }

  // --- exec / console ----------------------------------------------------------------

  /** A command in a started container. */
  async exec(rawName: unknown, argv: readonly string[], opts: { tty: boolean; env: Record<string, string>; rows?: number; cols?: number }): Promise<ExecSession> {
    const name = validateContainerName(rawName);
    if (argv.length === 0) throw new InvalidArgumentError('Error; exec needs a command to run.');
    const view = await this.get(name);
    if (view.state !== 'running') {
      throw new FailedPreconditionError(`Error; ${name} is ${view.state}${view.reason ? ` (${view.reason})` : ''}; exec needs a started chroot.`);
    }
    const spec = this.driver.execSpec(name, { argv, tty: opts.tty, console: false, env: opts.env, rows: opts.rows, cols: opts.cols });
    return { spec, end: async () => undefined };
  }

  /**
   * qchroot console: the container must be stopped; it is mounted for the
   * session and everything started in it is stopped and unmounted at the end.
   */
  async console(
    rawName: unknown,
    opts: { tty: boolean; env: Record<string, string>; rows?: number; cols?: number },
    requestId?: string,
  ): Promise<ExecSession> {
    const name = validateContainerName(rawName);
    const rec = await this.locks.run(name, async () => {
      const r = this.mustRead(name);
      if (this.consoles.has(name)) throw new AbortedError(`Error; a console session is already open on ${name}.`);
      const view = await this.observe(r, await this.driver.mounts());
      if (view.state !== 'stopped') {
        throw new FailedPreconditionError(
          `Error; ${name} is ${view.state}; qchroot console needs a stopped chroot (use qfleet exec ${name} -- sh on a started one).`,
        );
      }
      this.save({ ...r, pending: this.pending('console', requestId) });
      this.consoles.add(name);
      try {
        await this.driver.mountContainer(name);
      } catch (e) {
        this.consoles.delete(name);
        await this.driver.unmountContainer(name).catch(() => undefined);
        this.save({ ...r, pending: undefined });
        throw e;
      }
      return r;
    });
    const spec = this.driver.execSpec(name, { argv: [], tty: opts.tty, console: true, env: opts.env, rows: opts.rows, cols: opts.cols });
    let ended = false;
    return {
      spec,
      end: async () => {
        if (ended) return;
        ended = true;
        await this.locks.run(name, async () => {
          try {
            await this.bringDown({ ...rec, startedServices: [], services: [] });
            this.save({ ...this.mustRead(name), pending: undefined });
          } finally {
            this.consoles.delete(name);
          }
        });
      },
    };
  }

  // --- helpers ----------------------------------------------------------------------

  /** Resolves a selection to existing names: invalid names fail as a whole, before any work. */
  private select(sel: Selection): string[] {
    if (sel.all && sel.names.length) throw new InvalidArgumentError('Error; give container names or -A (all), not both.');
    if (sel.all) return this.store.names();
    if (sel.names.length === 0) throw new InvalidArgumentError('Error; name at least one chroot container, or use -A for all.');
    const names = validateNameList(sel.names, validateContainerName, 'chroot container');
    const unknown = names.filter((n) => !this.store.read(n));
    if (unknown.length) throw new NotFoundError(`Error; no such chroot container: ${unknown.join(', ')}.`);
    return names;
  }

  private mustRead(name: string): ContainerRecord {
    const rec = this.store.read(name);
    if (!rec) throw new NotFoundError(`Error; no such chroot container: ${name}.`);
    return rec;
  }

  private save(rec: ContainerRecord): void {
    const { pending, ...rest } = rec;
    this.store.write(pending ? { ...rest, pending } : (rest as ContainerRecord));
  }

  private pending(op: PendingOp, requestId?: string): ContainerRecord['pending'] {
    return { op, since: this.clock.now().toISOString(), ...(requestId ? { requestId } : {}) };
  }
}

function failed(name: string, e: unknown): ContainerResult {
  return { name, outcome: 'failed', message: `Error; ${stripError(asQfleetError(e).message)}` };
}

function stripError(message: string): string {
  return message.replace(/^Error;\s*/, '');
}

/** Runs fn over items with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
