import { isUnder, mountsByContainer, ProcessTable, type HostDriver, type MountEntry } from '../drivers/host-driver.js';
import { NotFoundError } from '../errors.js';
import { eachLimited } from '../worker-pool.js';
import type { Clock } from './clock.js';
import { describeBusy, type Busy, type ContainerLocks } from './keyed-lock.js';
import { isValidContainerName, validateContainerName } from './names.js';
import { compareNames, type ContainerRecord, type StateRead, type StateStore } from './state-store.js';
import type { ContainerConfig, RuntimeView } from '../drivers/container-config.js';

/** Settled states, and the transient ones a container shows while an operation holds it. */
export type ContainerState = 'stopped' | 'running' | 'broken' | 'creating' | 'starting' | 'stopping' | 'deleting' | 'recovering';

export interface ServiceView {
  readonly name: string;
  readonly running: boolean;
}

/** A container as the host shows it now, checked against what was asked. */
export interface ContainerView {
  readonly name: string;
  readonly state: ContainerState;
  readonly reason: string;
  readonly services: readonly ServiceView[];
  readonly mounts: readonly MountEntry[];
  readonly baseRelease: string;
  /** Unknown when the state file is missing or unusable. */
  readonly createdAt: Date | undefined;
  /** Undefined while it has not been measured yet (List never waits for a first walk of a tree). */
  readonly diskUsageBytes: number | undefined;
  readonly path: string;
  /** While an operation holds the container: what, since when, for which request. */
  readonly busy?: Busy;
  /** How it runs; unknown when its state file is missing or unusable. */
  readonly config?: ContainerConfig;
  /** namespaces: the host pid of its init, while it runs. */
  readonly initPid?: number;
  /** jail: its jail id, while it runs. */
  readonly jid?: number;
}

/** What containers/ holds under each name: a real directory, or something else (a symlink, a file). */
type DirEntries = Map<string, 'dir' | 'other'>;

/** What a List read of the host once for all its containers: containers/ (for a stat each), and the runtimes the driver could tell at once. */
interface ListLook {
  readonly entries: DirEntries;
  readonly runtimes?: ReadonlyMap<string, RuntimeView>;
}

/** What the agent knows of one container: its record, or why it has none it can use. */
export type Known =
  | { readonly kind: 'ok'; readonly record: ContainerRecord }
  | { readonly kind: 'unusable'; readonly name: string; readonly reason: string; readonly corrupt?: string };

/** What observation reads, and the engine's state it shows (who holds a container, open consoles, recovery). */
export interface ObservationContext {
  readonly driver: HostDriver;
  readonly store: StateStore;
  readonly clock: Clock;
  readonly parallelism: number;
  /** How long Get waits for a container's first disk-use measurement before it answers without one. */
  readonly firstDiskWaitMs: number;
  readonly locks: ContainerLocks;
  /** Containers with an open console session (mounted while stopped, and that is fine). */
  readonly consoles: ReadonlySet<string>;
  isRecovering(): boolean;
}

const DISK_USAGE_TTL_MS = 60_000;
/** How soon a measurement that failed is tried again. */
const DISK_USAGE_RETRY_MS = 10_000;
/**
 * Get's wait for a first measurement, at most: a tree of a few thousand files
 * is measured well within it; a huge one (or one queued behind another's
 * long du) must not hold the container's state from its caller until the
 * call's deadline. Its figure follows in a later Get or List.
 */
export const FIRST_DISK_WAIT_MS = 5_000;

/** The one answer for names that are no container (get here, and the engine's verbs). */
export function notFound(names: readonly string[]): NotFoundError {
  return new NotFoundError(`Error; no such chroot container: ${names.join(', ')}.`, { fields: { containers: names.join(',') } });
}

/**
 * List and get: each container's state file checked against the host's mount
 * and process tables, read once per call. A container whose host state
 * disagrees with its file is `broken`, with the reason.
 */
export class Observation {
  /**
   * The views of quiet stopped containers: nothing mounted, no process, no
   * runtime, no console, no interrupted work, so the view is its state
   * record's (the store's cached read: the same object until the file
   * changes), existence and disk figure alone. List gives such a container
   * the same view object while those three are the same, and the server keeps
   * each view's encoding (agent/server/convert.ts): at a thousand stopped
   * containers, most of a List is then reused. Rebuilt by each List, so a
   * container gone leaves it.
   */
  private readonly quiet = new Map<string, { readonly rec: ContainerRecord; readonly exists: boolean; readonly bytes: number | undefined; readonly view: ContainerView }>();
  /** Disk use per container (bytes undefined: never measured), measured in the background once older than DISK_USAGE_TTL_MS. */
  readonly usage = new Map<string, { bytes: number | undefined; at: number; pending?: Promise<number | undefined>; urgent?: boolean }>();
  private readonly driver: HostDriver;
  private readonly store: StateStore;
  private readonly clock: Clock;

