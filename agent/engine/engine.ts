import {
  AbortedError,
  AlreadyExistsError,
  asQfleetError,
  InternalError,
  FailedPreconditionError,
  InvalidArgumentError,
  type ErrorFields,
  type Reason,
} from '../errors.js';
import {
  hostPathKind,
  type DriverCapabilities, type InstallMethodName, type HostDriver, type HostFacts, type InstallSpec, type MountEntry, type ProcessTable, type ProgressSink,
} from '../drivers/host-driver.js';
import type { CommandRunner } from '../runner/command-runner.js';
import type { Logger } from '../log.js';
import type { Clock } from './clock.js';
import { BaseLock, BusyError, ContainerLocks, describeBusy, type Busy, type BusyOp } from './keyed-lock.js';
import { MSG, PLAN } from './messages.js';
import { validateContainerName, validateNameList, validateServiceName } from './names.js';
import { CorruptStateError, StateStore, type ContainerRecord, type PendingOp } from './state-store.js';
import { mapLimit } from '../worker-pool.js';
import { resolveInstallSpec } from './install-spec.js';
import { FIRST_DISK_WAIT_MS, notFound, Observation, type ContainerState, type ContainerView, type Known } from './observation.js';
import { Recovery } from './recovery.js';
import { Sessions, type ExecSession } from './sessions.js';
import { LEGACY_CONFIG, type ContainerConfig, type ContainerRef, type IsolationMode } from '../drivers/container-config.js';
import { normalizeConfig, patchConfig, stoppedOnlyChanges, type ConfigInput } from './container-config-check.js';

export type { ExecSession } from './sessions.js';

export type { ContainerState, ContainerView, ServiceView } from './observation.js';

/** 'would-change' answers a validate-only call only: the call would change the container (the message says how). */
export type Outcome = 'started' | 'bypassed' | 'already-started' | 'stopped' | 'already-stopped' | 'deleted' | 'failed' | 'would-change';

export interface ContainerResult {
  readonly name: string;
  readonly outcome: Outcome;
  readonly message: string;
  /** The state the engine found the container in when it decided; absent when it did not need to look. */
  readonly state?: ContainerState;
  /** Why it failed (outcome 'failed'), as errors say it. */
  readonly error?: { readonly reason: Reason; readonly fields: Readonly<Record<string, string>> };
}

/**
 * validateOnly: run the checks the call makes (the same code, up to the first
 * change) and answer what it would do. No lock is taken (one another operation
 * holds refuses it as it would the call), nothing is written, mounted or spawned.
 */
export interface RunOptions {
  readonly validateOnly?: boolean;
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
  /**
   * Spawns exec and console sessions (the driver runs its own commands through
   * the same runner). Without one, sessions are refused: an engine that only
   * lists and changes containers (a test, a benchmark) needs none.
   */
  readonly runner?: CommandRunner;
  /** Between SIGTERM and SIGKILL when stopping; qchroot leaves this to rc.d. */
  readonly stopGraceMs?: number;
  /** How many containers start/stop/observe/recover at once. */
  readonly parallelism?: number;
  /** The isolation create uses when asked for none; default: the driver's (namespaces on Linux, jail on FreeBSD). */
  readonly defaultIsolation?: IsolationMode;
  /** Get's wait for a first disk-use measurement, at most; default FIRST_DISK_WAIT_MS. */
  readonly firstDiskWaitMs?: number;
}

/** A change `qfleet config` asks for: the fields named in `mask` (ConfigureRequest.update_mask), from `config`. */
export interface ConfigPatch {
  readonly mask: readonly string[];
  readonly config: ConfigInput;
}

/** Why delete leaves a container alone; `busy` when only time (another operation finishing) stands in the way. */
interface Refusal {
  readonly why: string;
  readonly busy: boolean;
}

export interface InstallOutcome {
  readonly baseRelease: string;
  readonly notes: readonly string[];
}

/** What Version reports of the host, its driver and its base. */
export interface HostVersion {
  readonly driver: HostDriver['name'];
  readonly facts: HostFacts;
  readonly capabilities: DriverCapabilities;
  /** Release of the installed base; undefined before install. */
  readonly baseRelease: string | undefined;
  /** Why the installed base is behind the host's running kernel, if it is. */
  readonly baseBehind: string | undefined;
  readonly rootDir: string;
}

/** Where the installed base lives, for what Install reports. */
export interface BasePaths {
  readonly rootDir: string;
  readonly sharedfs: string;
  readonly template: string;
}

