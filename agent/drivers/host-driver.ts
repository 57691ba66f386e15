import { existsSync, readdirSync, statSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import type { CommandSpec } from '../runner/command-runner.js';
import type { ContainerRef, IsolationMode, LimitCapabilities, RuntimeView } from './container-config.js';

export type { ContainerConfig, ContainerRef, ExtraMount, IdMapping, IsolationMode, LimitCapabilities, Limits, RuntimeView } from './container-config.js';

/** One line of the host's mount table. */
export interface MountEntry {
  readonly source: string;
  readonly target: string;
  readonly fstype: string;
  readonly options: readonly string[];
}

export interface HostFacts {
  /** As `uname -s` prints it. */
  readonly os: 'FreeBSD' | 'Linux';
  /** FreeBSD: `uname -r` ("14.1-RELEASE-p5"); Linux: os-release "ID VERSION_ID" ("debian 12"). */
  readonly release: string;
  readonly machine: string;
  readonly hostname: string;
}

export interface DriverCapabilities {
  readonly installMethods: readonly InstallMethodName[];
  readonly namespaces: boolean;
  readonly sparseImages: boolean;
  readonly ipAliases: boolean;
  readonly console: boolean;
  /** Isolation modes this host can run now (its kernel and tools checked), the default first. */
  readonly isolation: readonly IsolationMode[];
  /** What create picks when asked for no mode: the strongest this OS has, if the host offers it. */
  readonly defaultIsolation: IsolationMode;
  /** Limits this host can enforce on isolated containers. */
  readonly limits: LimitCapabilities;
  /** Why a mode or limit this OS could have is missing here ("namespaces: tini-static not found"). */
  readonly missing: readonly string[];
}

/** The clock a driver waits with (a stop's grace period), injected so tests need not wait. */
export interface DriverClock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

/** The real one, for a driver's waits that no caller hands a clock to. */
export const SYSTEM_DRIVER_CLOCK: DriverClock = { now: () => new Date(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export type InstallMethodName = 'directory' | 'tarball' | 'download' | 'debootstrap';

export interface InstallSpec {
  readonly method: InstallMethodName;
  /** Directory or tarball on this host; the suite for debootstrap; empty for download. */
  readonly source: string;
  /** Mirror URL; empty means the OS default. */
  readonly mirror: string;
}

export type InstallPhase = 'fetch' | 'verify' | 'extract' | 'split' | 'swap';
export interface InstallProgressEvent {
  readonly phase: InstallPhase;
  readonly message: string;
  readonly done?: number;
  readonly total?: number;
}
export type ProgressSink = (event: InstallProgressEvent) => void;

/** A base extracted into a staging directory, not yet in use. */
export interface PreparedBase {
  readonly stagingDir: string;
  /** Release of the extracted tree, as facts().release spells releases. */
  readonly release: string;
}

export interface ServiceProbe {
  readonly running: boolean;
  /** Pids the service reports (FreeBSD `onestatus`), when known. */
  readonly pids: readonly number[];
}

export interface ExecOptions {
  /** Command inside the container; empty with console=true means a login shell. */
  readonly argv: readonly string[];
  readonly tty: boolean;
  /** qchroot console: interactive shell, prompt "NAME:PATH# ". */
  readonly console: boolean;
  readonly env: Readonly<Record<string, string>>;
  readonly rows?: number;
  readonly cols?: number;
}

/**
 * Where an agent keeps things. Every path is configurable so several agents can
 * share one machine. Containers live under containersDir so a container can
 * never be named like sharedfs or template.
 */
export class Layout {
  readonly sharedfs: string;
  readonly template: string;
  readonly containersDir: string;
  /** Staging area for install; on the same filesystem so swaps are renames. */
  readonly stagingDir: string;
  constructor(readonly rootDir: string) {
    this.sharedfs = `${rootDir}/sharedfs`;
    this.template = `${rootDir}/template`;
    this.containersDir = `${rootDir}/containers`;
    this.stagingDir = `${rootDir}/.staging`;
  }
  containerRoot(name: string): string {
    return `${this.containersDir}/${name}`;
  }
  /** The path inside every container where sharedfs is mounted read-only. */
  static readonly SHAREDFS_MOUNTPOINT = 'sharedfs';

  // What is on disk under the layout. The engine reads the host only through
  // its driver, and these reads are the same for every driver, hence here.

  /**
   * What containers/ holds under each name: a real directory, or something
   * else (a symlink, a file); empty before any create. Read synchronously:
   * List asks at every call, an asynchronous readdir's thread-pool round trip
   * cost ten times the read itself at a few containers (55 against 5 us of
   * CPU), and at a thousand both spend the same 0.7 ms in the event loop
   * making the entries.
   */
  async containerDirs(): Promise<Map<string, 'dir' | 'other'>> {
    const entries = new Map<string, 'dir' | 'other'>();
    try {
      for (const d of readdirSync(this.containersDir, { withFileTypes: true })) entries.set(d.name, d.isDirectory() ? 'dir' : 'other');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return entries;
  }

  /** Whether anything is at the container's root path (following a symlink there). */
  containerRootExists(name: string): boolean {
    return existsSync(this.containerRoot(name));
  }

  /** Whether the container's root is a real directory (a symlink there is not). */
  async isContainerDir(name: string): Promise<boolean> {
    try {
      return (await lstat(this.containerRoot(name))).isDirectory();
    } catch {
      return false;
    }
  }

  /** Staged bases an install left in the staging area (paths); none when it is missing. */
  async stagedBases(): Promise<string[]> {
    try {
      return (await readdir(this.stagingDir)).map((e) => `${this.stagingDir}/${e}`);
    } catch {
      return [];
    }
  }
}

/**
 * Everything host-specific. Drivers spawn only through their injected
 * CommandRunner, so a fake runner can record the exact commands (FreeBSD
 * transcripts) and the real one can run them (Linux, as root).
 *
 * Names passed in are already validated by the engine; drivers still refuse
 * anything that would put whitespace or a path separator on a command line.
 * Every method that changes the host is idempotent where that makes sense
 * (mount what is missing, unmount what is there) so recovery can re-run it.
 */
export interface HostDriver {
  readonly name: 'freebsd' | 'linux';
  readonly layout: Layout;

  facts(): Promise<HostFacts>;
  capabilities(): DriverCapabilities;
  /** qchroot's "same release" rule: FreeBSD ignores the -pN patch level. */
  releasesMatch(hostRelease: string, baseRelease: string): boolean;

  // --- install: prepare in staging, then activate (or discard) -----------------
  /** Fetches/copies/extracts a pristine base into a fresh staging directory. */
  prepareBase(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase>;
  /**
   * Splits the staged base into a new sharedfs and template and swaps them in by
   * rename. Existing containers are not touched; a previous sharedfs that a
   * running container still mounts is kept (and named in the returned notes).
   */
  activateBase(base: PreparedBase, progress: ProgressSink): Promise<{ notes: string[] }>;
  /** Removes a staged base that will not be used. */
  discardBase(base: PreparedBase): Promise<void>;
  /** Release of the installed sharedfs, or undefined when install never ran. */
  installedRelease(): Promise<string | undefined>;
  /**
   * Why a base of `baseRelease` is behind the host's running kernel (FreeBSD: a
   * lower -pN), or undefined when it is not. Optional: a driver without patch
   * levels leaves it out.
   */
  baseBehind?(baseRelease: string): Promise<string | undefined>;

  // --- containers --------------------------------------------------------------
  /** Copies the template to a new container root and wires it to sharedfs (mount point + symlinks). */
  createContainer(name: string): Promise<void>;
  /**
   * Mounts sharedfs read-only (and devfs/proc as the OS needs) into the container,
   * mounting only what is missing. Refuses a mount point that resolves outside the container.
   */
  mountContainer(name: string): Promise<void>;
  /** Unmounts everything under the container root, deepest first; re-reads the table to confirm. */
  unmountContainer(name: string): Promise<void>;
  /** Absolute mount targets a started container has (sharedfs first). */
  expectedMounts(name: string): string[];
  /** The host's mount table, as the kernel reports it now. */
  mounts(): Promise<MountEntry[]>;

  // --- isolation (namespaces, jail; chroot is mountContainer and the engine's signals) ---
  /**
   * Refuses (typed errors, with what to do) a config this host cannot honour:
   * a mode it does not offer, a limit it cannot enforce, a bind source that
   * is not a directory. Reads only; create, configure and start all ask it.
   */
  checkConfig(ref: ContainerRef): Promise<void>;
  /**
   * Puts the container's isolation in place, ready for its services: namespaces
   * starts the init that holds them (mounts made inside), jail mounts and runs
   * jail -c; chroot mounts (mountContainer). Limits are applied here. Idempotent:
   * what is already up is left as it is.
   */
  up(ref: ContainerRef): Promise<void>;
  /**
   * Ends an isolated container after its services' rc stop: every process in it
   * gets SIGTERM, then SIGKILL after `graceMs`, and what up made is undone (mounts,
   * limits, the jail). Not for chroot, which the engine brings down by its processes.
   */
  down(ref: ContainerRef, graceMs: number, clock: DriverClock): Promise<void>;
  /** What the host shows of an isolated container's isolation (not for chroot). Reads only, never a host-wide process scan. */
  runtime(ref: ContainerRef): Promise<RuntimeView>;
  /**
   * What runtime() answers now, for those of `refs` the driver can tell from one
   * look at the host (List: a thousand containers, most of them stopped); the
   * others are left out, and asked one by one. Optional.
   */
  runtimesOf?(refs: readonly ContainerRef[]): Promise<Map<string, RuntimeView>>;
  /**
   * Sets a running container's limits to ref.config.limits now (qfleet config
   * --memory ... on a started container). Refuses (typed error, saying that a
   * restart applies them) what cannot change while it runs.
   */
  applyLimits(ref: ContainerRef): Promise<void>;

  startService(ref: ContainerRef, service: string): Promise<void>;
  stopService(ref: ContainerRef, service: string): Promise<void>;
  /**
   * Whether the service runs, asked of the host (its rc script's status).
   * Given `procs` (a process table read just before), the driver may answer
   * with its previous answer for this service instead, as long as the
   * container's processes are exactly those it had then (pids and start
   * times) and that answer is young; otherwise, and without `procs`, it asks.
   */
  probeService(ref: ContainerRef, service: string, procs?: ProcessTable): Promise<ServiceProbe>;
  /** Whether the container has an rc script for the service. */
  hasServiceScript(name: string, service: string): Promise<boolean>;

  /** Pids of processes whose root directory is the container's root or below it (processTable().pidsIn). */
  processesIn(name: string): Promise<number[]>;
  /** Which processes run in which container, from one read of the host's process table. */
  processTable(): Promise<ProcessTable>;
  signalProcesses(pids: readonly number[], signal: NodeJS.Signals): Promise<void>;

  /**
   * Removes the container's tree. Refuses (FailedPreconditionError naming the
   * mounts) if anything is mounted under it; never crosses a mount point or
   * follows a symlink out of the container.
   */
  removeContainer(name: string): Promise<void>;
  /**
   * Bytes used by the container's own tree (not sharedfs). `urgent`: a caller
   * waits for it (the Get RPC), so it goes before the background measurements.
   */
  diskUsage(name: string, opts?: { readonly urgent?: boolean }): Promise<number>;

  /**
   * The command that runs `opts` inside a started container (for Exec / console).
   * With a tty it may ask the runner for a terminal (CommandSpec.terminal) rather
   * than build script(1)'s command line itself.
   */
  execSpec(ref: ContainerRef, opts: ExecOptions): CommandSpec;
  /**
   * Resizes the pseudo-terminal of a tty session started from execSpec
   * (`sessionPid` is the spawned command's pid): stty on the pty the session's
   * shell holds, after which the kernel sends SIGWINCH to its foreground job.
   */
  resizeTerminal(sessionPid: number, rows: number, cols: number): Promise<void>;
}

/** A process whose root directory is inside the containers directory. */
export interface RootedProcess {
  readonly pid: number;
  /** Its root directory as the host reports it (the container root or a directory below it). */
  readonly root: string;
  /** When it started, as the host counts (Linux: clock ticks since boot); empty when unknown. Tells a reused pid apart. */
  readonly start: string;
}

/**
 * The host's processes by container, from one read of its process table, so
 * that `list` reads the table once per call rather than once per container.
 * A process whose root is a directory below a container's root (a daemon
 * that chroots further for privilege separation) belongs to that container.
 */
export class ProcessTable {
  private readonly byName: Map<string, RootedProcess[]>;

  constructor(containersDir: string, processes: Iterable<RootedProcess>) {
    this.byName = byContainer(processes, containersDir, (p) => p.root);
    for (const list of this.byName.values()) list.sort((a, b) => a.pid - b.pid);
  }

  /** Pids rooted in the container, ascending. */
  pidsIn(name: string): number[] {
    return [...new Set((this.byName.get(name) ?? []).map((p) => p.pid))];
  }

  /** The container's processes as one string: equal strings, the very same processes. */
  fingerprint(name: string): string {
    return (this.byName.get(name) ?? []).map((p) => `${p.pid}@${p.start}`).join(' ');
  }
}

/** Rows and columns a terminal can sensibly have; anything else is refused before stty sees it. */
export function checkWindowSize(rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows > 1000 || cols > 1000) {
    throw new RangeError(`window size ${rows}x${cols} is out of range`);
  }
}

export type HostPathKind = 'directory' | 'file' | 'missing' | 'other';

/** What a path on the host is, following symlinks (an install source, say): read here, in the drivers' room, not by the engine. */
export function hostPathKind(path: string): HostPathKind {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

/** Is `target` the container root or somewhere below it? (No string is built: List calls this for every mount of every container.) */
export function isUnder(target: string, root: string): boolean {
  if (root.endsWith('/')) return target.startsWith(root);
  return target.startsWith(root) && (target.length === root.length || target.charCodeAt(root.length) === 0x2f);
}

/** The mounts at or below each container's root, by container name, from one pass over the table. */
export function mountsByContainer(table: readonly MountEntry[], containersDir: string): Map<string, MountEntry[]> {
  return byContainer(table, containersDir, (m) => m.target);
}

/** Items whose path is at or below a container's root, grouped by that container's name (in the order met); others are left out. */
function byContainer<T>(items: Iterable<T>, containersDir: string, pathOf: (item: T) => string): Map<string, T[]> {
  const prefix = `${containersDir.replace(/\/+$/, '')}/`;
  const out = new Map<string, T[]>();
  for (const item of items) {
    const path = pathOf(item);
    if (!path.startsWith(prefix)) continue;
    const name = path.slice(prefix.length).split('/')[0]!;
    if (name === '') continue;
    const list = out.get(name);
    if (list) list.push(item);
    else out.set(name, [item]);
  }
  return out;
}

/** Deepest first, so children are unmounted before their parents. */
export function deepestFirst<T extends { target: string }>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) => b.target.split('/').length - a.target.split('/').length || b.target.localeCompare(a.target));
}