  constructor(private readonly ctx: ObservationContext) {
    this.driver = ctx.driver;
    this.store = ctx.store;
    this.clock = ctx.clock;
  }

  async list(): Promise<ContainerView[]> {
    // The mount and process tables are read once per call, not once per container; the process
    // table (a host-wide scan) only when a chroot container, or one of unknown mode, needs it:
    // isolated containers are judged by their init or jail (driver.runtime).
    const [mounts, scan] = await Promise.all([this.driver.mounts(), this.scan()]);
    const mountsOf = mountsByContainer(mounts, this.driver.layout.containersDir);
    const states = await this.store.inspectAll(scan.names);
    const known = scan.names.map((n) => this.knownFrom(n, states.get(n)!));
    const needsScan = known.some((k) => k.kind !== 'ok' || k.record.config.isolation === 'chroot');
    const isolated = known.flatMap((k) => (k.kind === 'ok' && k.record.config.isolation !== 'chroot' ? [{ name: k.record.name, config: k.record.config }] : []));
    const [procs, runtimes] = await Promise.all([
      needsScan ? this.driver.processTable() : this.noScan(),
      isolated.length && this.driver.runtimesOf ? this.driver.runtimesOf(isolated) : undefined,
    ]);
    const look: ListLook = { entries: scan.entries, ...(runtimes ? { runtimes } : {}) };
    const mountsFor = (k: Known) => mountsOf.get(k.kind === 'ok' ? k.record.name : k.name) ?? [];
    // Most views need nothing asked of the host (stopped, runtime read above, disk use known): made at
    // once; the rest (started ones, first measurements) asked at most `parallelism` at a time.
    const views = known.map((k) => this.viewNow(k, mountsFor(k), procs, look));
    // Only the containers listed now keep their quiet views.
    const names = new Set(scan.names);
    for (const name of this.quiet.keys()) if (!names.has(name)) this.quiet.delete(name);
    const rest = views.flatMap((v, i) => (v ? [] : [i]));
    await eachLimited(rest, this.ctx.parallelism, async (i) => { views[i] = await this.view(known[i]!, mountsFor(known[i]!), procs, look); });
    return views as ContainerView[];
  }

  /** One container; `waitForDisk`: wait for its first disk-use measurement (the Get RPC does; create's answer does not). */
  async get(rawName: unknown, opts: { waitForDisk: boolean } = { waitForDisk: true }): Promise<ContainerView> {
    const name = validateContainerName(rawName);
    const known = await this.know(name);
    if (known.kind === 'unusable' && !(await this.exists(name))) throw notFound([name]);
    return this.view(known, await this.driver.mounts(), undefined, undefined, opts.waitForDisk);
  }

  /**
   * The view create answers with, from what it has just done under the
   * container's lock: a stopped container with nothing mounted, no process in
   * it and (isolated) no init or jail yet. Not asking the host again spares
   * every create a host-wide process scan and a read of the mount table; its
   * disk use is left to the first List or Get, which measure in batches (a
   * du of each new tree raced the next create for the disk and the cores).
   */
  created(rec: ContainerRecord): ContainerView {
    const runtime = rec.config.isolation === 'chroot' ? undefined : { up: false, problems: [] };
    return this.judge(rec, [], this.noScan(), true, runtime, [], undefined);
  }

  /**
   * Every container the agent knows of: each state file (usable or not) and
   * each directory under containers/ (one without a state file is broken, and
   * delete removes it), in qchroot's ascending order.
   */
  async allNames(): Promise<string[]> {
    return (await this.scan()).names;
  }

  /** allNames(), plus what containers/ holds under each name (List uses it instead of a stat per container). */
  private async scan(): Promise<{ names: string[]; entries: DirEntries }> {
    const [files, entries] = await Promise.all([this.store.names(), this.driver.layout.containerDirs()]);
    const names = new Set(files);
    // Real directories only: a symlink there is not a container, and nothing follows it.
    for (const [n, kind] of entries) if (kind === 'dir' && isValidContainerName(n)) names.add(n);
    return { names: [...names].sort(compareNames), entries };
  }

