import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname as osHostname, machine as osMachine } from 'node:os';
import { AlreadyExistsError, FailedPreconditionError, InternalError } from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import {
  Layout,
  type DriverCapabilities, type DriverClock, type ExecOptions, type HostDriver, type HostFacts, type InstallSpec, type MountEntry,
  type PreparedBase, type ProcessTable, type ProgressSink, type ServiceProbe,
} from '../host-driver.js';
import type { ContainerRef, RuntimeView } from '../container-config.js';
import { refuseUnoffered } from '../isolation-check.js';
import { NoCgroups, type ContainerCgroups } from './cgroups.js';
import { resolveRunAs } from './container-ids.js';
import { entryFor, type Entry } from './entry.js';
import { IDENTITY } from './id-shift.js';
import { LinuxNamespaces } from './namespaces.js';
import { probeNamespaces, type NsProbe, type ProbeHost } from './ns-probe.js';
import { ProbeMemo } from '../probe-memo.js';
import { DiskUsageBatches, duQueue } from '../du-batches.js';
import { INSTALL_TIMEOUT_MS, LinuxBaseInstaller } from './base-install.js';
import { LinuxExec } from './exec.js';
import { canonicalRoot, isSymlink, mustExist, rootOf } from './host-paths.js';
import { LinuxMounts } from './mounts.js';
import { parseOsRelease, releaseFromOsRelease } from './os-release.js';
import { LinuxProcesses } from './processes.js';
import { removeTree } from './safe-remove.js';
import { measureContainerTrees } from './disk-usage.js';
import { LinuxServices } from './services.js';

export { baseRelease } from './base-install.js';

export interface LinuxDriverOptions {
  readonly runner: CommandRunner;
  readonly rootDir: string;
  /** Where service start/stop output goes, one `<container>.log` per container. */
  readonly logDir: string;
  /** Where the driver keeps what identifies its running isolated containers (init pidfiles); created when needed. */
  readonly runDir?: string;
  /** Where the mount table (`self/mountinfo`) and processes (`<pid>/root`) are read; a test can point it elsewhere. */
  readonly procDir?: string;
  /** The host's os-release, for facts(). */
  readonly osReleasePath?: string;
  /** The containers' control groups (limits); default: none, and capabilities() says so. */
  readonly cgroups?: ContainerCgroups;
  /** What the namespaces probe reads of the host; a test can describe another host. */
  readonly probeHost?: ProbeHost;
}

/**
 * qchroot on Linux: a read-only bind of sharedfs and a private tmpfs /dev per
 * container, services through /etc/init.d scripts run chrooted; and jchroot's
 * model (isolation namespaces, namespaces.ts): an init holding user, mount,
 * pid, uts, ipc (and net) namespaces, entered with nsenter. The work is in
 * the rooms beside this file: base-install (extract, split, swap), mounts,
 * processes (/proc), services, exec (chroot, terminal); every path is walked
 * without following symlinks (safe-path, safe-remove). This facade wires them
 * and keeps what spans several: create, remove and disk use.
 */
export class LinuxDriver implements HostDriver {
  readonly name = 'linux' as const;
  readonly layout: Layout;
  private readonly runner: CommandRunner;
  private readonly osReleasePath: string;
  private readonly base: LinuxBaseInstaller;
  private readonly mountsOf: LinuxMounts;
  private readonly procs: LinuxProcesses;
  private readonly services: LinuxServices;
  private readonly exec: LinuxExec;
  private readonly ns: LinuxNamespaces;
  private readonly cgroups: ContainerCgroups;
  private readonly probeHost: ProbeHost | undefined;
  private nsProbe: NsProbe | undefined;
  private readonly probes = new ProbeMemo();
  /** Disk use: one batch at a time (du-batches.ts), refreshes resting three times as long as they took (a quarter of the time at most). */
  private readonly usage: DiskUsageBatches;

  constructor(opts: LinuxDriverOptions) {
    this.runner = opts.runner;
    this.layout = new Layout(canonicalRoot(opts.rootDir));
    this.osReleasePath = opts.osReleasePath ?? '/etc/os-release';
    const procDir = opts.procDir ?? '/proc';
    this.mountsOf = new LinuxMounts(this.runner, this.layout, procDir);
    this.base = new LinuxBaseInstaller(this.runner, this.layout, this.mountsOf);
    this.procs = new LinuxProcesses(this.layout, procDir);
    this.cgroups = opts.cgroups ?? new NoCgroups();
    this.probeHost = opts.probeHost;
    this.ns = new LinuxNamespaces({
      runner: this.runner, layout: this.layout, runDir: opts.runDir ?? `${this.layout.rootDir}/.run`, logDir: opts.logDir, procDir,
      cgroups: this.cgroups, tools: () => this.namespacesProbe().tools, rootOf: (n) => this.rootOf(n),
      unmountOnHost: (root) => this.mountsOf.unmount(root),
    });
    this.services = new LinuxServices(this.runner, (n) => this.rootOf(n), opts.logDir, this.probes, (r) => this.entry(r), (n) => this.ns.fingerprint(n));
    this.exec = new LinuxExec(this.runner, this.procs);
    this.usage = new DiskUsageBatches(duQueue(), (roots, urgent) => measureContainerTrees(this.runner, this.mountsOf, roots, urgent));
  }

