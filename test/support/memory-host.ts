import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { FailedPreconditionError } from '../../agent/errors.js';
import {
  isUnder,
  Layout,
  ProcessTable,
  type DriverCapabilities,
  type ExecOptions,
  type HostDriver,
  type HostFacts,
  type InstallSpec,
  type MountEntry,
  type PreparedBase,
  type ProgressSink,
  type ServiceProbe,
  type DriverClock,
} from '../../agent/drivers/host-driver.js';
import type { ContainerRef, RuntimeView } from '../../agent/drivers/container-config.js';
import { refuseUnoffered } from '../../agent/drivers/isolation-check.js';
import type { CommandSpec } from '../../agent/runner/command-runner.js';

/**
 * A host modelled in memory for engine unit tests: a mount table, processes
 * rooted in containers and services that run or not. Container directories are
 * real (under a temp root) because the engine checks they exist. The engine's
 * behaviour on real mounts is proven by the Linux integration tests; this model
 * lets the unit tests reach states that are hard to make for real (a service
 * that dies, a process that ignores SIGTERM, an unmount that stays busy).
 */
export class MemoryHost implements HostDriver {
  readonly name = 'linux' as const;
  readonly layout: Layout;
  release = 'debian 12';
  baseRelease = 'debian 12';
  installed: string | undefined;
  table: MountEntry[] = [];
  /** pid → container name */
  procs = new Map<number, { container: string; service?: string; ignoresTerm?: boolean }>();
  private nextPid = 1000;
  /** Services whose start "succeeds" but whose process dies at once. */
  readonly crashingServices = new Set<string>();
  /** Targets whose umount fails as busy. */
  readonly busyTargets = new Set<string>();
  readonly scripts = new Set<string>(['httpd', 'sshd']);
  readonly calls: string[] = [];
  /** How many times the process table was read. */
  processTableReads = 0;

  constructor(rootDir: string) {
    this.layout = new Layout(rootDir);
    mkdirSync(this.layout.containersDir, { recursive: true });
  }