  /** existsSync(root), answered from a scan of containers/ when there is one: only a name that is not a plain directory there needs a look. */
  private rootExists(name: string, entries?: DirEntries): boolean {
    const kind = entries?.get(name);
    if (entries && kind === undefined) return false;
    if (kind === 'dir') return true;
    return this.driver.layout.containerRootExists(name);
  }

  /** The container's record, or why it has none the agent can use. */
  async know(name: string): Promise<Known> {
    return this.knownFrom(name, await this.store.inspect(name));
  }

  private knownFrom(name: string, state: StateRead): Known {
    if (state.kind === 'ok') return state;
    const file = this.store.fileOf(name);
    const reason = state.kind === 'corrupt'
      ? `its state file ${file} is unusable: ${state.reason}`
      : `${this.driver.layout.containerRoot(name)} exists but has no state file (${file})`;
    return { kind: 'unusable', name, reason, ...(state.kind === 'corrupt' ? { corrupt: state.reason } : {}) };
  }

  /** Whether the container has a directory or a state file of any kind. */
  async exists(name: string): Promise<boolean> {
    if ((await this.store.inspect(name)).kind !== 'missing') return true;
    return this.driver.layout.isContainerDir(name);
  }

  /** What list and get show: a transient state while an operation holds it, else what observe finds. */
  async view(known: Known, mounts: readonly MountEntry[], procs?: ProcessTable, look?: ListLook, waitForDisk = false): Promise<ContainerView> {
    const now = this.viewNow(known, mounts, procs, look, waitForDisk);
    if (now) return now;
    if (known.kind === 'ok') return this.observe(known.record, mounts, procs, look, waitForDisk);
    const name = known.name;
    return this.unusableView(known, mounts, this.rootExists(name, look?.entries) ? await this.diskUsage(name, waitForDisk) : 0);
  }

  /**
   * view(), when it needs nothing asked of the host: a held container, an
   * unusable one or a stopped one whose runtime the List read and whose disk
   * use is known. Undefined otherwise (view() asks). List builds most of a
   * thousand views this way, without a promise each.
   */
  private viewNow(known: Known, mounts: readonly MountEntry[], procs?: ProcessTable, look?: ListLook, waitForDisk = false): ContainerView | undefined {
    const name = known.kind === 'ok' ? known.record.name : known.name;
    const held = this.ctx.locks.holder(name);
    const queued = !held && this.ctx.isRecovering() && known.kind === 'ok' && known.record.pending
      ? { op: 'recovering' as const, since: new Date(known.record.pending.since) }
      : undefined;
    const busy = held ?? queued;
    if (busy && busy.op !== 'configuring' && busy.op !== 'console') {
      const rec = known.kind === 'ok' ? known.record : undefined;
      const root = this.driver.layout.containerRoot(name);
      return {
        name,
        state: busy.op,
        reason: `${describeBusy(busy)}${queued ? ', queued' : ''}`,
        services: (rec?.services ?? []).map((s) => ({ name: s, running: false })),
        mounts: mounts.filter((m) => isUnder(m.target, root)),
        baseRelease: rec?.baseRelease ?? '',
        createdAt: rec ? new Date(rec.createdAt) : undefined,
        diskUsageBytes: this.usage.get(name)?.bytes,
        path: root,
        busy,
        ...(rec ? { config: rec.config } : {}),
      };
    }
    if (known.kind === 'unusable') {
      const bytes = this.rootExists(name, look?.entries) ? this.diskUsageNow(name) : 0;
      return bytes === undefined && waitForDisk ? undefined : this.unusableView(known, mounts, bytes);
    }
    const rec = known.record;
    // A started container's services are asked of the host (or its memo); a stopped one's never are.
    if (rec.desired !== 'stopped' || !procs) return undefined;
    const exists = this.rootExists(rec.name, look?.entries);
    const isolated = rec.config.isolation !== 'chroot';
    const runtime = isolated && exists ? look?.runtimes?.get(rec.name) : undefined;
    if (isolated && exists && !runtime) return undefined;
    const bytes = exists ? this.diskUsageNow(rec.name) : 0;
    // A figure not measured yet is answered as such, unless the caller waits for it (view()).
    if (bytes === undefined && waitForDisk) return undefined;
    const quiet = mounts.length === 0 && (!runtime || (!runtime.up && runtime.problems.length === 0))
      && !rec.pending && !this.ctx.consoles.has(rec.name) && (!exists || procs.pidsIn(rec.name).length === 0);
    if (!quiet) return this.judge(rec, mounts, procs, exists, runtime, [], bytes);
    const kept = this.quiet.get(rec.name);
    if (kept && kept.rec === rec && kept.exists === exists && kept.bytes === bytes) return kept.view;
    const view = this.judge(rec, mounts, procs, exists, runtime, [], bytes);
    this.quiet.set(rec.name, { rec, exists, bytes, view });
    return view;
  }

