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
} from '../../agent/drivers/host-driver.js';
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
    return { installMethods: ['directory', 'tarball'], namespaces: false, sparseImages: false, ipAliases: false, console: true };
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
  async startService(name: string, service: string): Promise<void> {
    this.calls.push(`start ${name} ${service}`);
    if (!this.crashingServices.has(service)) this.procs.set(this.nextPid++, { container: name, service });
  }
  async stopService(name: string, service: string): Promise<void> {
    this.calls.push(`stop ${name} ${service}`);
    for (const [pid, p] of this.procs) if (p.container === name && p.service === service && !p.ignoresTerm) this.procs.delete(pid);
  }
  async probeService(name: string, service: string): Promise<ServiceProbe> {
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
  async diskUsage(): Promise<number> {
    return 4096;
  }
  execSpec(name: string, opts: ExecOptions): CommandSpec {
    return { argv: ['chroot', this.layout.containerRoot(name), ...(opts.console ? ['/bin/sh', '-i'] : opts.argv)] };
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
