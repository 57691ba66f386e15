import { closeSync, existsSync, fchownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, realpathSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { CommandFailedError, FailedPreconditionError, InternalError, InvalidArgumentError } from '../../errors.js';
import type { CommandResult, CommandRunner } from '../../runner/command-runner.js';
import { DEFAULT_ENV } from '../../runner/execa-runner.js';
import { NS_EVAL, NS_INIT_SCRIPT } from '../../runner/ns-scripts.js';
import { hostnameOf, type ContainerRef, type IdMapping, type RuntimeView } from '../container-config.js';
import { isUnder, Layout, SYSTEM_DRIVER_CLOCK, type DriverClock } from '../host-driver.js';
import type { ContainerCgroups } from './cgroups.js';
import { resolveRunAs } from './container-ids.js';
import { DEV_MOUNTPOINT } from './mounts.js';
import { checkMap, DEFAULT_NS_MAP, IDENTITY, mapText, shiftTree, toHost, type Ownership } from './id-shift.js';
import type { NsTools } from './ns-probe.js';
import { statFields } from './processes.js';
import { ProcFiles } from './proc-files.js';
import { openBeneath, splitRelative } from './safe-path.js';

/** Starting the init: making mounts, copying two binaries, waiting for it (the script bounds each wait itself). */
const LAUNCH_TIMEOUT_MS = 60_000;
/** How long down waits for a SIGKILLed init (and with it its pid namespace) to be gone. */
const INIT_GONE_MS = 10_000;
const POLL_MS = 100;
/** Bounds on the walk over the init's descendants (not a host-wide scan). */
const MAX_DESCENDANTS = 4096;
const MAX_TREE_DEPTH = 64;
/** Paths inside a namespaces container the driver mounts itself; an fstab mount may not go there. */
const RESERVED_TARGETS = ['/dev', '/proc', `/${Layout.SHAREDFS_MOUNTPOINT}`];
/** A container's files in the run directory: NAME.pid (its init), NAME.launcher (a start under way). */
const PIDFILE_SUFFIX = '.pid';
const LAUNCHER_SUFFIX = '.launcher';
/** Where the init's static busybox is inside a running container. */
export const INNER_BUSYBOX = '/dev/.qfleet/busybox';
/** The init's child (tini ends when it does), as /proc/PID/cmdline shows it; it ignores SIGTERM. */
const KEEPER_CMDLINE = `${INNER_BUSYBOX}\0sleep\x002147483647\0`;

export interface NamespacesDeps {
  readonly runner: CommandRunner;
  readonly layout: Layout;
  readonly runDir: string;
  readonly logDir: string;
  readonly procDir: string;
  readonly cgroups: ContainerCgroups;
  /** The host's tools, or undefined (capabilities() says why). */
  readonly tools: () => NsTools | undefined;
  /** The container's root, its name checked. */
  readonly rootOf: (name: string) => string;
  /** Unmounts whatever an older agent (or chroot mode) left mounted under a root on the host. */
  readonly unmountOnHost: (root: string) => Promise<void>;
}

interface InitRecord {
  readonly pid: number;
  /** /proc/PID/stat field 22: tells a reused pid apart. */
  readonly start: string;
}

/** The uid and gid maps a config runs with: its own, else DEFAULT_NS_MAP. */
export function effectiveMaps(ref: ContainerRef): Ownership {
  return {
    uid: ref.config.uidMap.length ? ref.config.uidMap : DEFAULT_NS_MAP,
    gid: ref.config.gidMap.length ? ref.config.gidMap : DEFAULT_NS_MAP,
  };
}

/**
 * Namespaces containers (jchroot's model, with util-linux tools): the init
 * that holds a container's namespaces, its pidfile (jchroot's NAME.pid: the
 * init's host pid and start time), entering it (nsenter), and ending it.
 * Nothing is ever mounted in the host's namespace: the mounts are made in a
 * private mount namespace the init's namespaces are unshared from.
 *
 * With network host the container shares the host's network namespace, which
 * its user namespace does not own: root inside has no CAP_NET_BIND_SERVICE
 * there, so ports below net.ipv4.ip_unprivileged_port_start (1024 by default)
 * cannot be bound inside. network none has its own namespace, and any port.
 */
export class LinuxNamespaces {
  /**
   * Each pidfile's record with the stat it was read at: a List asks for a
   * running container's record twice (runtime, fingerprint), and a stat that
   * shows the same file (inode, size, mtime: the agent writes by rename)
   * spares the open and read (50 running: about 3 ms of each List). A file
   * changed or removed by anyone shows as a different stat or none. (Two
   * in-place writes of the same size within one tick of the kernel's file
   * clock, with a read between them, would look alike, as in any stamp cache
   * without StateStore's settling time; only root writes the run directory,
   * and the agent writes it by rename.)
   */
  private readonly initRecords = new Map<string, { readonly ino: number; readonly size: number; readonly mtimeMs: number; readonly rec: InitRecord | undefined }>();

  /** Each running container's /proc files, kept open between Lists. */
  private readonly proc: ProcFiles;

  constructor(private readonly d: NamespacesDeps) {
    this.proc = new ProcFiles(d.procDir);
  }

  pidfile(name: string): string {
    return `${this.d.runDir}/${name}${PIDFILE_SUFFIX}`;
  }

  /**
   * The launcher's pid and start time, written by the launch script the moment
   * it has started the container's namespaces and removed once the pidfile is
   * written: if the agent dies in between, the next start, stop or list finds
   * the launcher (whose end ends the namespace: unshare --kill-child) instead
   * of leaving an init nobody knows of.
   */
  launcherFile(name: string): string {
    return `${this.d.runDir}/${name}${LAUNCHER_SUFFIX}`;
  }

  /** The launcher an interrupted start left, if it still runs. */
  private liveLauncher(name: string): InitRecord | undefined {
    const file = this.launcherFile(name);
    const rec = readPidRecord(file);
    if (rec && this.startOf(rec.pid) === rec.start) return rec;
    if (rec) rmSync(file, { force: true });
    return undefined;
  }

  /** Ends what an interrupted start left (SIGKILL to its launcher ends its namespace), waiting a bounded time for it to go. */
  private async reapLauncher(name: string, clock: DriverClock): Promise<void> {
    const l = this.liveLauncher(name);
    if (!l) return;
    // Its child is the namespace's PID 1: killed too (not left to the launcher's death signal), the kernel ends the rest.
    const procs = [l, ...this.descendants(l.pid).slice(0, 1).map((pid) => ({ pid, start: this.startOf(pid) }))];
    for (const p of procs) signal(p.pid, 'SIGKILL');
    const until = clock.now().getTime() + INIT_GONE_MS;
    while (procs.some((p) => p.start !== undefined && this.startOf(p.pid) === p.start)) {
      if (clock.now().getTime() >= until) throw new InternalError(`the launcher of ${name} (pid ${l.pid}) or its init is still there ${INIT_GONE_MS / 1000} s after SIGKILL`);
      await clock.sleep(POLL_MS);
    }
    rmSync(this.launcherFile(name), { force: true });
  }

  private ownershipRecord(name: string): string {
    return `${this.d.runDir}/${name}.ids`;
  }

  /** Forgets a removed container: its pidfile and the record of how its tree was owned. */
  forget(name: string): void {
    this.initRecords.delete(name);
    rmSync(this.pidfile(name), { force: true });
    rmSync(this.launcherFile(name), { force: true });
    rmSync(this.ownershipRecord(name), { force: true });
  }

  // --- checks ----------------------------------------------------------------

  /** Host-side checks of a namespaces config (refuseUnoffered is the caller's). */
  check(ref: ContainerRef): void {
    const { config } = ref;
    const maps = effectiveMaps(ref);
    checkMap(maps.uid, 'uid');
    checkMap(maps.gid, 'gid');
    for (const m of config.mounts) {
      if (RESERVED_TARGETS.some((r) => isUnder(m.target, r)) || m.target === '/') {
        throw new InvalidArgumentError(`container ${ref.name}: a mount at ${m.target} would cover what the container needs there (/, /dev, /proc, /sharedfs); choose another target`, { fields: { container: ref.name, field: 'mounts' } });
      }
      splitRelative(m.target.slice(1));
      if (m.kind === 'bind') this.bindSource(ref.name, m.source);
    }
    const runAs = resolveRunAs(this.filesRoot(ref.name), ref.name, config.user, config.group);
    if (toHost(maps.uid, runAs.uid) === undefined || toHost(maps.gid, runAs.gid) === undefined) {
      throw new FailedPreconditionError(`container ${ref.name} runs as ${runAs.uid}:${runAs.gid}, which its id maps do not map; widen the maps or pick another user`, { fields: { container: ref.name } });
    }
  }

  /** Where a container's /etc/passwd is: its own tree, or before create the template it will be copied from. */
  filesRoot(name: string): string {
    const root = this.d.rootOf(name);
    return existsSync(root) ? root : this.d.layout.template;
  }

  /** A bind source as mounted: an existing host directory, resolved, and not the agent's own tree. */
  private bindSource(container: string, source: string): string {
    let real: string;
    try {
      real = realpathSync(source);
      if (!statSync(real).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new FailedPreconditionError(`container ${container}: bind source ${source} is not a directory on this host; create it or fix the mount`, { fields: { container, source } });
    }
    const { rootDir } = this.d.layout;
    if (isUnder(real, rootDir) || isUnder(rootDir, real)) {
      throw new FailedPreconditionError(`container ${container}: bind source ${source} is ${isUnder(real, rootDir) ? 'inside' : 'above'} the agent's tree ${rootDir} (containers, sharedfs); bind a directory outside it`, { fields: { container, source } });
    }
    return real;
  }

  // --- up --------------------------------------------------------------------

  async up(ref: ContainerRef): Promise<void> {
    const tools = this.d.tools();
    if (!tools) throw new InternalError('namespaces are not available on this host');
    if (this.liveInit(ref.name)) return;
    await this.reapLauncher(ref.name, SYSTEM_DRIVER_CLOCK);
    this.check(ref);
    const root = this.d.rootOf(ref.name);
    // Nothing of a namespaces container is mounted on the host; clear what an older agent left.
    await this.d.unmountOnHost(root);
    const maps = effectiveMaps(ref);
    this.shiftOwnership(ref.name, root, maps);
    const rootUid = toHost(maps.uid, 0)!;
    const rootGid = toHost(maps.gid, 0)!;
    // Mount points, made without following a symlink; a directory made here is root inside's, like the rest of the tree.
    for (const rel of [[Layout.SHAREDFS_MOUNTPOINT], [DEV_MOUNTPOINT], ['proc'], ...ref.config.mounts.map((m) => splitRelative(m.target.slice(1)))]) {
      for (let i = 1; i <= rel.length; i++) {
        const made = !existsSync(`${root}/${rel.slice(0, i).join('/')}`);
        const fd = openBeneath(root, rel.slice(0, i), { create: true });
        try {
          if (made) fchownSync(fd, rootUid, rootGid);
        } finally {
          closeSync(fd);
        }
      }
    }
    const cgroupFiles = await this.d.cgroups.prepare(ref.name, ref.config.limits, { always: true });
    const directives = [
      ...cgroupFiles.flatMap((f) => ['cgroup', f]),
      ...ref.config.mounts.flatMap((m) => m.kind === 'bind'
        ? ['bind', this.bindSource(ref.name, m.source), m.target.slice(1), m.readOnly ? 'ro' : 'rw']
        : ['tmpfs', m.target.slice(1), String(m.sizeBytes)]),
    ];
    mkdirSync(this.d.logDir, { recursive: true, mode: 0o750 });
    mkdirSync(this.d.runDir, { recursive: true, mode: 0o700 });
    const log = `${this.d.logDir}/${ref.name}.log`;
    const args = [
      root, this.d.layout.sharedfs, hostnameOf(ref), log, ref.config.network, mapText(maps.uid), mapText(maps.gid),
      String(rootUid), String(rootGid), tools.tini, tools.busybox, tools.setpriv, ...directives,
    ];
    let r: CommandResult;
    try {
      r = await this.d.runner.run({
        argv: ['sh', '-c', NS_EVAL, 'qfleet-ns', 'launch', ...args],
        env: { ...DEFAULT_ENV, QFLEET_NS_SCRIPT: NS_INIT_SCRIPT, QFLEET_NS_LAUNCHER: this.launcherFile(ref.name) },
        timeoutMs: LAUNCH_TIMEOUT_MS,
      });
    } catch (e) {
      // Said without the script's text, with the last lines the init left in the log.
      const why = e instanceof CommandFailedError ? e.stderr.trim().split('\n').pop() ?? '' : String(e);
      throw new FailedPreconditionError(`container ${ref.name} could not start its init: ${why}${logTail(log)}`, { fields: { container: ref.name } });
    }
    const pid = Number(r.stdout.trim());
    const start = Number.isInteger(pid) && pid > 1 ? this.startOf(pid) : undefined;
    if (start === undefined) throw new InternalError(`the init of ${ref.name} did not stay up (see ${log})`);
    const file = this.pidfile(ref.name);
    writeFileSync(`${file}.tmp`, `${pid} ${start}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    rmSync(this.launcherFile(ref.name), { force: true });
  }

  /**
   * Makes the container's tree owned as its maps say, walking it once when
   * they changed. The maps it was last owned by are kept beside the pidfile;
   * without that record the tree is the host's own (root-owned root), or, if
   * its root is owned by another id, shifted by an agent that lost its record
   * (one range from there). Answers how many entries changed owner.
   */
  shiftOwnership(name: string, root: string, to: Ownership): number {
    const record = this.ownershipRecord(name);
    let from: Ownership | undefined;
    try {
      from = JSON.parse(readFileSync(record, 'utf8')) as Ownership;
    } catch { /* never shifted, or the record is lost */ }
    if (!from) {
      const st = statSync(root);
      from = st.uid === 0 && st.gid === 0
        ? { uid: IDENTITY, gid: IDENTITY }
        : { uid: [{ inside: 0, outside: st.uid, count: 65_536 }], gid: [{ inside: 0, outside: st.gid, count: 65_536 }] };
    }
    if (sameMaps(from.uid, to.uid) && sameMaps(from.gid, to.gid)) return 0;
    const n = shiftTree(root, from, to);
    mkdirSync(this.d.runDir, { recursive: true, mode: 0o700 });
    if (sameMaps(to.uid, IDENTITY) && sameMaps(to.gid, IDENTITY)) rmSync(record, { force: true });
    else writeFileSync(record, JSON.stringify(to));
    return n;
  }

  // --- what runs -------------------------------------------------------------

  /** The pidfile's record, if any. */
  private record(name: string): InitRecord | undefined {
    const file = this.pidfile(name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st) {
      this.initRecords.delete(name);
      return undefined;
    }
    const known = this.initRecords.get(name);
    if (known && known.ino === st.ino && known.size === st.size && known.mtimeMs === st.mtimeMs) return known.rec;
    const rec = readPidRecord(file);
    this.initRecords.set(name, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, rec });
    return rec;
  }

  /** /proc/PID/stat's fields from the state on (statFields), or undefined when the process is gone. */
  private fieldsOf(pid: number): string[] | undefined {
    const text = this.proc.stat(pid);
    return text === undefined ? undefined : statFields(text);
  }

  /** /proc/PID/stat's start time, or undefined when the process is gone or a zombie. */
  private startOf(pid: number): string | undefined {
    return startIn(this.fieldsOf(pid));
  }

  /** The container's init when the pidfile names a live process with its start time. */
  liveInit(name: string): number | undefined {
    const rec = this.record(name);
    return rec && this.startOf(rec.pid) === rec.start ? rec.pid : undefined;
  }

  /** The container's processes as one string (its init and its descendants, pid@start: equal strings, the very same processes), or undefined when it is not up. */
  fingerprint(name: string): string | undefined {
    const rec = this.record(name);
    if (!rec) return undefined;
    // Each process's stat read once: its start time, and its thread count for descendants().
    const read = new Map<number, string[] | undefined>();
    const fieldsOf = (pid: number) => {
      if (!read.has(pid)) read.set(pid, this.fieldsOf(pid));
      return read.get(pid);
    };
    if (startIn(fieldsOf(rec.pid)) !== rec.start) return undefined;
    return [rec.pid, ...this.descendants(rec.pid, fieldsOf)].map((pid) => `${pid}@${startIn(fieldsOf(pid)) ?? ''}`).join(' ');
  }

  /**
   * The containers that have a pidfile or a launcher's file in the run directory now (none yet:
   * nothing was ever started). Without either, runtime() finds nothing up and nothing left.
   */
  async withRunFiles(): Promise<ReadonlySet<string>> {
    let files: string[];
    try {
      files = await readdir(this.d.runDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw e;
    }
    const names = new Set<string>();
    for (const f of files) {
      const name = f.endsWith(PIDFILE_SUFFIX) ? f.slice(0, -PIDFILE_SUFFIX.length) : f.endsWith(LAUNCHER_SUFFIX) ? f.slice(0, -LAUNCHER_SUFFIX.length) : undefined;
      if (name) names.add(name);
    }
    return names;
  }

  runtime(ref: ContainerRef): RuntimeView {
    const rec = this.record(ref.name);
    const launcher = this.liveLauncher(ref.name);
    if (launcher && !(rec && this.startOf(rec.pid) === rec.start)) {
      return { up: false, problems: [`an interrupted start left its namespaces running (launcher pid ${launcher.pid}); stop it to end them`] };
    }
    if (!rec) return { up: false, problems: [] };
    if (this.startOf(rec.pid) !== rec.start) return { up: false, problems: [`its init (pid ${rec.pid}) is gone`] };
    return { up: true, problems: [], initPid: rec.pid };
  }

  /** The init's pid for entering it; refuses a container that is not up. */
  initFor(ref: ContainerRef): number {
    const pid = this.liveInit(ref.name);
    if (pid === undefined) {
      throw new FailedPreconditionError(`container ${ref.name} is not running (its init is not up); start it first`, { reason: 'stopped', fields: { container: ref.name } });
    }
    return pid;
  }

  /** nsenter's argv prefix for entering the container as `uid:gid` (root inside when 0:0). */
  enterArgv(ref: ContainerRef, uid: number, gid: number): string[] {
    const tools = this.d.tools();
    if (!tools) throw new FailedPreconditionError('namespaces are not available on this host', { reason: 'unsupported' });
    const pid = this.initFor(ref);
    return [
      tools.nsenter, '--target', String(pid), '--user', '--mount', '--uts', '--ipc', '--pid',
      ...(ref.config.network === 'none' ? ['--net'] : []), '--root', '--wd',
      ...(uid !== 0 || gid !== 0 ? ['-S', String(uid), '-G', String(gid)] : []), '--',
    ];
  }

  // --- down ------------------------------------------------------------------

  /**
   * Host pids of the init's descendants, from /proc/PID/task/TID/children (bounded); the init itself left out.
   * Given `fieldsOf` (a process's stat fields), a process with one thread (field 20) has its one children
   * file read without listing its tasks (List fingerprints every running container's processes).
   */
  private descendants(init: number, fieldsOf?: (pid: number) => string[] | undefined): number[] {
    const out: number[] = [];
    let frontier = [init];
    for (let depth = 0; depth < MAX_TREE_DEPTH && frontier.length && out.length < MAX_DESCENDANTS; depth++) {
      const next: number[] = [];
      for (const pid of frontier) {
        let tasks: string[] = [];
        // A process of one thread: its one children file, kept open for this very process (ProcFiles).
        const fields = fieldsOf?.(pid);
        const single = fields?.[17] === '1' ? startIn(fields) : undefined;
        if (single !== undefined) {
          tasks = [String(pid)];
        } else {
          try { tasks = readdirSync(`${this.d.procDir}/${pid}/task`); } catch { continue; }
        }
        for (const t of tasks) {
          const children = this.proc.children(pid, t, single);
          for (const c of children?.trim().split(/\s+/) ?? []) {
            if (/^\d+$/.test(c) && out.length < MAX_DESCENDANTS) { out.push(Number(c)); next.push(Number(c)); }
          }
        }
      }
      frontier = next;
    }
    return out;
  }

  /** Whether a process is the init's keeper (it ignores SIGTERM, so down does not wait for it). */
  private isKeeper(pid: number): boolean {
    try {
      return readFileSync(`${this.d.procDir}/${pid}/cmdline`, 'latin1') === KEEPER_CMDLINE;
    } catch {
      return false;
    }
  }

  /**
   * SIGTERM to every descendant of the init (its keeper ignores it), up to `graceMs` for them to go, then SIGKILL to the init: the
   * kernel kills whatever is left in its pid namespace, sessions entered with
   * nsenter too. Then the pidfile and the cgroups go.
   */
  async down(ref: ContainerRef, graceMs: number, clock: DriverClock): Promise<void> {
    const rec = this.record(ref.name);
    if (rec && this.startOf(rec.pid) === rec.start) {
      const init = rec.pid;
      const others = () => this.descendants(init).filter((p) => !this.isKeeper(p));
      for (const pid of others()) signal(pid, 'SIGTERM');
      const until = clock.now().getTime() + Math.max(0, graceMs);
      while (others().length > 0 && clock.now().getTime() < until) await clock.sleep(POLL_MS);
      if (this.startOf(init) === rec.start) signal(init, 'SIGKILL');
      const killedBy = clock.now().getTime() + INIT_GONE_MS;
      while (this.startOf(init) === rec.start) {
        if (clock.now().getTime() >= killedBy) throw new InternalError(`the init of ${ref.name} (pid ${init}) is still there ${INIT_GONE_MS / 1000} s after SIGKILL`);
        await clock.sleep(POLL_MS);
      }
    }
    await this.reapLauncher(ref.name, clock);
    rmSync(this.pidfile(ref.name), { force: true });
    await this.d.cgroups.remove(ref.name);
  }
}

/** The start time in a process's stat fields (statFields: [19] is field 22), or undefined when it is gone or a zombie. */
function startIn(fields: readonly string[] | undefined): string | undefined {
  if (!fields || fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** A pidfile's "PID START" line (start: /proc/PID/stat field 22, which tells a reused pid apart), if the file holds one. */
function readPidRecord(path: string): InitRecord | undefined {
  // Most containers are stopped and have none: asked first, as a thrown ENOENT costs ten times an existsSync (List reads a thousand).
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^(\d+) (\d+)\n?$/.exec(text);
  return m ? { pid: Number(m[1]), start: m[2]! } : undefined;
}

/** The last lines of a log, to put in an error ("; log: …"), or nothing. */
function logTail(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' / ');
    return lines ? `; ${path} ends: ${lines}` : '';
  } catch {
    return '';
  }
}

function sameMaps(a: readonly IdMapping[], b: readonly IdMapping[]): boolean {
  return a.length === b.length && a.every((m, i) => m.inside === b[i]!.inside && m.outside === b[i]!.outside && m.count === b[i]!.count);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}