  private unusableView(known: Known & { kind: 'unusable' }, mounts: readonly MountEntry[], diskUsageBytes: number | undefined): ContainerView {
    const root = this.driver.layout.containerRoot(known.name);
    return {
      name: known.name,
      state: 'broken',
      reason: known.reason,
      services: [],
      mounts: mounts.filter((m) => isUnder(m.target, root)),
      baseRelease: '',
      createdAt: undefined,
      diskUsageBytes,
      path: root,
    };
  }

  /**
   * Compares the state file with the mount and process tables (the process
   * table is read if not given; `look`, what a List read with the tables,
   * stands for a stat of the container's directory and, where it has one,
   * for asking the driver for its runtime). The host is asked here (runtime,
   * services, disk use); judge() decides from the answers.
   */
  async observe(rec: ContainerRecord, table: readonly MountEntry[], procs?: ProcessTable, look?: ListLook, waitForDisk = false): Promise<ContainerView> {
    const isolated = rec.config.isolation !== 'chroot';
    // A table, even an empty one, lets the driver answer a service's status from its memo (ProbeMemo):
    // an isolated container's driver fingerprints its processes itself, without the host-wide scan.
    procs ??= isolated ? this.noScan() : await this.driver.processTable();
    const exists = this.rootExists(rec.name, look?.entries);
    const ref = { name: rec.name, config: rec.config };
    // An isolated container is judged by its driver (the init holding its namespaces, the jail), never by a host-wide scan.
    let runtime: RuntimeView | undefined;
    if (isolated && exists) {
      runtime = look?.runtimes?.get(rec.name)
        ?? await this.driver.runtime(ref).catch((e: Error) => ({ up: false, problems: [`its isolation cannot be read: ${e.message}`] }));
    }
    // Services are probed in order while nothing is wrong: the first that is not running is the reason.
    const running: boolean[] = [];
    if (rec.desired === 'running' && exists && this.problemsBefore(rec, table, runtime).length === 0) {
      for (const s of rec.startedServices) {
        const up = await this.driver.probeService(ref, s, procs).then((p) => p.running, () => false);
        running.push(up);
        if (!up) break;
      }
    }
    const bytes = exists ? await this.diskUsage(rec.name, waitForDisk) : 0;
    return this.judge(rec, table, procs, exists, runtime, running, bytes);
  }

  /** What is wrong with a started container before its services are asked: its isolation, or its mounts (chroot). */
  private problemsBefore(rec: ContainerRecord, table: readonly MountEntry[], runtime: RuntimeView | undefined): string[] {
    if (rec.desired !== 'running') return [];
    if (runtime) {
      const problems = [...runtime.problems];
      if (!runtime.up && runtime.problems.length === 0) problems.push(`its ${rec.config.isolation === 'jail' ? 'jail' : 'init'} is not running`);
      return problems;
    }
    const root = this.driver.layout.containerRoot(rec.name);
    const mounted = new Set(table.filter((m) => isUnder(m.target, root)).map((m) => m.target));
    const missing = this.driver.expectedMounts(rec.name).filter((t) => !mounted.has(t));
    return missing.length ? [`not mounted: ${missing.join(', ')}`] : [];
  }