  async facts(): Promise<HostFacts> {
    return { os: 'Linux', release: this.release, machine: 'x86_64', hostname: 'memhost' };
  }
  capabilities(): DriverCapabilities {
    return {
      installMethods: ['directory', 'tarball'], namespaces: true, sparseImages: false, ipAliases: false, console: true,
      isolation: ['chroot', 'namespaces'], defaultIsolation: 'chroot', limits: { memory: false, cpu: false, pids: true },
      missing: ['limit memory: the model has no memory controller', 'limit cpu: the model has no cpu controller'],
    };
  }
  releasesMatch(a: string, b: string): boolean {
    return a === b;
  }
  async prepareBase(_spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
    progress({ phase: 'extract', message: 'copying' });
    const stagingDir = `${this.layout.stagingDir}/s${this.nextPid++}`;
    mkdirSync(stagingDir, { recursive: true });
    return { stagingDir, release: this.baseRelease };
  }
  async activateBase(base: PreparedBase): Promise<{ notes: string[] }> {
    rmSync(base.stagingDir, { recursive: true, force: true });
    this.installed = base.release;
    return { notes: [] };
  }
  async discardBase(base: PreparedBase): Promise<void> {
    this.calls.push(`discard ${base.stagingDir}`);
    rmSync(base.stagingDir, { recursive: true, force: true });
  }
  async installedRelease(): Promise<string | undefined> {
    return this.installed;
  }
  async createContainer(name: string): Promise<void> {
    this.calls.push(`create ${name}`);
    mkdirSync(this.layout.containerRoot(name));
  }
  expectedMounts(name: string): string[] {
    return [`${this.layout.containerRoot(name)}/sharedfs`, `${this.layout.containerRoot(name)}/dev`];
  }
  async mountContainer(name: string): Promise<void> {
    this.calls.push(`mount ${name}`);
    for (const target of this.expectedMounts(name)) {
      if (!this.table.some((m) => m.target === target)) this.table.push({ source: 'x', target, fstype: 'none', options: ['ro'] });
    }
  }
  async unmountContainer(name: string): Promise<void> {
    this.calls.push(`unmount ${name}`);
    const root = this.layout.containerRoot(name);
    this.table = this.table.filter((m) => !isUnder(m.target, root) || this.busyTargets.has(m.target));
    const left = this.table.filter((m) => isUnder(m.target, root));
    if (left.length) throw new FailedPreconditionError(`still mounted: ${left.map((m) => m.target).join(', ')}`);
  }
  async mounts(): Promise<MountEntry[]> {
    return [...this.table];
  }
  /** namespaces containers that are up: name → the pid of their init. */
  readonly inits = new Map<string, number>();
  async checkConfig(ref: ContainerRef): Promise<void> {
    refuseUnoffered(ref, this.capabilities());
  }
  async up(ref: ContainerRef): Promise<void> {
    this.calls.push(`up ${ref.name} ${ref.config.isolation}`);
    refuseUnoffered(ref, this.capabilities());
    if (ref.config.isolation === 'chroot') return this.mountContainer(ref.name);
    if (!this.inits.has(ref.name)) this.inits.set(ref.name, this.nextPid++);
  }
  async down(ref: ContainerRef, graceMs: number, clock: DriverClock): Promise<void> {
    this.calls.push(`down ${ref.name} ${ref.config.isolation}`);
    const mine = () => [...this.procs].filter(([, p]) => p.container === ref.name).map(([pid]) => pid);
    for (const pid of mine()) if (!this.procs.get(pid)?.ignoresTerm) this.procs.delete(pid);
    const deadline = clock.now().getTime() + graceMs;
    while (mine().length && clock.now().getTime() < deadline) await clock.sleep(Math.max(10, graceMs / 20));
    // The init's end ends every process in its namespace.
    for (const pid of mine()) this.procs.delete(pid);
    this.inits.delete(ref.name);
  }
  async applyLimits(ref: ContainerRef): Promise<void> {
    this.calls.push(`limits ${ref.name} pids=${ref.config.limits.pids}`);
  }
  async runtime(ref: ContainerRef): Promise<RuntimeView> {
    const initPid = this.inits.get(ref.name);
    return { up: initPid !== undefined, problems: [], ...(initPid !== undefined ? { initPid } : {}) };
  }
  /** As the Linux driver answers a List: the containers with no init at all, at once; the rest are asked one by one. */
  async runtimesOf(refs: readonly ContainerRef[]): Promise<Map<string, RuntimeView>> {
    return new Map(refs.filter((r) => !this.inits.has(r.name)).map((r) => [r.name, { up: false, problems: [] }]));
  }
  async startService(ref: ContainerRef, service: string): Promise<void> {
    const name = ref.name;
    this.calls.push(`start ${name} ${service}`);
    if (!this.crashingServices.has(service)) this.procs.set(this.nextPid++, { container: name, service });
  }
  async stopService(ref: ContainerRef, service: string): Promise<void> {
    const name = ref.name;
    this.calls.push(`stop ${name} ${service}`);
    for (const [pid, p] of this.procs) if (p.container === name && p.service === service && !p.ignoresTerm) this.procs.delete(pid);
  }
  async probeService(ref: ContainerRef, service: string): Promise<ServiceProbe> {
    const name = ref.name;
    const pids = [...this.procs].filter(([, p]) => p.container === name && p.service === service).map(([pid]) => pid);
    return { running: pids.length > 0, pids };
  }
  async hasServiceScript(name: string, service: string): Promise<boolean> {
    return this.scripts.has(service) && this.layoutExists(name);
  }
  async processesIn(name: string): Promise<number[]> {
    return (await this.processTable()).pidsIn(name);
  }
  async processTable(): Promise<ProcessTable> {
    this.processTableReads++;
    return new ProcessTable(this.layout.containersDir, [...this.procs].map(([pid, p]) => ({ pid, root: this.layout.containerRoot(p.container), start: '' })));
  }
  async signalProcesses(pids: readonly number[], signal: NodeJS.Signals): Promise<void> {
    this.calls.push(`kill -${signal} ${pids.join(' ')}`);
    for (const pid of pids) if (signal === 'SIGKILL' || !this.procs.get(pid)?.ignoresTerm) this.procs.delete(pid);
  }
  async removeContainer(name: string): Promise<void> {
    const root = this.layout.containerRoot(name);
    const left = this.table.filter((m) => isUnder(m.target, root));
    if (left.length) throw new FailedPreconditionError(`refusing to remove ${root}: mounted: ${left.map((m) => m.target).join(', ')}`);
    this.calls.push(`remove ${name}`);
    rmSync(root, { recursive: true, force: true });
  }
  async diskUsage(_name: string, _opts?: { readonly urgent?: boolean }): Promise<number> {
    return 4096;
  }
  execSpec(ref: ContainerRef, opts: ExecOptions): CommandSpec {
    if (ref.config.isolation !== 'chroot') return { argv: ['nsenter', '-t', String(this.inits.get(ref.name)), ...(opts.console ? ['/bin/sh', '-i'] : opts.argv)] };
    return { argv: ['chroot', this.layout.containerRoot(ref.name), ...(opts.console ? ['/bin/sh', '-i'] : opts.argv)] };
  }

  async resizeTerminal(sessionPid: number, rows: number, cols: number): Promise<void> {
    this.calls.push(`resize ${sessionPid} ${rows}x${cols}`);
  }

  /** A process started by hand inside the container (not a configured service). */
  spawnStray(name: string, ignoresTerm = false): number {
    const pid = this.nextPid++;
    this.procs.set(pid, { container: name, ignoresTerm });
    return pid;
  }

  private layoutExists(name: string): boolean {
    return existsSync(this.layout.containerRoot(name));
  }
}