  /** The namespaces probe, read once (files only) and kept: tools do not come and go under a running agent. */
  private namespacesProbe(): NsProbe {
    this.nsProbe ??= probeNamespaces(this.probeHost);
    return this.nsProbe;
  }

  private entry(ref: ContainerRef): Entry {
    return entryFor(ref, this.rootOf(ref.name), this.ns, this.cgroups);
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

  /** namespaces first when the host can run it; it stays the default either way, and `missing` says why it is not offered. */
  capabilities(): DriverCapabilities {
    const ns = this.namespacesProbe();
    const { missing: cgMissing, ...limits } = this.cgroups.capabilities();
    return {
      installMethods: ['directory', 'tarball', 'debootstrap'], namespaces: !!ns.tools, sparseImages: false, ipAliases: false, console: true,
      isolation: ns.tools ? ['namespaces', 'chroot'] : ['chroot'], defaultIsolation: 'namespaces', limits,
      missing: [...ns.missing, ...cgMissing],
    };
  }

  /** Linux releases ("debian 12") carry no patch level: exact equality. */
  releasesMatch(hostRelease: string, baseRelease: string): boolean {
    return hostRelease === baseRelease;
  }

  // --- install (base-install.ts) ---------------------------------------------

  prepareBase(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
    return this.base.prepare(spec, progress);
  }

  activateBase(base: PreparedBase, progress: ProgressSink): Promise<{ notes: string[] }> {
    return this.base.activate(base, progress);
  }

  discardBase(base: PreparedBase): Promise<void> {
    return this.base.discard(base);
  }

  installedRelease(): Promise<string | undefined> {
    return this.base.installedRelease();
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

  // --- mounts (mounts.ts) ----------------------------------------------------

  expectedMounts(name: string): string[] {
    return this.mountsOf.expected(this.rootOf(name));
  }

  mounts(): Promise<MountEntry[]> {
    return this.mountsOf.entries();
  }

  async mountContainer(name: string): Promise<void> {
    const root = this.rootOf(name);
    mustExist(name, root);
    await this.mountsOf.mount(root);
  }

  async unmountContainer(name: string): Promise<void> {
    await this.mountsOf.unmount(this.rootOf(name));
    // A chroot's limits end with it (its processes are gone by now); a namespaces container's went with its init (down).
    await this.cgroups.remove(name);
    // This container may have been the last user of a sharedfs a re-install kept aside.
    await this.base.pruneRetired();
  }

  // --- services (services.ts) ------------------------------------------------

  // --- isolation ---------------------------------------------------------------

  /**
   * refuseUnoffered, then what only the host can tell: for namespaces, the id
   * maps, the fstab mounts' targets and bind sources, the user and group in
   * the container's own files; for chroot, that it asks for nothing a chroot
   * cannot do (a network, maps or mounts of its own), rather than ignoring it.
   */
  async checkConfig(ref: ContainerRef): Promise<void> {
    refuseUnoffered(ref, this.capabilities());
    const c = ref.config;
    if (c.isolation === 'namespaces') {
      this.ns.check(ref);
      return;
    }
    const asks = [
      ...(c.network === 'none' ? ['network none'] : []),
      ...(c.uidMap.length || c.gidMap.length ? ['id maps'] : []),
      ...(c.mounts.length ? ['mounts'] : []),
      ...(c.hostname ? ['a hostname'] : []),
    ];
    if (asks.length) {
      throw new FailedPreconditionError(`container ${ref.name} runs as a chroot, which cannot have ${asks.join(', ')}; use isolation namespaces or remove ${asks.length > 1 ? 'them' : 'it'}`, { reason: 'unsupported', fields: { container: ref.name } });
    }
    if (c.user || c.group) resolveRunAs(this.ns.filesRoot(ref.name), ref.name, c.user, c.group);
  }

  async up(ref: ContainerRef): Promise<void> {
    refuseUnoffered(ref, this.capabilities());
    if (ref.config.isolation === 'namespaces') return this.ns.up(ref);
    const root = this.rootOf(ref.name);
    mustExist(ref.name, root);
    // A tree a namespaces run left owned by shifted ids goes back to the host's ids.
    this.ns.shiftOwnership(ref.name, root, { uid: IDENTITY, gid: IDENTITY });
    await this.cgroups.prepare(ref.name, ref.config.limits, { always: true });
    await this.mountContainer(ref.name);
  }

  async down(ref: ContainerRef, graceMs: number, clock: DriverClock): Promise<void> {
    if (ref.config.isolation !== 'namespaces') throw new InternalError(`down() is for isolated containers; ${ref.name} is ${ref.config.isolation}`);
    await this.ns.down(ref, graceMs, clock);
  }

  async runtime(ref: ContainerRef): Promise<RuntimeView> {
    if (ref.config.isolation !== 'namespaces') throw new InternalError(`runtime() is for isolated containers; ${ref.name} is ${ref.config.isolation}`);
    this.rootOf(ref.name);
    return this.ns.runtime(ref);
  }

  /** The namespaces containers with neither a pidfile nor a launcher's file: nothing of them runs (one readdir, not two lookups each). */
  async runtimesOf(refs: readonly ContainerRef[]): Promise<Map<string, RuntimeView>> {
    const out = new Map<string, RuntimeView>();
    const busy = await this.ns.withRunFiles();
    for (const ref of refs) {
      if (ref.config.isolation === 'namespaces' && !busy.has(ref.name)) out.set(ref.name, { up: false, problems: [] });
    }
    return out;
  }

  async applyLimits(ref: ContainerRef): Promise<void> {
    this.rootOf(ref.name);
    // Made at start in every hierarchy the host has, so that every process of the container is in them.
    if (this.cgroups.procsFiles(ref.name).length === 0) {
      throw new FailedPreconditionError(
        `Error; ${ref.name} runs without cgroups (started by an older agent, or before this host had the controllers); ` +
          `its new limits take effect when it is restarted (qfleet stop ${ref.name}; qfleet start ${ref.name}).`,
        { reason: 'precondition', fields: { container: ref.name } },
      );
    }
    await this.cgroups.prepare(ref.name, ref.config.limits);
  }

  startService(ref: ContainerRef, service: string): Promise<void> {
    return this.services.start(ref, service);
  }

  stopService(ref: ContainerRef, service: string): Promise<void> {
    return this.services.stop(ref, service);
  }

  probeService(ref: ContainerRef, service: string, procs?: ProcessTable): Promise<ServiceProbe> {
    return this.services.probe(ref, service, procs);
  }

  hasServiceScript(name: string, service: string): Promise<boolean> {
    return this.services.hasScript(name, service);
  }

  // --- processes (processes.ts) ----------------------------------------------

  async processesIn(name: string): Promise<number[]> {
    this.rootOf(name); // validates the name
    return (await this.procs.table()).pidsIn(name);
  }

  processTable(): Promise<ProcessTable> {
    return this.procs.table();
  }

  signalProcesses(pids: readonly number[], signal: NodeJS.Signals): Promise<void> {
    return this.procs.signal(pids, signal);
  }

  // --- removal and usage -----------------------------------------------------

  async removeContainer(name: string): Promise<void> {
    const root = this.rootOf(name);
    const mounted = await this.mountsOf.pointsUnder(root);
    if (this.ns.liveInit(name) !== undefined) {
      throw new FailedPreconditionError(`container ${name} still has its init running; stop it first`, { reason: 'running', fields: { container: name } });
    }
    if (mounted.length > 0) {
      throw new FailedPreconditionError(`container ${name} still has mounts: ${[...new Set(mounted)].join(', ')}; unmount first`);
    }
    this.probes.forget(name);
    this.ns.forget(name);
    if (!existsSync(root) && !isSymlink(root)) return;
    await removeTree(root);
  }

  /** Measured with others in one du (disk-usage.ts); an urgent measurement goes before the rest. */
  async diskUsage(name: string, opts: { readonly urgent?: boolean } = {}): Promise<number> {
    const root = this.rootOf(name);
    mustExist(name, root);
    return this.usage.measure(root, opts.urgent ?? false);
  }

  // --- exec (exec.ts) --------------------------------------------------------

  execSpec(ref: ContainerRef, opts: ExecOptions): CommandSpec {
    return this.exec.spec(ref.name, this.entry(ref), opts);
  }

  resizeTerminal(sessionPid: number, rows: number, cols: number): Promise<void> {
    return this.exec.resize(sessionPid, rows, cols);
  }

  private rootOf(name: string): string {
    return rootOf(this.layout, name);
  }
}
