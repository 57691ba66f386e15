import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { hostname as osHostname, machine as osMachine } from 'node:os';
import { isAbsolute, normalize } from 'node:path';
import {
  AlreadyExistsError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError,
} from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import {
  deepestFirst, isUnder, Layout,
  type DriverCapabilities, type ExecOptions, type HostDriver, type HostFacts, type InstallSpec, type MountEntry,
  type PreparedBase, type ProgressSink, type ServiceProbe,
} from '../host-driver.js';
import { checkWindowSize, ProcessTable, type RootedProcess } from '../host-driver.js';
import { eachLimited } from '../../worker-pool.js';
import { ProbeMemo } from '../probe-memo.js';
import { WorkQueue } from '../work-queue.js';
import { applySplit, kindsIn, planSplit } from './base-split.js';
import { parseMountinfo, toMountEntry, type MountInfoEntry } from './mountinfo.js';
import { parseOsRelease, releaseFromOsRelease } from './os-release.js';
import { lstatAt, mountIdOf, openBeneath, readFileBeneath, splitRelative, withDirBeneath } from './safe-path.js';
import { measureTree, removeTree } from './safe-remove.js';

export interface LinuxDriverOptions {
  readonly runner: CommandRunner;
  readonly rootDir: string;
  /** Where service start/stop output goes, one `<container>.log` per container. */
  readonly logDir: string;
  /** Where the mount table (`self/mountinfo`) and processes (`<pid>/root`) are read; a test can point it elsewhere. */
  readonly procDir?: string;
  /** The host's os-release, for facts(). */
  readonly osReleasePath?: string;
}

/** Inside a container: what rc scripts and exec'd commands get as their whole environment. */
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SERVICE_ENV: Readonly<Record<string, string>> = { PATH: CONTAINER_PATH, HOME: '/root', LANG: 'C', LC_ALL: 'C' };
/** Marker in sharedfs naming the release it was built from (swapped in with it). */
const RELEASE_MARKER = '.qfleet-release';
const DEV_MOUNTPOINT = 'dev';
/**
 * The private /dev: made with mknod in a tmpfs rather than bind mounts of the
 * host's nodes, so one mount covers it, and a chmod/chown inside a container
 * cannot change the host's /dev/null (a bind mount shares the inode).
 */
const DEV_NODES: readonly { name: string; major: number; minor: number }[] = [
  { name: 'null', major: 1, minor: 3 },
  { name: 'zero', major: 1, minor: 5 },
  { name: 'full', major: 1, minor: 7 },
  { name: 'random', major: 1, minor: 8 },
  { name: 'urandom', major: 1, minor: 9 },
  { name: 'tty', major: 5, minor: 0 },
];
const DEV_FSTYPE = 'tmpfs';
const DEV_SOURCE = 'qfleet-dev';
const DEV_OPTIONS = 'mode=755,nosuid,noexec,size=1m';
const INSTALL_TIMEOUT_MS = 30 * 60_000;
const SERVICE_TIMEOUT_MS = 60_000;
/** Characters a managed path may contain, so it can go on a command line (and a terminal's command line) safely. */
const SAFE_PATH = /^\/[A-Za-z0-9._+@:/-]*$/;
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$/;

export class LinuxDriver implements HostDriver {
  readonly name = 'linux' as const;
  readonly layout: Layout;
  private readonly runner: CommandRunner;
  private readonly logDir: string;
  private readonly procDir: string;
  private readonly osReleasePath: string;
  private readonly probes = new ProbeMemo();
  /** Disk-usage walks: one at a time, refreshes resting three times as long as they walked (a quarter of the time at most). */
  private readonly walks = new WorkQueue(1, 3);
  /** Containers whose disk use was measured (their next measurement is a refresh, not urgent). */
  private readonly measured = new Set<string>();

  constructor(opts: LinuxDriverOptions) {
    this.runner = opts.runner;
    this.layout = new Layout(canonicalRoot(opts.rootDir));
    this.logDir = opts.logDir;
    this.procDir = opts.procDir ?? '/proc';
    this.osReleasePath = opts.osReleasePath ?? '/etc/os-release';
  }