const DEFAULT_GRACE_MS = 10_000;
/** The longest stop grace period an operator may ask for: an hour (qfleet stop --grace 3600). */
export const MAX_GRACE_MS = 3_600_000;

/**
 * qchroot's semantics, host-agnostic. The engine owns names, state files,
 * locks and recovery; everything that touches the host goes through the driver,
 * and state files only through the store. Here: the operations that change
 * containers; beside it, observation.ts (list, get), recovery.ts (start-up) and
 * sessions.ts (exec, console).
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
  private readonly defaultIsolation: IsolationMode | undefined;
  private readonly locks = new ContainerLocks();
  private readonly base = new BaseLock();
  /** Containers with an open console session (qchroot console needs them stopped). */
  private readonly consoles = new Set<string>();
  private readonly observation: Observation;
  private readonly recovery: Recovery;
  /** Exec and console sessions: prepared here (exec/console below), spawned and cleaned up there. */
  readonly sessions: Sessions;

  constructor(opts: EngineOptions) {
    this.driver = opts.driver;
    this.store = opts.store;
    this.clock = opts.clock;
    this.log = opts.log;
    this.graceMs = opts.stopGraceMs ?? DEFAULT_GRACE_MS;
    this.parallelism = Math.max(1, opts.parallelism ?? 8);
    this.defaultIsolation = opts.defaultIsolation;
    this.observation = new Observation({
      driver: this.driver,
      store: this.store,
      clock: this.clock,
      parallelism: this.parallelism,
      firstDiskWaitMs: opts.firstDiskWaitMs ?? FIRST_DISK_WAIT_MS,
      locks: this.locks,
      consoles: this.consoles,
      isRecovering: () => this.recovering,
    });
    this.recovery = new Recovery({
      driver: this.driver,
      store: this.store,
      clock: this.clock,
      log: this.log,
      parallelism: this.parallelism,
      locks: this.locks,
      base: this.base,
      know: (name) => this.know(name),
      bringDown: (rec) => this.bringDown(rec),
      removeIfPresent: (name) => this.removeIfPresent(name),
      save: (rec) => this.save(rec),
    });
    this.sessions = new Sessions({
      runner: opts.runner,
      driver: this.driver,
      log: this.log,
      prepare: (req) => {
        const how = { tty: req.tty, env: { ...req.env }, rows: req.rows, cols: req.cols };
        return req.console ? this.console(req.name, how, req.requestId) : this.exec(req.name, req.argv, how);
      },
      check: (req) => (req.console ? this.validateConsole(req.name) : this.validateExec(req.name, req.argv)),
    });
  }

  // --- the host -----------------------------------------------------------

  async version(): Promise<HostVersion> {
    const baseRelease = await this.driver.installedRelease();
    return {
      driver: this.driver.name,
      facts: await this.driver.facts(),
      capabilities: this.driver.capabilities(),
      baseRelease,
      baseBehind: await this.driver.baseBehind?.(baseRelease ?? ''),
      rootDir: this.driver.layout.rootDir,
    };
  }

  /** What the host can run; after facts(), which is where a driver reads what its capabilities depend on (FreeBSD: kern.racct.enable). */
  async capabilities(): Promise<DriverCapabilities> {
    await this.driver.facts();
    return this.driver.capabilities();
  }

  /** For each distinct release, why a base of it is behind the host's kernel; only those behind (none where the driver has no patch levels). */
  async basesBehind(releases: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const driver = this.driver;
    if (!driver.baseBehind) return out;
    await Promise.all([...new Set(releases)].map(async (r) => {
      const why = await driver.baseBehind!(r);
      if (why) out.set(r, why);
    }));
    return out;
  }

  /** The install the caller asked for, made definite and checked against this host (its capabilities, the source there). */
  resolveInstallSpec(req: { method: InstallMethodName | undefined; source: string; mirror: string }): InstallSpec {
    return resolveInstallSpec(req, this.driver.capabilities(), hostPathKind);
  }

  get basePaths(): BasePaths {
    const { rootDir, sharedfs, template } = this.driver.layout;
    return { rootDir, sharedfs, template };
  }

  // --- start-up -----------------------------------------------------------

  /**
   * Finishes or rolls back whatever a crash interrupted (agent/engine/recovery.ts);
   * the agent serves meanwhile, containers waiting for it showing as recovering.
   */
  recover(): Promise<void> {
    return this.recovery.run();
  }

  /** True from the start of recover() until every interrupted operation has been dealt with. */
  private get recovering(): boolean {
    return this.recovery.running;
  }

  private async removeIfPresent(name: string): Promise<void> {
    if (this.driver.layout.containerRootExists(name)) await this.driver.removeContainer(name);
  }

  // --- install --------------------------------------------------------------

  async install(spec: InstallSpec, force: boolean, progress: ProgressSink, opts: RunOptions = {}): Promise<InstallOutcome> {
    if (opts.validateOnly) {
      // Everything after taking the base changes the host (prepareBase fetches and unpacks), so the check ends here;
      // the release is known, and compared with the host's, only once the base is unpacked.
      this.base.checkExclusive();
      return { baseRelease: '', notes: [] };
    }
    return this.base.tryExclusive({ since: this.clock.now() }, async () => {
      const host = await this.driver.facts();
      const prepared = await this.driver.prepareBase(spec, progress);
      if (!this.driver.releasesMatch(host.release, prepared.release) && !force) {
        await this.driver.discardBase(prepared);
        throw new FailedPreconditionError(
          `Error; the base is ${prepared.release} but this host runs ${host.release}. ` +
            'qchroot requires the host and sharedfs to run the same release: upgrade the host first, or install with --force.',
          { reason: 'release-mismatch', fields: { base_release: prepared.release, host_release: host.release } },
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

  /** The isolation a create without one gets. */
  get isolationDefault(): IsolationMode {
    return this.defaultIsolation ?? this.driver.capabilities().defaultIsolation;
  }

  async create(rawName: unknown, requestId?: string, opts: RunOptions = {}, rawConfig?: ConfigInput): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    const config = normalizeConfig(rawConfig, this.isolationDefault);
    if (opts.validateOnly) {
      this.base.checkShared();
      this.refuseIfHeld(name);
      return this.plannedView(name, await this.createChecks(name, config), config);
    }
    return this.base.tryShared(() =>
      this.locks.tryRun(name, this.busy('creating', requestId), async () => {
        const baseRelease = await this.createChecks(name, config);
        const rec: ContainerRecord = {
          version: 1,
          name,
          services: [],
          createdAt: this.clock.now().toISOString(),
          baseRelease,
          desired: 'stopped',
          startedServices: [],
          config,
          pending: this.pending('create', requestId),
        };
        await this.save(rec);
        try {
          await this.driver.createContainer(name);
        } catch (e) {
          await this.removeIfPresent(name).catch((re) =>
            this.log.error('could not clean up a failed create', { container: name, error: asQfleetError(re).message }),
          );
          await this.store.remove(name);
          throw e;
        }
        const { pending: _, ...done } = rec;
        await this.save(done);
        this.log.info('created container', { container: name, requestId });
        return this.observation.created(done);
      }),
    );
  }

  /** Why `name` cannot be created now, thrown; else the base release it would be created from. */
  private async createChecks(name: string, config: ContainerConfig): Promise<string> {
    const exists = { reason: 'already-exists', fields: { container: name } } as const;
    const state = await this.store.inspect(name);
    if (state.kind === 'ok') throw new AlreadyExistsError(`Error; chroot container ${name} already exists.`, exists);
    if (state.kind === 'corrupt') {
      throw new AlreadyExistsError(`Error; chroot container ${name} already exists (broken: its state file is unusable, ${state.reason}); delete it first.`, exists);
    }
    if (this.driver.layout.containerRootExists(name)) {
      throw new AlreadyExistsError(
        `Error; ${this.driver.layout.containerRoot(name)} already exists but has no state file; ` +
          `delete it (qfleet delete ${name}) or move it away before creating ${name}.`,
        exists,
      );
    }
    await this.driver.checkConfig({ name, config });
    const baseRelease = await this.driver.installedRelease();
    if (!baseRelease) throw new FailedPreconditionError('Error; no base is installed on this host: run qfleet install first.', { reason: 'no-base' });
    return baseRelease;
  }

  /** The container a create would make, as create would show it. */
  private plannedView(name: string, baseRelease: string, config: ContainerConfig): ContainerView {
    return {
      name, state: 'stopped', reason: '', services: [], mounts: [], baseRelease, createdAt: undefined, diskUsageBytes: undefined, path: this.driver.layout.containerRoot(name), config,
    };
  }

  /**
   * qchroot config: sets the services (`rawServices`; undefined keeps them) and,
   * with a patch, the config fields it names. Fields that shape the container
   * at start (isolation, network, maps, mounts, ...) change only while it is stopped.
   */
  async configure(rawName: unknown, rawServices: readonly unknown[] | undefined, requestId?: string, opts: RunOptions = {}, patch?: ConfigPatch): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    const services = rawServices === undefined ? undefined : validateNameList(rawServices, validateServiceName, 'service');
    if (opts.validateOnly) {
      this.refuseIfHeld(name);
      const next = await this.configureChecks(name, services, patch);
      const view = await this.current(name);
      const running = new Set(view.services.filter((s) => s.running).map((s) => s.name));
      return { ...view, services: next.services.map((s) => ({ name: s, running: running.has(s) })), config: next.config };
    }
    await this.locks.tryRun(name, this.busy('configuring', requestId), async () => {
      const current = await this.mustRead(name);
      const next = await this.configureChecks(name, services, patch);
      // Limits change at once on a running container (before the record: a refusal changes nothing).
      if (JSON.stringify(current.config.limits) !== JSON.stringify(next.config.limits) && current.desired === 'running') {
        if ((await this.observe(current, await this.driver.mounts())).state === 'running') await this.driver.applyLimits(this.refOf(next));
      }
      await this.save(next);
      this.log.info('configured container', { container: name, services: next.services, ...(patch ? { fields: patch.mask } : {}), requestId });
    });
    return this.current(name);
  }

  /** The container's record as the change would leave it, if it may be changed so. */
  private async configureChecks(name: string, wanted: readonly string[] | undefined, patch?: ConfigPatch): Promise<ContainerRecord> {
    const current = await this.mustRead(name);
    const config = patch && patch.mask.length ? patchConfig(current.config, patch.mask, patch.config) : current.config;
    const services = wanted ?? current.services;
    const rec: ContainerRecord = { ...current, services, config };
    const structural = stoppedOnlyChanges(current.config, config);
    if (structural.length) {
      const view = await this.observe(current, await this.driver.mounts());
      if (view.state !== 'stopped' || current.desired !== 'stopped') {
        throw new FailedPreconditionError(
          `Error; ${name} is ${view.state}; stop it before changing ${structural.join(', ')} (limits may change while it runs, at once; user, env and services take effect at the next start).`,
          stateRefusal(name, view.state),
        );
      }
    }
    if (config !== current.config) await this.driver.checkConfig({ name, config });
    const missing: string[] = [];
    for (const s of services) if (!(await this.driver.hasServiceScript(name, s))) missing.push(s);
    if (missing.length > 0) {
      throw new FailedPreconditionError(
        `Error; ${name} has no rc script for ${missing.join(', ')}: install the service in the container first (qfleet console ${name}).`,
        { reason: 'no-service-script', fields: { container: name, services: missing.join(',') } },
      );
    }
    return rec;
  }

  private refOf(rec: Pick<ContainerRecord, 'name' | 'config'>): ContainerRef {
    return { name: rec.name, config: rec.config };
  }

  // --- list / get (agent/engine/observation.ts) -------------------------------------

  list(): Promise<ContainerView[]> {
    return this.observation.list();
  }

  /** The Get RPC: waits for a first disk-use measurement. */
  get(rawName: unknown): Promise<ContainerView> {
    return this.observation.get(rawName);
  }

  /** A container as a verb answers it (create, configure, exec's check): no wait for a walk of its tree. */
  private current(rawName: unknown): Promise<ContainerView> {
    return this.observation.get(rawName, { waitForDisk: false });
  }

  /** Every container the agent knows of (state files and directories under containers/), in qchroot's order. */
  private allNames(): Promise<string[]> {
    return this.observation.allNames();
  }

  /** The container's record, or why it has none the agent can use. */
  private know(name: string): Promise<Known> {
    return this.observation.know(name);
  }

  /** Whether the container has a directory or a state file of any kind. */
  private exists(name: string): Promise<boolean> {
    return this.observation.exists(name);
  }

  /** Compares the state file with the mount and process tables. */
  private observe(rec: ContainerRecord, table: readonly MountEntry[], procs?: ProcessTable): Promise<ContainerView> {
    return this.observation.observe(rec, table, procs);
  }

  /** What list and get show of a container (delete's dry run shows the same). */
  private view(known: Known, mounts: readonly MountEntry[], procs?: ProcessTable): Promise<ContainerView> {
    return this.observation.view(known, mounts, procs);
  }

  /** Disk use per container (deleting a container forgets its figure). */
  private get usage(): Map<string, unknown> {
    return this.observation.usage;
  }

  // --- start / stop ----------------------------------------------------------------

  async start(sel: Selection, requestId?: string, opts: RunOptions = {}): Promise<ContainerResult[]> {
    const names = await this.select(sel);
    return mapLimit(names, this.parallelism, (name) =>
      this.holding(name, this.busy('starting', requestId), opts, () => this.startOne(name, requestId, opts)).catch((e) => failed(name, e)),
    );
  }

  private async startOne(name: string, requestId: string | undefined, opts: RunOptions): Promise<ContainerResult> {
    const rec = await this.mustRead(name);
    if (rec.services.length === 0) {
      // Nothing to do either way; a validate-only answer also says the state, for the operator's table.
      const state = opts.validateOnly ? (await this.observe(rec, await this.driver.mounts())).state : undefined;
      return { name, outcome: 'bypassed', message: MSG.bypassed, ...(state ? { state } : {}) };
    }
    if (this.consoles.has(name)) throw consoleOpen(name);
    const view = await this.observe(rec, await this.driver.mounts());
    if (view.state === 'running') return { name, outcome: 'already-started', message: MSG.alreadyStarted, state: view.state };
    const ref = this.refOf(rec);
    await this.driver.checkConfig(ref);
    if (rec.desired === 'stopped' && view.state === 'broken') {
      throw new FailedPreconditionError(`Error; ${name} is broken (${view.reason}); stop it to clean up, then start it.`, stateRefusal(name, view.state));
    }
    if (opts.validateOnly) return { name, outcome: 'would-change', message: PLAN.start(rec.services), state: view.state };

    // Broken-while-running (e.g. after a reboot) is repaired by mounting and starting what is missing.
    const started: ContainerRecord = { ...rec, desired: 'running', startedServices: rec.services, pending: this.pending('start', requestId) };
    await this.save(started);
    try {
      await this.driver.up(ref);
      for (const s of rec.services) {
        if ((await this.driver.probeService(ref, s)).running) continue;
        await this.driver.startService(ref, s);
        if (!(await this.driver.probeService(ref, s)).running) {
          throw new FailedPreconditionError(`service ${s} did not stay running after its rc script started it`);
        }
      }
    } catch (e) {
      const err = asQfleetError(e);
      this.log.error('start failed; rolling back', { container: name, error: err.message, requestId });
      try {
        await this.bringDown(started);
        await this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
      } catch (re) {
        this.log.error('rollback of a failed start failed', { container: name, error: asQfleetError(re).message });
        await this.save({ ...started, pending: undefined });
      }
      return { ...failed(name, err), state: view.state };
    }
    await this.save({ ...started, pending: undefined });
    this.log.info('started container', { container: name, services: rec.services, requestId });
    return { name, outcome: 'started', message: MSG.started, state: view.state };
  }

  async stop(sel: Selection, graceMs: number | undefined, requestId?: string, opts: RunOptions = {}): Promise<ContainerResult[]> {
    if (graceMs !== undefined && (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS)) {
      throw new InvalidArgumentError(`Error; the stop grace period must be 0 to ${MAX_GRACE_MS / 1000} seconds.`);
    }
    const names = await this.select(sel);
    return mapLimit(names, this.parallelism, (name) =>
      this.holding(name, this.busy('stopping', requestId), opts, () => this.stopOne(name, graceMs ?? this.graceMs, requestId, opts)).catch((e) => failed(name, e)),
    );
  }

  private async stopOne(name: string, graceMs: number, requestId: string | undefined, opts: RunOptions): Promise<ContainerResult> {
    if (this.consoles.has(name)) throw consoleOpen(name);
    const known = await this.know(name);
    if (known.kind === 'unusable') {
      if (opts.validateOnly) return { name, outcome: 'would-change', message: PLAN.stopUnusable, state: 'broken' };
      // No record says which services run: signal whatever is rooted in it and unmount, so it can be deleted.
      await this.bringDown({ name, services: [], startedServices: [], config: undefined }, graceMs);
      this.log.info('stopped a container whose state is unusable', { container: name, reason: known.reason, requestId });
      return { name, outcome: 'stopped', message: `${MSG.stopped} It stays broken (${known.reason}); delete it or restore the file.`, state: 'broken' };
    }
    const rec = known.record;
    const view = await this.observe(rec, await this.driver.mounts());
    if (view.state === 'stopped') {
      return rec.services.length === 0
        ? { name, outcome: 'bypassed', message: MSG.bypassed, state: view.state }
        : { name, outcome: 'already-stopped', message: MSG.alreadyStopped, state: view.state };
    }
    if (opts.validateOnly) return { name, outcome: 'would-change', message: PLAN.stop, state: view.state };
    await this.save({ ...rec, pending: this.pending('stop', requestId) });
    try {
      await this.bringDown(rec, graceMs);
    } catch (e) {
      // Leave desired=stopped so the container shows as broken with what is left mounted or running.
      await this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
      throw e;
    }
    await this.save({ ...rec, desired: 'stopped', startedServices: [], pending: undefined });
    this.log.info('stopped container', { container: name, requestId });
    return { name, outcome: 'stopped', message: MSG.stopped, state: view.state };
  }

  /**
   * Stops the started services through their rc scripts (in reverse order),
   * then ends what is left: an isolated container through its driver (every
   * process in its namespaces or jail), a chroot by SIGTERM to whatever is
   * rooted in it, SIGKILL after the grace period; then unmounts. Each step
   * runs even if an earlier one failed. Without a config (an unusable state
   * file), every isolated mode the host offers is taken down too.
   */
  private async bringDown(
    rec: Pick<ContainerRecord, 'name' | 'services' | 'startedServices'> & { readonly config: ContainerConfig | undefined },
    graceMs = this.graceMs,
  ): Promise<void> {
    const name = rec.name;
    if (!this.driver.layout.containerRootExists(name)) return;
    if (rec.config) {
      const ref = this.refOf({ name, config: rec.config });
      for (const s of [...new Set([...rec.startedServices, ...rec.services])].reverse()) {
        try {
          if ((await this.driver.probeService(ref, s)).running) await this.driver.stopService(ref, s);
        } catch (e) {
          this.log.warn('rc stop failed; will signal the processes', { container: name, service: s, error: asQfleetError(e).message });
        }
      }
    }
    const isolated = rec.config
      ? (rec.config.isolation === 'chroot' ? [] : [rec.config])
      : this.driver.capabilities().isolation.filter((m) => m !== 'chroot').map((isolation) => ({ ...LEGACY_CONFIG, isolation }));
    for (const config of isolated) {
      try {
        await this.driver.down({ name, config }, graceMs, this.clock);
      } catch (e) {
        if (rec.config) throw e;
        this.log.warn('could not take down the isolation of a container whose state is unusable', { container: name, isolation: config.isolation, error: asQfleetError(e).message });
      }
    }
    if (rec.config && rec.config.isolation !== 'chroot') return;
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

  async delete(sel: Selection, requestId?: string, opts: RunOptions = {}): Promise<ContainerResult[]> {
    const names = await this.select(sel);
    // All preconditions first: a delete -A that would hit a running or busy container deletes nothing.
    const [mounts, procs] = await Promise.all([this.driver.mounts(), this.driver.processTable()]);
    const refused: Array<{ name: string; refusal: Refusal }> = [];
    for (const name of names) {
      const refusal = await this.deleteRefusal(name, mounts, procs, false);
      if (refusal) refused.push({ name, refusal });
    }
    if (refused.length) {
      const message = `Error; stop these chroot containers before deleting: ${refused.map((r) => `${r.name} (${r.refusal.why})`).join(', ')}. Nothing was deleted.`;
      const fields = { containers: refused.map((r) => r.name).join(',') };
      // Only busy containers in the way: a retry later may work, so ABORTED; anything else needs the operator.
      throw refused.every((r) => r.refusal.busy)
        ? new AbortedError(message, { reason: 'busy', fields })
        : new FailedPreconditionError(message, { reason: 'running', fields });
    }
    if (opts.validateOnly) {
      // deleteOne checks again under the lock; with no lock taken here, the check above is that check.
      const results: ContainerResult[] = [];
      for (const name of names) {
        const { state } = await this.view(await this.know(name), mounts, procs);
        results.push({ name, outcome: 'would-change', message: PLAN.delete, state });
      }
      return results;
    }
    const results: ContainerResult[] = [];
    for (const name of names) {
      results.push(await this.locks.tryRun(name, this.busy('deleting', requestId), () => this.deleteOne(name, requestId)).catch((e) => failed(name, e)));
    }
    return results;
  }

  /**
   * Why a container may not be deleted now, in the words the operator needs,
   * or undefined. `held` is true when the caller holds the container itself.
   */
  private async deleteRefusal(name: string, mounts: readonly MountEntry[], procs: ProcessTable, held: boolean): Promise<Refusal | undefined> {
    const holder = held ? undefined : this.locks.holder(name);
    if (holder) return { why: `busy ${describeBusy(holder)}`, busy: true };
    if (this.consoles.has(name)) return { why: 'console open', busy: true };
    const known = await this.know(name);
    if (known.kind === 'ok') {
      const pending = known.record.pending;
      if (!held && this.recovering && pending) return { why: `recovering an interrupted ${pending.op} since ${pending.since}`, busy: true };
      const view = await this.observe(known.record, mounts, procs);
      if (view.state === 'running') return { why: 'running', busy: false };
      if (known.record.desired === 'running') return { why: `started, but broken: ${view.reason}`, busy: false };
    }
    const pids = procs.pidsIn(name);
    if (pids.length) return { why: `processes ${pids.join(' ')}`, busy: false };
    return undefined;
  }

  private async deleteOne(name: string, requestId?: string): Promise<ContainerResult> {
    // Checked again under the lock: a start or console may have taken the container since delete's first check.
    const [mounts, procs] = await Promise.all([this.driver.mounts(), this.driver.processTable()]);
    const refusal = await this.deleteRefusal(name, mounts, procs, true);
    if (refusal) {
      throw new FailedPreconditionError(`Error; ${name} cannot be deleted: ${refusal.why}; stop it first.`, {
        reason: refusal.busy ? 'busy' : 'running',
        fields: { containers: name },
      });
    }
    const known = await this.know(name);
    // An unusable state file is kept until the tree is gone: if removal stops half-way, the container still lists.
    if (known.kind === 'ok') await this.save({ ...known.record, pending: this.pending('delete', requestId) });
    // Unmount what a broken container left; removeContainer re-checks and refuses if anything stays mounted.
    await this.driver.unmountContainer(name);
    await this.removeIfPresent(name);
    await this.store.remove(name);
    this.usage.delete(name);
    this.log.info('deleted container', { container: name, requestId, ...(known.kind === 'unusable' ? { wasBroken: known.reason } : {}) });
    return { name, outcome: 'deleted', message: MSG.deleted };
  }

  // --- exec / console ----------------------------------------------------------------

  /** A command in a started container. */
  async exec(rawName: unknown, argv: readonly string[], opts: { tty: boolean; env: Record<string, string>; rows?: number; cols?: number }): Promise<ExecSession> {
    const { name, config } = await this.execChecks(rawName, argv);
    if (!config) throw new InternalError(`${name} runs but its config is unknown`);
    const spec = this.driver.execSpec({ name, config }, { argv, tty: opts.tty, console: false, env: opts.env, rows: opts.rows, cols: opts.cols });
    return { spec, end: async () => undefined };
  }

  /** exec with validate_only: exec's checks, and the container the command would run in; nothing runs. */
  async validateExec(rawName: unknown, argv: readonly string[]): Promise<ContainerView> {
    return this.execChecks(rawName, argv);
  }

  private async execChecks(rawName: unknown, argv: readonly string[]): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    if (argv.length === 0) throw new InvalidArgumentError('Error; exec needs a command to run.');
    const view = await this.current(name);
    if (view.state !== 'running') {
      throw new FailedPreconditionError(
        `Error; ${name} is ${view.state}${view.reason ? ` (${view.reason})` : ''}; exec needs a started chroot.`,
        stateRefusal(name, view.state),
      );
    }
    return view;
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
    const rec = await this.locks.tryRun(name, this.busy('console', requestId), async () => {
      const { rec: r } = await this.consoleChecks(name);
      await this.save({ ...r, pending: this.pending('console', requestId) });
      this.consoles.add(name);
      try {
        await this.driver.checkConfig(this.refOf(r));
        await this.driver.up(this.refOf(r));
      } catch (e) {
        this.consoles.delete(name);
        await this.bringDown({ ...r, startedServices: [], services: [] }).catch(() => undefined);
        await this.save({ ...r, pending: undefined });
        throw e;
      }
      return r;
    });
    const spec = this.driver.execSpec(this.refOf(rec), { argv: [], tty: opts.tty, console: true, env: opts.env, rows: opts.rows, cols: opts.cols });
    let ended = false;
    return {
      spec,
      end: async () => {
        if (ended) return;
        ended = true;
        await this.locks.run(name, this.busy('console'), async () => {
          try {
            await this.bringDown({ ...rec, startedServices: [], services: [] });
            await this.save({ ...(await this.mustRead(name)), pending: undefined });
          } finally {
            this.consoles.delete(name);
          }
        });
      },
    };
  }

  /** console with validate_only: console's checks without taking the container, and the container it would open; nothing is mounted. */
  async validateConsole(rawName: unknown): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    this.refuseIfHeld(name);
    return (await this.consoleChecks(name)).view;
  }

  private async consoleChecks(name: string): Promise<{ rec: ContainerRecord; view: ContainerView }> {
    const rec = await this.mustRead(name);
    if (this.consoles.has(name)) {
      throw new AbortedError(`Error; a console session is already open on ${name}.`, { reason: 'busy', fields: { container: name, op: 'console' } });
    }
    const view = await this.observe(rec, await this.driver.mounts());
    if (view.state !== 'stopped') {
      throw new FailedPreconditionError(
        `Error; ${name} is ${view.state}; qchroot console needs a stopped chroot (use qfleet exec ${name} -- sh on a started one).`,
        stateRefusal(name, view.state),
      );
    }
    return { rec, view };
  }

  // --- helpers ----------------------------------------------------------------------

  /**
   * The container's lock for the operation, or, validating only, the refusal
   * tryRun would give when another operation holds it, without taking it: a
   * dry run never makes a real call find its container busy.
   */
  private async holding<T>(name: string, busy: Busy, opts: RunOptions, fn: () => Promise<T>): Promise<T> {
    if (!opts.validateOnly) return this.locks.tryRun(name, busy, fn);
    this.refuseIfHeld(name);
    return fn();
  }

  private refuseIfHeld(name: string): void {
    const held = this.locks.holder(name);
    if (held) throw new BusyError(name, held);
  }

  /** Resolves a selection to existing names: invalid names fail as a whole, before any work. */
  private async select(sel: Selection): Promise<string[]> {
    if (sel.all && sel.names.length) throw new InvalidArgumentError('Error; give container names or -A (all), not both.');
    if (sel.all) return this.allNames();
    if (sel.names.length === 0) throw new InvalidArgumentError('Error; name at least one chroot container, or use -A for all.');
    const names = validateNameList(sel.names, validateContainerName, 'chroot container');
    const unknown: string[] = [];
    for (const n of names) if (!(await this.exists(n))) unknown.push(n);
    if (unknown.length) throw notFound(unknown);
    return names;
  }

  /**
   * The container's usable record. A corrupt or missing state file throws
   * (CorruptStateError: only stop and delete work on such a container), and so
   * does a record still waiting for recovery.
   */
  private async mustRead(name: string): Promise<ContainerRecord> {
    const known = await this.know(name);
    if (known.kind === 'unusable') {
      if (!(await this.exists(name))) throw notFound([name]);
      if (known.corrupt !== undefined) throw new CorruptStateError(name, this.store.fileOf(name), known.corrupt);
      throw new FailedPreconditionError(`Error; ${known.reason}: delete it (qfleet delete ${name}) or move it away.`, stateRefusal(name, 'broken'));
    }
    const rec = known.record;
    if (this.recovering && rec.pending) {
      throw new BusyError(name, { op: 'recovering', since: new Date(rec.pending.since) });
    }
    return rec;
  }

  private async save(rec: ContainerRecord): Promise<void> {
    const { pending, ...rest } = rec;
    await this.store.write(pending ? { ...rest, pending } : (rest as ContainerRecord));
  }

  private pending(op: PendingOp, requestId?: string): ContainerRecord['pending'] {
    return { op, since: this.clock.now().toISOString(), ...(requestId ? { requestId } : {}) };
  }

  private busy(op: BusyOp, requestId?: string): Busy {
    return { op, since: this.clock.now(), ...(requestId ? { requestId } : {}) };
  }
}

function failed(name: string, e: unknown): ContainerResult {
  const err = asQfleetError(e);
  return { name, outcome: 'failed', message: `Error; ${stripError(err.message)}`, error: { reason: err.reason, fields: err.fields } };
}

function consoleOpen(name: string): AbortedError {
  return new AbortedError(`Error; a console session is open on ${name}; exit it first.`, { reason: 'busy', fields: { container: name, op: 'console' } });
}

/** The detail of a refusal that is about the container's state: the reason says which state stands in the way. */
function stateRefusal(container: string, state: ContainerState): { reason: Reason; fields: ErrorFields } {
  const reason: Reason = state === 'running' ? 'running' : state === 'stopped' ? 'stopped' : state === 'broken' ? 'broken' : 'busy';
  return { reason, fields: { container, state } };
}

function stripError(message: string): string {
  return message.replace(/^Error;\s*/, '');
}
