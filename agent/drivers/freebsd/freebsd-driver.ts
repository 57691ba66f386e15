import { AlreadyExistsError, CommandFailedError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import {
  Layout, ProcessTable, checkWindowSize, deepestFirst, isUnder,
  type DriverCapabilities, type ExecOptions, type HostDriver, type HostFacts, type InstallSpec,
  type MountEntry, type PreparedBase, type ProgressSink, type ServiceProbe,
} from '../host-driver.js';
import type { ContainerRef, RuntimeView } from '../container-config.js';
import { refuseUnoffered } from '../isolation-check.js';
import { BaseInstaller, type PinnedManifests } from './base-install.js';
import { DEFAULT_FETCH_BASE_URL } from './base-split.js';
import { HostCommands } from './host-commands.js';
import type { MountTable } from './mount-table.js';
import { parseDevfsShowsets, parseDuK, parseOnestatus } from './outputs.js';
import { ProbeMemo } from '../probe-memo.js';
import { WorkQueue } from '../work-queue.js';
import { parseProcstatFiles, rootedProcesses } from './procstat.js';
import { baseBehindKernel, firstLine, parseRelease, stripPatchLevel } from './release.js';
import { assertContainerName, assertEnv, assertHostPath, assertPids, assertServiceName, assertUrl, signalName } from './validate.js';

export interface FreeBSDDriverOptions {
  readonly runner: CommandRunner;
  /** Canonical (symlink-free) path: mount points are compared with realpath(1) output. */
  readonly rootDir: string;
  /** Where rc scripts' output goes (they leave daemons holding it open). Must exist. */
  readonly logDir: string;
  /** Where the driver keeps what identifies its running isolated containers (init pidfiles); created when needed. */
  readonly runDir?: string;
  /** Default https://download.freebsd.org/releases; an InstallSpec mirror overrides it. */
  readonly fetchBaseUrl?: string;
  /** sha256 of MANIFEST by its URL: the only way a plain-http mirror is accepted. */
  readonly pinnedManifests?: PinnedManifests;
  /** devfs ruleset applied to each container's /dev; 4 = devfsrules_jail. */
  readonly devfsRuleset?: number;
  /** Upper bound for an rc script's onestart/onestop (rc.subr waits for pids to exit). */
  readonly serviceGraceMs?: number;
}

/** PATH inside a container (the agent's own environment is never passed on). */
const CONTAINER_PATH = '/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin';
const RC_DIRS = ['etc/rc.d', 'usr/local/etc/rc.d'] as const;

/**
 * qchroot/qjail on FreeBSD: a read-only nullfs sharedfs, a template extracted per
 * container, devfs mounted with a ruleset, services through their rc.d scripts. Every
 * host operation is a command through the injected runner.
 */
export class FreeBSDDriver implements HostDriver {
  readonly name = 'freebsd' as const;
  readonly layout: Layout;
  private readonly host: HostCommands;
  private readonly installer: BaseInstaller;
  private readonly logDir: string;
  private readonly devfsRuleset: number;
  private readonly serviceGraceMs: number;
  private readonly probes = new ProbeMemo();
  /** du runs: one at a time, refreshes resting three times as long as they ran (a quarter of the time at most). */
  private readonly walks = new WorkQueue(1, 3);
  /** Containers whose disk use was measured (their next measurement is a refresh, not urgent). */
  private readonly measured = new Set<string>();

  constructor(opts: FreeBSDDriverOptions) {
    this.layout = new Layout(assertHostPath(opts.rootDir, 'rootDir'));
    this.logDir = assertHostPath(opts.logDir, 'logDir');
    this.devfsRuleset = opts.devfsRuleset ?? 4;
    if (!Number.isSafeInteger(this.devfsRuleset) || this.devfsRuleset < 1 || this.devfsRuleset > 65535) {
      throw new InvalidArgumentError(`invalid devfs ruleset ${this.devfsRuleset}`);
    }
    this.serviceGraceMs = opts.serviceGraceMs ?? 90_000;
    this.host = new HostCommands(opts.runner);
    this.installer = new BaseInstaller(this.host, this.layout, assertUrl(opts.fetchBaseUrl ?? DEFAULT_FETCH_BASE_URL), opts.pinnedManifests);
  }

  /** `uname -r`, read once: the running kernel changes only with a reboot, which restarts the agent. */
  private kernelRelease?: Promise<string>;
  private hostRelease(): Promise<string> {
    if (!this.kernelRelease) {
      const read = this.host.run(['uname', '-r']).then((r) => firstLine(r.stdout));
      // A failed read is not remembered.
      read.catch(() => { if (this.kernelRelease === read) this.kernelRelease = undefined; });
      this.kernelRelease = read;
    }
    return this.kernelRelease;
  }

  /**
   * Options for the sharedfs nullfs mount. `nocover` (refuse a mount point that
   * is already a mount: EBUSY) and `emptydir` (refuse a non-empty one: ENOTEMPTY)
   * came with r352614 (Sept 2019, in head before stable/13 branched, so 13.0 on):
   * sbin/mount/mntopts.h puts MOPT_NOCOVER and MOPT_EMPTYDIR in MOPT_STDOPTS, which
   * mount_nullfs parses with getmntopts(3). Where they are missing getmntopts
   * refuses an unknown option, so older releases get `ro` alone.
   */
  private async nullfsOptions(): Promise<string> {
    const major = parseRelease(await this.hostRelease())?.major ?? 0;
    return major >= 13 ? 'ro,nocover,emptydir' : 'ro';
  }

  // --- host ----------------------------------------------------------------------

  async facts(): Promise<HostFacts> {
    const one = async (flag: string) => firstLine((await this.host.run(['uname', flag])).stdout);
    const os = await one('-s');
    if (os !== 'FreeBSD') throw new FailedPreconditionError(`the freebsd driver runs on FreeBSD, not ${JSON.stringify(os)}`);
    return { os, release: await one('-r'), machine: await one('-m'), hostname: await one('-n') };
  }

  capabilities(): DriverCapabilities {
    return {
      installMethods: ['download', 'tarball', 'directory'], namespaces: false, sparseImages: false, ipAliases: false, console: true,
      isolation: ['chroot'], defaultIsolation: 'chroot', limits: { memory: false, cpu: false, pids: false },
      missing: ['jail: not implemented yet'],
    };
  }

  releasesMatch(hostRelease: string, baseRelease: string): boolean {
    return stripPatchLevel(hostRelease) === stripPatchLevel(baseRelease);
  }

  // --- install -------------------------------------------------------------------

  prepareBase(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
    return this.installer.prepare(spec, progress);
  }

  activateBase(base: PreparedBase, progress: ProgressSink): Promise<{ notes: string[] }> {
    return this.installer.activate(base, progress);
  }

  discardBase(base: PreparedBase): Promise<void> {
    return this.installer.discard(base);
  }

  installedRelease(): Promise<string | undefined> {
    return this.installer.installedRelease();
  }

  /** A base at a lower -pN than the running kernel (uname -r, read once) misses fixes the host has. */
  async baseBehind(baseRelease: string): Promise<string | undefined> {
    if (baseRelease === '') return undefined;
    return baseBehindKernel(await this.hostRelease(), baseRelease);
  }

  // --- containers ----------------------------------------------------------------

  private root(name: string): string {
    return this.layout.containerRoot(assertContainerName(name));
  }

  async createContainer(name: string): Promise<void> {
    const root = this.root(name);
    if (await this.host.test('-e', root)) throw new AlreadyExistsError(`container ${name} already exists at ${root}`);
    if (!(await this.host.test('-d', this.layout.template))) {
      throw new FailedPreconditionError(`no template at ${this.layout.template}: install a base first`);
    }
    await this.host.run(['mkdir', '-p', this.layout.containersDir]);
    const archive = this.installer.templateArchive;
    const hasArchive = await this.host.test('-f', archive);
    try {
      // The template already carries the /sharedfs mount point and the symlinks into it.
      if (hasArchive) {
        // tar -x as root with -p: hard links stay links, modes, owners and file flags (schg) are restored.
        await this.host.run(['mkdir', root]);
        await this.host.run(['tar', '-xpf', archive, '-C', root], { timeoutMs: 30 * 60_000 });
      } else {
        // A base installed before the archive existed: cp -a keeps flags and symlinks (not hard links).
        await this.host.run(['cp', '-a', this.layout.template, root]);
      }
    } catch (err) {
      await this.host.removeTree(root, 'container').catch(() => undefined);
      throw err;
    }
  }

  expectedMounts(name: string): string[] {
    const root = this.root(name);
    return [`${root}/${Layout.SHAREDFS_MOUNTPOINT}`, `${root}/dev`];
  }

  async mounts(): Promise<MountEntry[]> {
    return (await this.host.mountTable()).entries;
  }

  async mountContainer(name: string): Promise<void> {
    const root = this.root(name);
    if (!(await this.host.test('-d', root))) throw new NotFoundError(`container ${name} does not exist`);
    const [sharedTarget, devTarget] = this.expectedMounts(name) as [string, string];
    const before = await this.host.mountTable();
    const at = (t: MountTable, target: string) => t.entries.filter((e) => e.target === target);

    const existingShared = at(before, sharedTarget)[0];
    if (existingShared && !(existingShared.fstype === 'nullfs' && existingShared.source === this.layout.sharedfs)) {
      throw new FailedPreconditionError(`${sharedTarget} has ${existingShared.source} (${existingShared.fstype}) mounted, not ${this.layout.sharedfs}`);
    }
    const existingDev = at(before, devTarget)[0];
    if (existingDev && existingDev.fstype !== 'devfs') {
      throw new FailedPreconditionError(`${devTarget} has ${existingDev.source} (${existingDev.fstype}) mounted, not devfs`);
    }
    const needShared = !existingShared;
    const needDev = !existingDev;
    if (!needShared && !needDev) return;

    // Every check before the first mount: a refused container gets no mount at all.
    if (needShared) await this.assertMountPoint(name, sharedTarget);
    if (needDev) {
      await this.assertMountPoint(name, devTarget);
      const sets = parseDevfsShowsets((await this.host.run(['devfs', 'rule', 'showsets'])).stdout);
      if (!sets.includes(this.devfsRuleset)) {
        throw new FailedPreconditionError(`devfs ruleset ${this.devfsRuleset} is not loaded (loaded: ${sets.join(' ') || 'none'}); load it (devfs.rules(5)) before starting containers`);
      }
    }

    const nullfsOptions = needShared ? await this.nullfsOptions() : '';

    if (needShared) await this.host.run(['mount_nullfs', '-o', nullfsOptions, this.layout.sharedfs, sharedTarget]);
    if (needDev) {
      // The ruleset is the mount's own from its first moment (sys/fs/devfs/devfs_vfsops.c sets
      // the "ruleset" option's number as the mount's ruleset before any node is there), as jail(8)
      // mounts it: it also hides device nodes created later. `devfs rule applyset` after a plain
      // mount only filters the nodes that exist at that moment, and leaves a window with none hidden.
      await this.host.run(['mount', '-t', 'devfs', '-o', `ruleset=${this.devfsRuleset}`, 'devfs', devTarget]);
    }

    // mount(8) resolves the mount point itself: confirm from the kernel where things landed.
    const after = await this.host.mountTable();
    const shared = at(after, sharedTarget)[0];
    if (!shared || shared.fstype !== 'nullfs' || !shared.options.includes('ro')) {
      throw new FailedPreconditionError(`after mounting, ${sharedTarget} is not a read-only nullfs in the mount table`);
    }
    if (!at(after, devTarget).some((e) => e.fstype === 'devfs')) {
      throw new FailedPreconditionError(`after mounting, ${devTarget} is not devfs in the mount table`);
    }
    const known = new Set(before.entries.map((e) => `${e.source} ${e.target}`));
    const stray = after.entries.filter((e) => !known.has(`${e.source} ${e.target}`) && !isUnder(e.target, root));
    if (stray.length > 0) {
      throw new FailedPreconditionError(`a mount for ${name} landed outside the container: ${stray.map((e) => e.target).join(', ')}; unmount it by hand`);
    }
  }

  /** The mount point must be that very directory: realpath(1) equal to the path (no symlink anywhere). */
  private async assertMountPoint(name: string, target: string): Promise<void> {
    const resolved = await this.host.realpath(target);
    if (resolved === undefined) throw new FailedPreconditionError(`mount point ${target} is missing in container ${name}`);
    if (resolved !== target) {
      throw new FailedPreconditionError(`mount point ${target} resolves to ${resolved} (a symlink${isUnder(resolved, this.root(name)) ? '' : ' out of the container'}): refusing to mount`);
    }
  }

  async unmountContainer(name: string): Promise<void> {
    const root = this.root(name);
    const table = await this.host.mountTable();
    const unclear = table.unparsable.filter((l) => l.includes(root));
    if (unclear.length > 0) {
      throw new FailedPreconditionError(`cannot tell what is mounted in ${root} (mount -p lines with whitespace: ${unclear.map((l) => JSON.stringify(l)).join(', ')})`);
    }
    // Deepest first; at the same depth sharedfs goes last (FREEBSD.md: devfs, extra nullfs, sharedfs).
    const sharedTarget = this.expectedMounts(name)[0];
    const under = deepestFirst(table.entries.filter((e) => isUnder(e.target, root)))
      .map((e, i) => ({ e, i, depth: e.target.split('/').length }))
      .sort((a, b) => b.depth - a.depth || Number(a.e.target === sharedTarget) - Number(b.e.target === sharedTarget) || a.i - b.i)
      .map(({ e }) => e);
    if (under.length === 0) return;
    for (const e of under) {
      try {
        await this.host.run(['umount', e.target]);
      } catch (err) {
        const detail = err instanceof CommandFailedError ? err.stderr.trim() : String(err);
        throw new FailedPreconditionError(`cannot unmount ${e.target} of container ${name}: ${detail}; are processes still running in it?`);
      }
    }
    const left = HostCommands.mountsUnder(await this.host.mountTable(), root);
    if (left.length > 0) throw new FailedPreconditionError(`container ${name} is still mounted after umount: ${left.join(', ')}`);
  }

  // --- services ------------------------------------------------------------------

  private serviceSpec(name: string, service: string, verb: 'onestart' | 'onestop' | 'onestatus'): CommandSpec {
    const root = this.root(name);
    // chroot(8) chdirs into the root itself; cwd there keeps nothing of the host open.
    return { argv: ['chroot', root, '/usr/sbin/service', assertServiceName(service), verb], cwd: root };
  }

  // --- isolation ---------------------------------------------------------------

  async checkConfig(ref: ContainerRef): Promise<void> {
    refuseUnoffered(ref, this.capabilities());
  }

  async up(ref: ContainerRef): Promise<void> {
    refuseUnoffered(ref, this.capabilities());
    await this.mountContainer(ref.name);
  }

  async down(ref: ContainerRef): Promise<void> {
    throw new InternalError(`down() is for isolated containers; ${ref.name} is ${ref.config.isolation}`);
  }

  async runtime(ref: ContainerRef): Promise<RuntimeView> {
    throw new InternalError(`runtime() is for isolated containers; ${ref.name} is ${ref.config.isolation}`);
  }

  async probeService(ref: ContainerRef, service: string, procs?: ProcessTable): Promise<ServiceProbe> {
    const name = ref.name;
    return this.probes.probe(name, service, procs, () => this.askStatus(name, service));
  }

  private async askStatus(name: string, service: string): Promise<ServiceProbe> {
    const spec = this.serviceSpec(name, service, 'onestatus');
    const r = await this.host.run(spec.argv, { ...spec, okExitCodes: [1] });
    const out = `${r.stdout}${r.stderr}`;
    if (r.exitCode !== 0) {
      if (/does not exist in \/etc\/rc\.d/.test(out)) throw new NotFoundError(`container ${name} has no rc script ${service}`);
      if (/^chroot: /m.test(out)) throw new FailedPreconditionError(`container ${name} cannot run service(8) (${out.trim()}): is it mounted?`);
    }
    return parseOnestatus(r.exitCode, out);
  }

  async startService(ref: ContainerRef, service: string): Promise<void> {
    const name = ref.name;
    if ((await this.probeService(ref, service)).running) return;
    const spec = this.serviceSpec(name, service, 'onestart');
    const logFile = `${this.logDir}/${name}.${service}.log`;
    try {
      await this.host.run(spec.argv, { ...spec, logFile, timeoutMs: this.serviceGraceMs });
    } catch (err) {
      if (!(err instanceof CommandFailedError)) throw err;
      throw new CommandFailedError(err.argv, err.exitCode, `${err.stderr}${err.stderr ? '\n' : ''}(output in ${logFile})`, { timedOut: err.timedOut, cause: err });
    }
  }

  async stopService(ref: ContainerRef, service: string): Promise<void> {
    const name = ref.name;
    if (!(await this.probeService(ref, service)).running) return;
    const spec = this.serviceSpec(name, service, 'onestop');
    await this.host.run(spec.argv, { ...spec, timeoutMs: this.serviceGraceMs });
  }

  /**
   * Looks in the container's own tree (etc and usr/local are template, not
   * sharedfs) with realpath(1), and only tests a file whose resolved path stays
   * in the container: a planted symlink never makes us probe the host.
   */
  async hasServiceScript(name: string, service: string): Promise<boolean> {
    const root = this.root(name);
    assertServiceName(service);
    for (const dir of RC_DIRS) {
      const resolved = await this.host.realpath(`${root}/${dir}/${service}`);
      if (resolved === undefined || !isUnder(resolved, root) || resolved === root) continue;
      if (await this.host.test('-f', resolved)) return true;
    }
    return false;
  }

  // --- processes -----------------------------------------------------------------

  async processesIn(name: string): Promise<number[]> {
    this.root(name); // validates the name
    return (await this.processTable()).pidsIn(name);
  }

  /** One `procstat -af`: every process's root directory (its `root` row). */
  async processTable(): Promise<ProcessTable> {
    const r = await this.host.run(['procstat', '-af'], { okExitCodes: [1] });
    // Processes exiting mid-walk make procstat complain; a listing with its header is still good.
    if (r.exitCode !== 0 && !/\bPID\s+COMM\b/.test(r.stdout)) throw new CommandFailedError(r.argv, r.exitCode, r.stderr);
    return new ProcessTable(this.layout.containersDir, rootedProcesses(parseProcstatFiles(r.stdout)));
  }

  async signalProcesses(pids: readonly number[], signal: NodeJS.Signals): Promise<void> {
    const list = assertPids(pids);
    const sig = signalName(signal);
    if (list.length === 0) return;
    const r = await this.host.run(['kill', `-${sig}`, ...list.map(String)], { okExitCodes: [1] });
    // A process that already exited is what signalling wanted anyway.
    const other = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/No such process/.test(l));
    if (r.exitCode !== 0 && other.length > 0) throw new CommandFailedError(r.argv, r.exitCode, r.stderr);
  }

  // --- removal and usage ---------------------------------------------------------

  async removeContainer(name: string): Promise<void> {
    const root = this.root(name);
    this.probes.forget(name);
    this.measured.delete(name);
    await this.host.removeTree(root, `container ${name} at`);
  }

  /** One du at a time; a container's first measurement goes before refreshes. */
  async diskUsage(name: string): Promise<number> {
    const root = this.root(name);
    return this.walks.run(async () => {
      if (!(await this.host.test('-d', root))) throw new NotFoundError(`container ${name} does not exist`);
      // -x: sharedfs and devfs are mounts, so they are not counted.
      const kib = parseDuK((await this.host.run(['du', '-sxk', root])).stdout);
      if (kib === undefined) throw new FailedPreconditionError(`cannot read du output for ${root}`);
      this.measured.add(name);
      return kib * 1024;
    }, !this.measured.has(name));
  }

  async resizeTerminal(sessionPid: number, rows: number, cols: number): Promise<void> {
    checkWindowSize(rows, cols);
    assertPids([sessionPid]);
    // script(1)'s child holds the pty slave as fd 0: `pgrep -P` finds it, `procstat -f` names the pty.
    const children = (await this.host.run(['pgrep', '-P', String(sessionPid)], { okExitCodes: [1] })).stdout
      .split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 1);
    for (const child of children) {
      const rows0 = parseProcstatFiles((await this.host.run(['procstat', '-f', String(child)], { okExitCodes: [1] })).stdout);
      const pty = rows0.find((r) => r.fd === '0' && /^\/dev\/pts\/\d+$/.test(r.path))?.path;
      if (pty) {
        await this.host.run(['stty', '-f', pty, 'rows', String(rows), 'cols', String(cols)]);
        return;
      }
    }
    throw new NotFoundError(`no pseudo-terminal found under session ${sessionPid}`);
  }

  execSpec(ref: ContainerRef, opts: ExecOptions): CommandSpec {
    const name = ref.name;
    const root = this.root(name);
    // A console fed from a pipe (no tty) runs a plain shell that reads stdin as a script.
    const argv = opts.argv.length > 0 ? [...opts.argv] : opts.console ? (opts.tty ? ['/bin/sh', '-i'] : ['/bin/sh']) : [];
    if (argv.length === 0) throw new InvalidArgumentError('exec needs a command');
    if (argv.some((a) => a.includes('\0'))) throw new InvalidArgumentError('command arguments must not contain NUL');
    const env: Record<string, string> = { PATH: CONTAINER_PATH, HOME: '/root', ...(opts.tty ? { TERM: 'xterm' } : {}), ...assertEnv(opts.env) };
    // qchroot console prompt "NAME:PATH# " (sh(1) expands \w and \$ in PS1).
    if (opts.console) env.PS1 = `${name}:\\w\\$ `;
    const spec: CommandSpec = { argv: ['chroot', root, ...argv], env, cwd: root };
    // On a pty of its own, which the runner sets up (script(1) with this argv: agent/runner/terminal.ts).
    return opts.tty ? { ...spec, terminal: { ...(opts.rows && opts.cols ? { rows: opts.rows, cols: opts.cols } : {}) } } : spec;
  }
}