  // --- facts -----------------------------------------------------------------

  async facts(): Promise<HostFacts> {
    let text: string;
    try {
      text = readFileSync(this.osReleasePath, 'utf8');
    } catch {
      text = readFileSync('/usr/lib/os-release', 'utf8');
    }
    const release = releaseFromOsRelease(parseOsRelease(text));
    if (!release) throw new InternalError(`cannot tell the host release from ${this.osReleasePath}`);
    return { os: 'Linux', release, machine: osMachine(), hostname: osHostname() };
  }

  capabilities(): DriverCapabilities {
    return { installMethods: ['directory', 'tarball', 'debootstrap'], namespaces: false, sparseImages: false, ipAliases: false, console: true };
  }

  /** Linux releases ("debian 12") carry no patch level: exact equality. */
  releasesMatch(hostRelease: string, baseRelease: string): boolean {
    return hostRelease === baseRelease;
  }

  // --- install ---------------------------------------------------------------

  async prepareBase(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
    this.extractArgv(spec, '/'); // validates the spec before anything touches the disk
    mkdirSync(this.layout.stagingDir, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(`${this.layout.stagingDir}/base-`);
    chmodSync(dir, 0o755);
    try {
      const phase = spec.method === 'debootstrap' ? 'fetch' : 'extract';
      progress({ phase, message: `${describeSpec(spec)} into ${dir}` });
      await this.runner.run({ argv: this.extractArgv(spec, dir), timeoutMs: INSTALL_TIMEOUT_MS });
      const release = baseRelease(dir);
      if (!release) throw new FailedPreconditionError(`the base from ${spec.source} has no etc/os-release or usr/lib/os-release`);
      progress({ phase: spec.method === 'debootstrap' ? 'extract' : 'verify', message: `base release ${release}` });
      return { stagingDir: dir, release };
    } catch (e) {
      await removeTree(dir);
      throw e;
    }
  }

  /** The one command that puts a base into `dir`. */
  private extractArgv(spec: InstallSpec, dir: string): string[] {
    switch (spec.method) {
      case 'directory':
        checkHostPath(spec.source, 'base directory');
        return ['cp', '-a', '--', `${spec.source.replace(/\/+$/, '')}/.`, dir];
      case 'tarball':
        checkHostPath(spec.source, 'base tarball');
        // GNU tar recognises gzip/xz/bzip2/zstd itself when extracting from a file.
        return ['tar', '-xpf', spec.source, '-C', dir, '--numeric-owner'];
      case 'debootstrap': {
        if (!/^[a-z0-9][a-z0-9.-]*$/.test(spec.source)) throw new InvalidArgumentError(`not a debootstrap suite: ${JSON.stringify(spec.source)}`);
        if (spec.mirror && !/^(https?|file):\/\/[^\s'"\\]+$/.test(spec.mirror)) throw new InvalidArgumentError(`not a mirror URL: ${JSON.stringify(spec.mirror)}`);
        return ['debootstrap', '--variant=minbase', spec.source, dir, ...(spec.mirror ? [spec.mirror] : [])];
      }
      default:
        throw new InvalidArgumentError(`install method ${spec.method} is not supported on Linux (use directory, tarball or debootstrap)`);
    }
  }

  async activateBase(base: PreparedBase, progress: ProgressSink): Promise<{ notes: string[] }> {
    this.checkStaged(base);
    const notes: string[] = [];
    const work = mkdtempSync(`${this.layout.stagingDir}/activate-`);
    const newShared = `${work}/sharedfs`;
    const newTemplate = `${work}/template`;
    const plan = planSplit(kindsIn(base.stagingDir));
    progress({ phase: 'split', message: `sharedfs gets ${plan.shared.join(' ') || 'nothing'}`, done: 0, total: plan.shared.length });
    try {
      applySplit(plan, base.stagingDir, newShared, Layout.SHAREDFS_MOUNTPOINT);
      writeFileSync(`${newShared}/${RELEASE_MARKER}`, `${base.release}\n`, { mode: 0o644 });
      chmodSync(newShared, 0o755);
      const dev = kindsIn(base.stagingDir)(DEV_MOUNTPOINT);
      if (dev === 'missing') mkdirSync(`${base.stagingDir}/${DEV_MOUNTPOINT}`, { mode: 0o755 });
      else if (dev !== 'dir') throw new FailedPreconditionError(`the base has /${DEV_MOUNTPOINT} and it is not a directory`);
      renameSync(base.stagingDir, newTemplate);
    } catch (e) {
      // Nothing installed has changed yet; the half-split base is no use, so both go.
      await removeTree(work);
      await removeTree(base.stagingDir);
      throw e;
    }
    progress({ phase: 'split', message: 'template ready', done: plan.shared.length, total: plan.shared.length });

    // Swap: the template is never mounted, so the old one can always go.
    if (existsSync(this.layout.template)) renameSync(this.layout.template, `${work}/old-template`);
    renameSync(newTemplate, this.layout.template);
    if (existsSync(this.layout.sharedfs)) {
      const users = await this.sharedfsUsers();
      if (users.length > 0) {
        const kept = `${this.layout.rootDir}/sharedfs.old-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(this.layout.sharedfs, kept);
        notes.push(`previous sharedfs kept at ${kept}: still mounted at ${users.join(', ')}; it is removed once those containers have stopped`);
      } else {
        renameSync(this.layout.sharedfs, `${work}/old-sharedfs`);
      }
    }
    renameSync(newShared, this.layout.sharedfs);
    progress({ phase: 'swap', message: `sharedfs and template of ${base.release} in place` });
    await removeTree(work);
    return { notes };
  }

  async discardBase(base: PreparedBase): Promise<void> {
    this.checkStaged(base);
    await removeTree(base.stagingDir);
  }

  private checkStaged(base: PreparedBase): void {
    const rel = base.stagingDir.slice(this.layout.stagingDir.length + 1);
    if (!isUnder(base.stagingDir, this.layout.stagingDir) || rel === '' || rel.includes('/') || rel === '..' || rel === '.') {
      throw new InvalidArgumentError(`${base.stagingDir} is not a staged base of ${this.layout.stagingDir}`);
    }
  }

  async installedRelease(): Promise<string | undefined> {
    const text = readFileBeneathIfExists(this.layout.sharedfs, RELEASE_MARKER);
    return text?.trim() || undefined;
  }

  /**
   * Mount points whose source is the current sharedfs directory: same filesystem
   * (major:minor) and the same path inside it (mountinfo's root field).
   */
  /**
   * Mount points that show the installed sharedfs inside containers; when it
   * cannot be placed in the mount table, any container's sharedfs mount counts.
   */
  private async sharedfsUsers(): Promise<string[]> {
    return (await this.usersOf(this.layout.sharedfs)) ?? this.anyContainerSharedfs(await this.mountTable());
  }

  private anyContainerSharedfs(table: readonly MountInfoEntry[]): string[] {
    return table.filter((e) => e.mountPoint.startsWith(`${this.layout.containersDir}/`) && e.mountPoint.endsWith(`/${Layout.SHAREDFS_MOUNTPOINT}`)).map((e) => e.mountPoint);
  }

  /**
   * Mount points that show `dir` (sharedfs, or a retired one), from the kernel's
   * facts: same device and same root within it; undefined when `dir` cannot be
   * placed in the mount table.
   */
  private async usersOf(dir: string): Promise<string[] | undefined> {
    const table = await this.mountTable();
    let fd: number;
    try {
      fd = openBeneath(dir, []);
    } catch {
      return [];
    }
    let home: MountInfoEntry | undefined;
    try {
      const id = mountIdOf(fd);
      home = table.find((e) => e.mountId === id);
    } finally {
      closeSync(fd);
    }
    // Cannot place it in the table: the caller decides what "unknown" means.
    if (!home) return undefined;
    const inFs = normalize(`${home.root}/${dir.slice(home.mountPoint === '/' ? 0 : home.mountPoint.length)}`);
    return table.filter((e) => e.device === home.device && e.root === inFs && e.mountId !== home.mountId).map((e) => e.mountPoint);
  }

  /**
   * Removes sharedfs trees that a re-install kept aside (sharedfs.old-*) because
   * running containers still mounted them, once the kernel shows nothing mounts
   * them any more. A tree whose use cannot be determined is kept. Best effort:
   * returns what it removed.
   */
  async pruneRetiredSharedfs(): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = readdirSync(this.layout.rootDir).filter((n) => /^sharedfs\.old-[0-9A-Za-z-]+$/.test(n));
    } catch {
      return removed;
    }
    for (const n of names) {
      const dir = `${this.layout.rootDir}/${n}`;
      try {
        if (!lstatSync(dir).isDirectory()) continue;
        const users = await this.usersOf(dir);
        if (users === undefined || users.length > 0) continue;
        await removeTree(dir);
        removed.push(dir);
      } catch {
        /* kept: tried again at the next unmount */
      }
    }
    return removed;
  }

  // --- containers ------------------------------------------------------------

  async createContainer(name: string): Promise<void> {
    const root = this.rootOf(name);
    if (!existsSync(this.layout.template) || !(await this.installedRelease())) {
      throw new FailedPreconditionError('no base is installed; run install first');
    }
    mkdirSync(this.layout.containersDir, { recursive: true, mode: 0o755 });
    try {
      mkdirSync(root, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`container ${name} already exists at ${root}`);
      throw e;
    }
    try {
      await this.runner.run({ argv: ['cp', '-a', '--', `${this.layout.template}/.`, root], timeoutMs: INSTALL_TIMEOUT_MS });
    } catch (e) {
      await removeTree(root);
      throw e;
    }
  }

  expectedMounts(name: string): string[] {
    const root = this.rootOf(name);
    return [`${root}/${Layout.SHAREDFS_MOUNTPOINT}`, `${root}/${DEV_MOUNTPOINT}`];
  }

  async mounts(): Promise<MountEntry[]> {
    return (await this.mountTable()).map(toMountEntry);
  }

  /** The kernel's table, read fresh each time (the host is the truth). */
  async mountTable(): Promise<MountInfoEntry[]> {
    return parseMountinfo(await readFile(`${this.procDir}/self/mountinfo`, 'utf8'));
  }

  async mountContainer(name: string): Promise<void> {
    const root = this.rootOf(name);
    await this.mustExist(name, root);
    // Check every mount point first, so a planted symlink refuses the whole call before anything is mounted.
    for (const rel of [Layout.SHAREDFS_MOUNTPOINT, DEV_MOUNTPOINT]) closeSync(openBeneath(root, [rel], { create: true }));
    const before = new Set((await this.mountTable()).filter((e) => isUnder(e.mountPoint, root)).map((e) => e.mountId));
    try {
      await this.mountSharedfs(root);
      await this.mountDev(root);
    } catch (e) {
      // Undo only what this call mounted (the table, not our memory, says what that is).
      const ours = (await this.mountTable()).filter((m) => isUnder(m.mountPoint, root) && !before.has(m.mountId));
      for (const m of deepestFirst(ours.map((o) => ({ target: o.mountPoint })))) {
        await this.runner.run({ argv: ['umount', '--no-canonicalize', m.target] }).catch(() => undefined);
      }
      throw e;
    }
  }

  private async mountSharedfs(root: string): Promise<void> {
    const target = `${root}/${Layout.SHAREDFS_MOUNTPOINT}`;
    if (!existsSync(this.layout.sharedfs)) throw new FailedPreconditionError('no sharedfs is installed; run install first');
    let top = topMountAt(await this.mountTable(), target);
    if (!top) {
      await withDirBeneath(root, [Layout.SHAREDFS_MOUNTPOINT], (fd) =>
        this.runner.run({ argv: ['mount', '--no-canonicalize', '--bind', this.layout.sharedfs, '/proc/self/fd/3'], passFds: [fd] }),
      { create: true });
      top = await this.confirmMounted(root, Layout.SHAREDFS_MOUNTPOINT);
    }
    if (!top.mountOptions.includes('ro')) {
      try {
        // Re-opened after the bind, so the descriptor is the new mount's root.
        await withDirBeneath(root, [Layout.SHAREDFS_MOUNTPOINT], (fd) =>
          this.runner.run({ argv: ['mount', '--no-canonicalize', '-o', 'remount,bind,ro', '/proc/self/fd/3'], passFds: [fd] }));
        top = await this.confirmMounted(root, Layout.SHAREDFS_MOUNTPOINT);
        if (!top.mountOptions.includes('ro')) throw new InternalError(`${target} is still writable after remount`);
      } catch (e) {
        // Never leave a writable sharedfs behind.
        await this.runner.run({ argv: ['umount', '--no-canonicalize', target], okExitCodes: [1, 32] }).catch(() => undefined);
        throw e;
      }
    }
  }

  private async mountDev(root: string): Promise<void> {
    const target = `${root}/${DEV_MOUNTPOINT}`;
    const existing = topMountAt(await this.mountTable(), target);
    if (existing && (existing.fstype !== DEV_FSTYPE || existing.source !== DEV_SOURCE)) {
      // Something else (say the host's /dev, bind-mounted) is there: never mknod into it.
      throw new FailedPreconditionError(`${target} has a ${existing.fstype} mount from ${existing.source}, not the container's own /dev; unmount it first`);
    }
    if (!existing) {
      await withDirBeneath(root, [DEV_MOUNTPOINT], (fd) =>
        this.runner.run({ argv: ['mount', '--no-canonicalize', '-t', DEV_FSTYPE, '-o', DEV_OPTIONS, DEV_SOURCE, '/proc/self/fd/3'], passFds: [fd] }),
      { create: true });
      await this.confirmMounted(root, DEV_MOUNTPOINT);
    }
    await withDirBeneath(root, [DEV_MOUNTPOINT], async (fd) => {
      for (const n of DEV_NODES) {
        if (lstatAt(fd, n.name)) continue;
        await this.runner.run({ argv: ['mknod', '-m', '666', `/proc/self/fd/3/${n.name}`, 'c', String(n.major), String(n.minor)], passFds: [fd] });
      }
    });
  }

  /**
   * The mount now at ROOT/rel, checked two ways: the re-opened mount point's
   * mount id (fdinfo) is in the table, and the table puts it at that path.
   */
  private async confirmMounted(root: string, rel: string): Promise<MountInfoEntry> {
    const target = `${root}/${rel}`;
    const id = await withDirBeneath(root, [rel], (fd) => mountIdOf(fd));
    const table = await this.mountTable();
    const entry = table.find((e) => e.mountId === id);
    if (!entry || entry.mountPoint !== target) {
      throw new InternalError(`mounted at ${target} but the mount table does not show it there`);
    }
    return entry;
  }

  async unmountContainer(name: string): Promise<void> {
    const root = this.rootOf(name);
    const failures: string[] = [];
    const tried = new Set<number>();
    // Passes, because stacked mounts surface one by one; bounded by what was there.
    for (let pass = 0; pass < 64; pass++) {
      const under = deepestFirst((await this.mountTable()).filter((e) => isUnder(e.mountPoint, root)).map((e) => ({ ...e, target: e.mountPoint })));
      const todo = under.filter((e) => !tried.has(e.mountId));
      if (todo.length === 0) break;
      const seenTargets = new Set<string>();
      for (const e of todo) {
        if (seenTargets.has(e.target)) continue; // one per mount point per pass: the top one
        seenTargets.add(e.target);
        const top = topMountAt(under, e.target)!;
        tried.add(top.mountId);
        try {
          await this.checkReachable(root, top);
          // Never lazy (-l): a busy mount must stay visible as a failure, not vanish from the table.
          await this.runner.run({ argv: ['umount', '--no-canonicalize', top.mountPoint] });
        } catch (err) {
          failures.push(`${top.mountPoint}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    const left = (await this.mountTable()).filter((e) => isUnder(e.mountPoint, root)).map((e) => e.mountPoint);
    if (left.length > 0) {
      throw new FailedPreconditionError(`still mounted under ${root}: ${[...new Set(left)].join(', ')}${failures.length ? ` (${failures.join('; ')})` : ''}`);
    }
    // This container may have been the last user of a sharedfs a re-install kept aside.
    await this.pruneRetiredSharedfs();
  }

  /**
   * Before unmounting by path: the path, walked without following symlinks,
   * must lead to exactly this mount; otherwise something inside the container
   * rearranged it and umount could act on the host's mounts.
   */
  private async checkReachable(root: string, entry: MountInfoEntry): Promise<void> {
    const rel = entry.mountPoint === root ? [] : splitRelative(entry.mountPoint.slice(root.length + 1));
    const id = await withDirBeneath(root, rel, (fd) => mountIdOf(fd));
    if (id !== entry.mountId) {
      throw new FailedPreconditionError(`${entry.mountPoint} does not lead to mount ${entry.mountId} any more; refusing to unmount by that path`);
    }
  }

  // --- services --------------------------------------------------------------

  private serviceSpec(name: string, service: string, verb: 'start' | 'stop' | 'status'): CommandSpec {
    const root = this.rootOf(name);
    checkName(service, 'service name');
    return { argv: ['chroot', root, `/etc/init.d/${service}`, verb], env: SERVICE_ENV, cwd: '/', timeoutMs: SERVICE_TIMEOUT_MS };
  }

  async startService(name: string, service: string): Promise<void> {
    await this.mustHaveScript(name, service);
    mkdirSync(this.logDir, { recursive: true, mode: 0o750 });
    // Output to a file: a daemon left behind would hold captured pipes open forever.
    await this.runner.run({ ...this.serviceSpec(name, service, 'start'), logFile: this.logFile(name) });
  }

  async stopService(name: string, service: string): Promise<void> {
    await this.mustHaveScript(name, service);
    mkdirSync(this.logDir, { recursive: true, mode: 0o750 });
    await this.runner.run({ ...this.serviceSpec(name, service, 'stop'), logFile: this.logFile(name) });
  }

  async probeService(name: string, service: string, procs?: ProcessTable): Promise<ServiceProbe> {
    return this.probes.probe(name, service, procs, async () => {
      if (!(await this.hasServiceScript(name, service))) return { running: false, pids: [] };
      const r = await this.runner.run({ ...this.serviceSpec(name, service, 'status'), okExitCodes: ANY_NONZERO });
      return { running: r.exitCode === 0, pids: [] };
    });
  }

  async hasServiceScript(name: string, service: string): Promise<boolean> {
    const root = this.rootOf(name);
    checkName(service, 'service name');
    try {
      return await withDirBeneath(root, ['etc', 'init.d'], (fd) => {
        const st = lstatAt(fd, service);
        return !!st && st.isFile() && (st.mode & 0o111) !== 0;
      });
    } catch (e) {
      if (e instanceof FailedPreconditionError || (e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  private async mustHaveScript(name: string, service: string): Promise<void> {
    if (!(await this.hasServiceScript(name, service))) {
      throw new NotFoundError(`container ${name} has no executable /etc/init.d/${service}`);
    }
  }

  private logFile(name: string): string {
    return `${this.logDir}/${name}.log`;
  }

  // --- processes -------------------------------------------------------------

  async processesIn(name: string): Promise<number[]> {
    this.rootOf(name); // validates the name
    return (await this.processTable()).pidsIn(name);
  }

  /**
   * /proc/PID/root of every process (asynchronously, PROC_IN_FLIGHT at a time), and for
   * those inside the containers directory their start time (/proc/PID/stat
   * field 22), which tells a reused pid apart.
   */
  async processTable(): Promise<ProcessTable> {
    const inside = `${this.layout.containersDir}/`;
    const rooted: RootedProcess[] = [];
    const pids = (await readdir(this.procDir)).filter((e) => /^\d+$/.test(e));
    await eachLimited(pids, PROC_IN_FLIGHT, async (entry) => {
      let root: string;
      try {
        root = await readlink(`${this.procDir}/${entry}/root`);
      } catch {
        return; // gone, a zombie, or a kernel thread
      }
      if (!root.startsWith(inside)) return;
      let start = '';
      try {
        const stat = await readFile(`${this.procDir}/${entry}/stat`, 'utf8');
        start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
      } catch { /* gone since: still listed, as the root link said */ }
      rooted.push({ pid: Number(entry), root, start });
    });
    return new ProcessTable(this.layout.containersDir, rooted);
  }

  async signalProcesses(pids: readonly number[], signal: NodeJS.Signals): Promise<void> {
    for (const pid of pids) {
      if (!Number.isInteger(pid) || pid <= 1) throw new InvalidArgumentError(`refusing to signal pid ${pid}`);
      try {
        process.kill(pid, signal);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
  }

  // --- removal and usage -----------------------------------------------------

  async removeContainer(name: string): Promise<void> {
    const root = this.rootOf(name);
    const mounted = (await this.mountTable()).filter((e) => isUnder(e.mountPoint, root)).map((e) => e.mountPoint);
    if (mounted.length > 0) {
      throw new FailedPreconditionError(`container ${name} still has mounts: ${[...new Set(mounted)].join(', ')}; unmount first`);
    }
    this.probes.forget(name);
    this.measured.delete(name);
    if (!existsSync(root) && !isSymlink(root)) return;
    await removeTree(root);
  }

  /** One tree walk at a time; a container's first measurement goes before refreshes. */
  async diskUsage(name: string): Promise<number> {
    const root = this.rootOf(name);
    return this.walks.run(async () => {
      await this.mustExist(name, root);
      const mountPoints = (await this.mountTable()).filter((e) => isUnder(e.mountPoint, root)).map((e) => e.mountPoint);
      const bytes = await measureTree(root, mountPoints);
      this.measured.add(name);
      return bytes;
    }, !this.measured.has(name));
  }

  // --- exec ------------------------------------------------------------------

  execSpec(name: string, opts: ExecOptions): CommandSpec {
    const root = this.rootOf(name);
    for (const k of Object.keys(opts.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new InvalidArgumentError(`bad environment variable name ${JSON.stringify(k)}`);
    }
    const env: Record<string, string> = { PATH: CONTAINER_PATH, HOME: '/root', ...opts.env };
    // Without a terminal (a console fed from a pipe, a plain exec), no pty: the shell reads stdin as a script.
    if (!opts.tty) {
      const argv = opts.argv.length > 0 && !opts.console ? opts.argv : ['/bin/sh'];
      return { argv: ['chroot', root, ...argv], env, cwd: '/', timeoutMs: EXEC_TIMEOUT_MS };
    }
    // On a terminal, which the runner sets up (script(1)); the console's prompt names the container.
    const inner = opts.console
      ? ['/bin/sh', '-i']
      : opts.argv.length > 0 ? [...opts.argv] : ['/bin/sh', '-i'];
    if (opts.console) env.PS1 = `${name}:\\w# `;
    return {
      argv: ['chroot', root, ...inner],
      env,
      cwd: '/',
      timeoutMs: EXEC_TIMEOUT_MS,
      terminal: { ...(opts.rows && opts.cols ? { rows: opts.rows, cols: opts.cols } : {}) },
    };
  }

  async resizeTerminal(sessionPid: number, rows: number, cols: number): Promise<void> {
    checkWindowSize(rows, cols);
    const pty = await this.sessionPty(sessionPid);
    if (!pty) throw new NotFoundError(`no pseudo-terminal found under session ${sessionPid}`);
    await this.runner.run({ argv: ['stty', '-F', pty, 'rows', String(rows), 'cols', String(cols)], timeoutMs: 5000 });
  }

  /** The /dev/pts slave that a descendant of script(1) (the session's shell) has as stdin; /proc read asynchronously. */
  private async sessionPty(sessionPid: number): Promise<string | undefined> {
    const parentOf = new Map<number, number>();
    const pids = (await readdir(this.procDir)).filter((e) => /^\d+$/.test(e));
    await eachLimited(pids, PROC_IN_FLIGHT, async (e) => {
      try {
        const stat = await readFile(`${this.procDir}/${e}/stat`, 'utf8');
        parentOf.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch { /* gone */ }
    });
    let frontier = [sessionPid];
    for (let depth = 0; depth < 6 && frontier.length; depth++) {
      const next: number[] = [];
      for (const [pid, ppid] of parentOf) if (frontier.includes(ppid)) next.push(pid);
      for (const pid of next.sort((a, b) => a - b)) {
        try {
          const link = await readlink(`${this.procDir}/${pid}/fd/0`);
          if (/^\/dev\/pts\/\d+$/.test(link)) return link;
        } catch { /* gone or no fd 0 */ }
      }
      frontier = next;
    }
    return undefined;
  }

  // --- helpers ---------------------------------------------------------------

  private rootOf(name: string): string {
    checkName(name, 'container name');
    return this.layout.containerRoot(name);
  }

  private async mustExist(name: string, root: string): Promise<void> {
    try {
      closeSync(openBeneath(root, []));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`container ${name} does not exist`);
      throw e;
    }
  }
}

/** /proc reads one process-table scan has outstanding at once. */
const PROC_IN_FLIGHT = 32;
/** Exec and console sessions are interactive; a day is "until the operator leaves". */
const EXEC_TIMEOUT_MS = 24 * 3600_000;
const ANY_NONZERO: readonly number[] = Array.from({ length: 255 }, (_, i) => i + 1);

/** The topmost mount at `target` (the kernel lists mounts in the order they were made). */
function topMountAt(table: readonly MountInfoEntry[], target: string): MountInfoEntry | undefined {
  let top: MountInfoEntry | undefined;
  for (const e of table) if (e.mountPoint === target) top = e;
  return top;
}

function checkName(name: string, what: string): void {
  if (!SAFE_NAME.test(name) || name.length > 200) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(name)}`);
}

function checkHostPath(p: string, what: string): void {
  if (!isAbsolute(p) || p.includes('\0') || p.includes('\n')) throw new InvalidArgumentError(`${what} must be an absolute path: ${JSON.stringify(p)}`);
}

/** The mount table shows resolved paths, so the layout must use them too. */
function canonicalRoot(rootDir: string): string {
  const p = normalize(rootDir).replace(/\/+$/, '');
  if (!SAFE_PATH.test(p) || p === '') throw new InvalidArgumentError(`rootDir must be an absolute path of [A-Za-z0-9._+@:/-]: ${JSON.stringify(rootDir)}`);
  try {
    const real = realpathSync(p);
    if (!SAFE_PATH.test(real)) throw new InvalidArgumentError(`rootDir resolves to an unsafe path: ${JSON.stringify(real)}`);
    return real;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return p;
    throw e;
  }
}

function isSymlink(p: string): boolean {
  try { return lstatSync(p).isSymbolicLink(); } catch { return false; }
}

function readFileBeneathIfExists(root: string, rel: string): string | undefined {
  try {
    return readFileBeneath(root, rel);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Release of a base tree, read without following symlinks out of it. */
export function baseRelease(tree: string): string | undefined {
  const text = readFileBeneathIfExists(tree, 'etc/os-release') ?? readFileBeneathIfExists(tree, 'usr/lib/os-release');
  return text === undefined ? undefined : releaseFromOsRelease(parseOsRelease(text));
}

function describeSpec(spec: InstallSpec): string {
  switch (spec.method) {
    case 'debootstrap': return `debootstrap ${spec.source}${spec.mirror ? ` from ${spec.mirror}` : ''}`;
    case 'tarball': return `extracting ${spec.source}`;
    default: return `copying ${spec.source}`;
  }
}