  /**
   * The view from what observe (or viewNow) found: `running[i]`, whether the
   * i-th started service answered that it runs (asked in order, only while
   * nothing was wrong, so it may be shorter than the list).
   */
  private judge(
    rec: ContainerRecord, table: readonly MountEntry[], procs: ProcessTable, exists: boolean,
    runtime: RuntimeView | undefined, running: readonly boolean[], diskUsageBytes: number | undefined,
  ): ContainerView {
    const root = this.driver.layout.containerRoot(rec.name);
    const mounts = table.filter((m) => isUnder(m.target, root));
    const probeNames = rec.desired === 'running' ? rec.startedServices : rec.services;
    const services: ServiceView[] = [];
    const problems: string[] = [];
    if (!exists) problems.push(`its directory ${root} is missing`);
    else problems.push(...this.problemsBefore(rec, table, runtime));
    for (const [i, s] of probeNames.entries()) {
      const up = rec.desired === 'running' && exists && problems.length === 0 ? running[i] ?? false : false;
      services.push({ name: s, running: up });
      if (rec.desired === 'running' && problems.length === 0 && !up) problems.push(`service ${s} is not running`);
    }
    for (const s of rec.services) if (!probeNames.includes(s)) services.push({ name: s, running: false });

    if (rec.desired === 'stopped' && !this.ctx.consoles.has(rec.name)) {
      if (mounts.length) problems.push(`stopped but still mounted: ${mounts.map((m) => m.target).join(', ')}`);
      if (runtime?.up) problems.push(`stopped but its ${rec.config.isolation === 'jail' ? `jail (jid ${runtime.jid ?? '?'})` : `init (pid ${runtime.initPid ?? '?'})`} still runs`);
      const pids = exists ? procs.pidsIn(rec.name) : [];
      if (pids.length) problems.push(`stopped but processes still run in it: ${pids.join(' ')}`);
    }
    if (rec.pending && !this.ctx.locks.isHeld(rec.name)) {
      problems.unshift(`an interrupted ${rec.pending.op} (${rec.pending.since}) was not recovered`);
    }

    const state: ContainerState = problems.length ? 'broken' : rec.desired;
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
      config: rec.config,
      ...(runtime?.up && runtime.initPid ? { initPid: runtime.initPid } : {}),
      ...(runtime?.up && runtime.jid ? { jid: runtime.jid } : {}),
    };
  }

  /** The process table of a List that needed no host-wide scan: empty, since only isolated containers read it, and they ignore it. */
  private noScan(): ProcessTable {
    return new ProcessTable(this.driver.layout.containersDir, []);
  }

  /**
   * Disk use changes slowly and measuring it walks the whole tree, so List and
   * Get reuse a figure younger than DISK_USAGE_TTL_MS; a stale one is returned
   * at once while a fresh one is measured in the background. A first
   * measurement is waited for by the Get RPC (one container, at most
   * FIRST_DISK_WAIT_MS) and by nothing else: List, start, stop and configure
   * answer the figures they have not got yet as not measured (create does
   * not even start one: created()). Only a measurement a caller waits for is
   * urgent for the driver: the first measurements a List starts (a thousand
   * after an agent start) go at the pace of background work, leaving the
   * cores to the callers.
   */
  private async diskUsage(name: string, wait: boolean): Promise<number | undefined> {
    const now = this.diskUsageNow(name, wait);
    if (now !== undefined || !wait) return now;
    // diskUsageNow started the first measurement if there was none; one a List started is hurried
    // (the driver moves it ahead); one that failed lately is not.
    const cached = this.usage.get(name);
    const pending = cached?.pending && !cached.urgent ? this.measure(name, undefined, true) : cached?.pending;
    if (!pending) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<undefined>((resolve) => { timer = setTimeout(resolve, this.ctx.firstDiskWaitMs, undefined); });
    try {
      return await Promise.race([pending, bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The figure known now, never waiting: a stale one starts a refresh, a
   * missing one its first measurement (undefined until it ends; a failed one is
   * tried again after DISK_USAGE_RETRY_MS).
   */
  private diskUsageNow(name: string, urgent = false): number | undefined {
    const cached = this.usage.get(name);
    if (!cached) {
      void this.measure(name, undefined, urgent);
      return undefined;
    }
    const age = this.clock.now().getTime() - cached.at;
    if (!cached.pending && age > (cached.bytes === undefined ? DISK_USAGE_RETRY_MS : DISK_USAGE_TTL_MS)) void this.measure(name, cached.bytes);
    return cached.bytes;
  }

  private measure(name: string, previous: number | undefined, urgent = false): Promise<number | undefined> {
    const p = this.driver.diskUsage(name, { urgent }).then((bytes): number | undefined => bytes, () => previous);
    this.usage.set(name, { bytes: previous, at: this.clock.now().getTime(), pending: p, urgent });
    return p.then((bytes) => {
      // Unless the container went (delete drops its entry) or another measurement took over.
      if (this.usage.get(name)?.pending === p) this.usage.set(name, { bytes, at: this.clock.now().getTime() });
      return bytes;
    });
  }
}
