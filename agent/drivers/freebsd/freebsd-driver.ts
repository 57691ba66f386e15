import { AlreadyExistsError, CommandFailedError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import {
  Layout, ProcessTable, SYSTEM_DRIVER_CLOCK, checkWindowSize, deepestFirst, isUnder,
  type DriverCapabilities, type DriverClock, type ExecOptions, type HostDriver, type HostFacts, type InstallSpec,
  type MountEntry, type PreparedBase, type ProgressSink, type ServiceProbe,
} from '../host-driver.js';
import type { ContainerRef, ExtraMount, RuntimeView } from '../container-config.js';
import { refuseUnoffered } from '../isolation-check.js';
import { BaseInstaller, type PinnedManifests } from './base-install.js';
import { DEFAULT_FETCH_BASE_URL } from './base-split.js';
import { HostCommands } from './host-commands.js';
import { jailCreateArgv, jailName, parseJls, rctlFilter, rctlRules, saysJailNotFound, type JailInfo } from './jail.js';
import type { MountTable } from './mount-table.js';
import { parseDevfsShowsets, parseOnestatus, parseSysctlInt } from './outputs.js';
import { ProbeMemo } from '../probe-memo.js';
import { DiskUsageBatches, DU_BATCH_TIMEOUT_MS, duAnswers, duArgv, duQueue } from '../du-batches.js';
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
  /** What the driver waits with when it signals a chroot service's processes itself; default: real time. */
  readonly clock?: DriverClock;
  /** Where the driver says why it did something other than asked (a chroot rc stop it would not run). */
  readonly warn?: (message: string, fields: Record<string, unknown>) => void;
}

/** What `sysctl -n kern.racct.enable` said: rctl(8) limits work only when it is 1. */
interface RacctState {
  readonly enabled: boolean;
  /** Why limits are missing, for capabilities().missing ("kern.racct.enable is 0 (...)"). */
  readonly why: string;
}

const LIMIT_NAMES = ['memory', 'cpu', 'pids'] as const;

/** How long runtime() answers from one jls and mount table read: about one List. */
const RUNTIME_SNAPSHOT_MS = 1000;

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
  /** du runs, a batch of containers each, queued as duQueue() says (du-batches.ts). */
  private readonly usage = new DiskUsageBatches(duQueue(), (roots, urgent) => this.measureTrees(roots, urgent));
  private readonly clock: DriverClock;
  private readonly warn: (message: string, fields: Record<string, unknown>) => void;

  constructor(opts: FreeBSDDriverOptions) {
    this.layout = new Layout(assertHostPath(opts.rootDir, 'rootDir'));
    this.logDir = assertHostPath(opts.logDir, 'logDir');
    this.devfsRuleset = opts.devfsRuleset ?? 4;
    if (!Number.isSafeInteger(this.devfsRuleset) || this.devfsRuleset < 1 || this.devfsRuleset > 65535) {
      throw new InvalidArgumentError(`invalid devfs ruleset ${this.devfsRuleset}`);
    }
    this.serviceGraceMs = opts.serviceGraceMs ?? 90_000;
    this.clock = opts.clock ?? SYSTEM_DRIVER_CLOCK;
    this.warn = opts.warn ?? (() => undefined);
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
    const facts: HostFacts = { os, release: await one('-r'), machine: await one('-m'), hostname: await one('-n') };
    // `version` asks facts() and then capabilities(): read what the limits depend on first, so they are truthful.
    await this.racctState();
    return facts;
  }

  /**
   * jail (the default) and chroot. Limits are rctl(8) rules on the jail, offered
   * when kern.racct.enable is 1; that sysctl is read once, at its first need
   * (facts(), a check of a config with limits, a jail's up or down), and until
   * then the limits are reported missing as "not read yet" (capabilities() is
   * synchronous; asking it starts the read).
   */
  capabilities(): DriverCapabilities {
    if (!this.racctKnown) void this.racctState().catch(() => undefined);
    return this.capabilitiesWith(this.racctKnown);
  }

  /** capabilities() from what is known of kern.racct.enable, without starting a read. */
  private capabilitiesWith(racct: RacctState | undefined): DriverCapabilities {
    const on = racct?.enabled ?? false;
    const why = racct?.why ?? 'kern.racct.enable not read yet';
    return {
      installMethods: ['download', 'tarball', 'directory'], namespaces: false, sparseImages: false, ipAliases: false, console: true,
      isolation: ['jail', 'chroot'], defaultIsolation: 'jail', limits: { memory: on, cpu: on, pids: on },
      missing: on ? [] : LIMIT_NAMES.map((l) => `limit ${l}: ${why}`),
    };
  }

  private racctRead?: Promise<RacctState>;
  private racctKnown?: RacctState;

  /** `sysctl -n kern.racct.enable`, read once (a loader tunable: it changes only with a reboot, which restarts the agent). */
  private racctState(): Promise<RacctState> {
    if (!this.racctRead) {
      const read = this.host.run(['sysctl', '-n', 'kern.racct.enable'], { okExitCodes: [1] }).then((r): RacctState => {
        const v = r.exitCode === 0 ? parseSysctlInt(r.stdout) : undefined;
        if (v === 1) return { enabled: true, why: '' };
        if (v === 0) return { enabled: false, why: 'kern.racct.enable is 0 (set kern.racct.enable=1 in /boot/loader.conf and reboot)' };
        // sysctl: unknown oid 'kern.racct.enable': a kernel built without RACCT/RCTL.
        return { enabled: false, why: `kern.racct.enable is not there (${firstLine(r.stderr || r.stdout) || 'no answer'}): the kernel needs options RACCT and RCTL` };
      });
      read.then((s) => { this.racctKnown = s; }, () => { if (this.racctRead === read) this.racctRead = undefined; });
      this.racctRead = read;
    }
    return this.racctRead;
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
    return this.changing(() => this.mountContainerNow(name));
  }

  private async mountContainerNow(name: string): Promise<void> {
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
    return this.changing(() => this.unmountContainerNow(name));
  }

  private async unmountContainerNow(name: string): Promise<void> {
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

  /**
   * The rc script's command. chroot: chroot(8) into the root. jail: `jexec -l JAIL
   * /usr/sbin/service`, which is what `service -j JAIL` runs (usr.sbin/service/service.sh)
   * without first loading the host's rc.subr and rc.conf, and whatever the host's
   * service(8) version; rc.subr inside a jail finds processes by jail id, so a
   * script's stop never reaches past its jail.
   */
  private serviceSpec(ref: ContainerRef, service: string, verb: 'onestart' | 'onestop' | 'onestatus'): CommandSpec {
    const root = this.root(ref.name);
    const svc = assertServiceName(service);
    if (ref.config.isolation === 'jail') return { argv: ['jexec', '-l', jailName(ref.name), '/usr/sbin/service', svc, verb], cwd: root };
    // chroot(8) chdirs into the root itself; cwd there keeps nothing of the host open.
    return { argv: ['chroot', root, '/usr/sbin/service', svc, verb], cwd: root };
  }

  // --- isolation ---------------------------------------------------------------

  /**
   * What FreeBSD cannot do with this config, refused in words (reason
   * 'unsupported') before anything is changed: Linux's uid maps; user, group,
   * env and workdir for services (service(8) runs a script as root in `env -i`
   * from /, so rc.conf's NAME_user, NAME_group, NAME_env and NAME_chdir are the
   * way); in chroot mode everything only a jail gives (hostname, network none,
   * securelevel, extra mounts, limits). Then the mode and limits this host offers.
   */
  async checkConfig(ref: ContainerRef): Promise<void> {
    const c = ref.config;
    const no = (field: string, why: string) =>
      new FailedPreconditionError(`Error; ${ref.name}: ${why}.`, { reason: 'unsupported', fields: { container: ref.name, field, isolation: c.isolation } });
    if (c.uidMap.length > 0 || c.gidMap.length > 0) {
      throw no(c.uidMap.length > 0 ? 'uid_map' : 'gid_map', 'uid and gid maps are Linux user namespaces; FreeBSD has none (a jail keeps the host\'s ids): remove them');
    }
    const rcVars: [string, boolean][] = [['user', c.user !== ''], ['group', c.group !== ''], ['env', Object.keys(c.env).length > 0], ['workdir', c.workdir !== '']];
    for (const [field, set] of rcVars) {
      if (set) {
        const rc = { user: 'NAME_user', group: 'NAME_group', env: 'NAME_env', workdir: 'NAME_chdir' }[field];
        throw no(field, `FreeBSD runs services through their rc scripts as root (service(8) clears the environment and starts from /), so ${field} cannot be applied to them; set ${rc} in the container's /etc/rc.conf instead, and remove ${field}`);
      }
    }
    const { memoryBytes, cpus, pids } = c.limits;
    if (c.isolation === 'chroot') {
      if (memoryBytes > 0 || cpus > 0 || pids > 0) {
        throw no('limits', 'FreeBSD enforces no limits on a chroot (rctl(8) limits jails, users, login classes and processes; a chroot is none of these): use isolation jail, or remove the limits');
      }
      const jailOnly: [string, boolean][] = [['hostname', c.hostname !== ''], ['network', c.network !== 'host'], ['securelevel', c.securelevel >= 0], ['mounts', c.mounts.length > 0]];
      for (const [field, set] of jailOnly) if (set) throw no(field, `a chroot shares the host's ${field === 'mounts' ? 'mount table' : field === 'network' ? 'network' : 'kernel state'}; ${field} needs isolation jail`);
    }
    // kern.racct.enable is read only when a limit is asked.
    const racct = c.isolation === 'jail' && (memoryBytes > 0 || cpus > 0 || pids > 0) ? await this.racctState() : this.racctKnown;
    refuseUnoffered(ref, this.capabilitiesWith(racct));
    for (const m of c.mounts) {
      if (m.kind === 'bind' && !(await this.host.test('-d', assertHostPath(m.source, 'bind source')))) {
        throw new FailedPreconditionError(`Error; ${ref.name}: the bind source ${m.source} is not a directory on this host.`, { reason: 'unsupported', fields: { container: ref.name, field: 'mounts' } });
      }
    }
  }

  /**
   * chroot: mountContainer. jail: sharedfs and the config's mounts (nullfs binds,
   * tmpfs), then `jail -c` (which mounts devfs with the ruleset itself), then the
   * rctl rules. A jail of this name already there at this root is left as it is.
   */
  async up(ref: ContainerRef): Promise<void> {
    return this.changing(() => this.upNow(ref));
  }

  private async upNow(ref: ContainerRef): Promise<void> {
    await this.checkConfig(ref);
    if (ref.config.isolation !== 'jail') {
      await this.mountContainer(ref.name);
      return;
    }
    const root = this.root(ref.name);
    const mine = await this.ourJail(ref.name);
    if (mine) return;
    await this.mountForJail(ref);
    await this.host.run(jailCreateArgv(ref, root, this.devfsRuleset));
    if ((await this.racctState()).enabled) {
      // Rules are kept by jail name and outlive a jail: clear what an earlier run may have left first.
      await this.rctlClear(ref.name);
      for (const rule of rctlRules(ref.name, ref.config.limits)) await this.host.run(['rctl', '-a', rule]);
    }
  }

  /**
   * The jail of this container, if one runs; refuses a jail of its name at another
   * path (another agent's, or an operator's): it is not ours to use or remove.
   */
  private async ourJail(name: string): Promise<JailInfo | undefined> {
    const root = this.root(name);
    const jname = jailName(name);
    const found = (await this.jails()).find((j) => j.name === jname);
    if (found && found.path !== root) {
      throw new FailedPreconditionError(`a jail named ${jname} (jid ${found.jid}) runs at ${found.path || '?'}, not at ${root}: it is not this container's; leaving it alone`);
    }
    return found;
  }

  /** Every running jail, from one `jls --libxo json -v`. */
  private async jails(): Promise<JailInfo[]> {
    const r = await this.host.run(['jls', '--libxo', 'json', '-v']);
    const list = parseJls(r.stdout);
    if (!list) throw new FailedPreconditionError(`cannot read the jail list (jls --libxo json -v printed ${JSON.stringify(r.stdout.slice(0, 200))})`);
    return list;
  }

  /** Pids in the jail (`pgrep -j JID`; exit 1 = none). */
  private async jailPids(jid: number): Promise<number[]> {
    const r = await this.host.run(['pgrep', '-j', String(jid)], { okExitCodes: [1] });
    return r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isSafeInteger(n) && n > 1);
  }

  /** A running jail's rctl rules replaced by its config's limits (a chroot has none: checkConfig refuses them). */
  async applyLimits(ref: ContainerRef): Promise<void> {
    if (ref.config.isolation !== 'jail' || !(await this.ourJail(ref.name))) return;
    if (!(await this.racctState()).enabled) return;
    await this.rctlClear(ref.name);
    for (const rule of rctlRules(ref.name, ref.config.limits)) await this.host.run(['rctl', '-a', rule]);
  }

  /** `rctl -r jail:NAME`; a filter that matched no rule (ESRCH, "No such process") is fine. */
  private async rctlClear(name: string): Promise<void> {
    const r = await this.host.run(['rctl', '-r', rctlFilter(name)], { okExitCodes: [1, 255] });
    if (r.exitCode !== 0 && !/No such process/.test(r.stderr)) throw new CommandFailedError(r.argv, r.exitCode, r.stderr);
  }

  /**
   * sharedfs and the config's extra mounts, for `jail -c`. Not devfs: jail(8)'s
   * mount.devfs mounts it with the ruleset (a devfs left there by an earlier run
   * is unmounted, so the jail's own is the only one). Every check before the
   * first mount; the mount table read again after, as mountContainer does.
   */
  private async mountForJail(ref: ContainerRef): Promise<void> {
    const name = ref.name;
    const root = this.root(name);
    if (!(await this.host.test('-d', root))) throw new NotFoundError(`container ${name} does not exist`);
    const [sharedTarget, devTarget] = this.expectedMounts(name) as [string, string];
    const before = await this.host.mountTable();
    const at = (t: MountTable, target: string) => t.entries.filter((e) => e.target === target);
    const extras = [...ref.config.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
    const extraTarget = (m: ExtraMount) => `${root}${m.target}`;

    const existingShared = at(before, sharedTarget)[0];
    if (existingShared && !(existingShared.fstype === 'nullfs' && existingShared.source === this.layout.sharedfs)) {
      throw new FailedPreconditionError(`${sharedTarget} has ${existingShared.source} (${existingShared.fstype}) mounted, not ${this.layout.sharedfs}`);
    }
    const existingDev = at(before, devTarget);
    if (existingDev.some((e) => e.fstype !== 'devfs')) throw new FailedPreconditionError(`${devTarget} has something other than devfs mounted`);
    const pending: ExtraMount[] = [];
    for (const m of extras) {
      const there = at(before, extraTarget(m))[0];
      const same = there && (m.kind === 'bind' ? there.fstype === 'nullfs' && there.source === m.source : there.fstype === 'tmpfs');
      if (there && !same) throw new FailedPreconditionError(`${extraTarget(m)} has ${there.source} (${there.fstype}) mounted, not the configured ${m.kind}`);
      if (!there) pending.push(m);
    }

    if (!existingShared) await this.assertMountPoint(name, sharedTarget);
    await this.assertMountPoint(name, devTarget);
    // A target under another configured mount exists only once that one is mounted (in its source's tree):
    // it is checked right before its own mount, the others now.
    const nested = (m: ExtraMount) => extras.some((o) => o !== m && isUnder(m.target, o.target));
    for (const m of pending) if (!nested(m)) await this.assertMountPoint(name, extraTarget(m));
    const sets = parseDevfsShowsets((await this.host.run(['devfs', 'rule', 'showsets'])).stdout);
    if (!sets.includes(this.devfsRuleset)) {
      throw new FailedPreconditionError(`devfs ruleset ${this.devfsRuleset} is not loaded (loaded: ${sets.join(' ') || 'none'}); load it (devfs.rules(5)) before starting containers`);
    }

    if (!existingShared) await this.host.run(['mount_nullfs', '-o', await this.nullfsOptions(), this.layout.sharedfs, sharedTarget]);
    for (let i = 0; i < existingDev.length; i++) await this.host.run(['umount', devTarget]);
    for (const m of pending) {
      if (nested(m)) await this.assertMountPoint(name, extraTarget(m));
      const rw = m.readOnly ? 'ro' : 'rw';
      if (m.kind === 'bind') await this.host.run(['mount_nullfs', '-o', rw, m.source, extraTarget(m)]);
      else await this.host.run(['mount', '-t', 'tmpfs', '-o', m.sizeBytes > 0 ? `${rw},size=${m.sizeBytes}` : rw, 'tmpfs', extraTarget(m)]);
    }

    const after = await this.host.mountTable();
    const shared = at(after, sharedTarget)[0];
    if (!shared || shared.fstype !== 'nullfs' || !shared.options.includes('ro')) {
      throw new FailedPreconditionError(`after mounting, ${sharedTarget} is not a read-only nullfs in the mount table`);
    }
    for (const m of extras) {
      if (at(after, extraTarget(m)).length === 0) throw new FailedPreconditionError(`after mounting, ${extraTarget(m)} is not in the mount table`);
    }
    const known = new Set(before.entries.map((e) => `${e.source} ${e.target}`));
    const stray = after.entries.filter((e) => !known.has(`${e.source} ${e.target}`) && !isUnder(e.target, root));
    if (stray.length > 0) {
      throw new FailedPreconditionError(`a mount for ${name} landed outside the container: ${stray.map((e) => e.target).join(', ')}; unmount it by hand`);
    }
  }

  /**
   * Ends a jail after its services' rc stop: SIGTERM to everything in it
   * (`pkill -j`), a wait of up to `graceMs` on the injected clock, then `jail -R`,
   * whose jail_remove(2) kills what is left with SIGKILL. Not `jail -r`: it refuses
   * parameters on its command line (so no stop.timeout there), reads
   * /etc/jail.conf (an operator's exec.stop would run), and waits its default 10 s
   * again; -R "simply removes" the jail. Then the rctl rules go and everything
   * under the root is unmounted. A jail already gone is fine.
   */
  async down(ref: ContainerRef, graceMs: number, clock: DriverClock): Promise<void> {
    return this.changing(() => this.downNow(ref, graceMs, clock));
  }

  private async downNow(ref: ContainerRef, graceMs: number, clock: DriverClock): Promise<void> {
    if (ref.config.isolation !== 'jail') throw new InternalError(`down() is for isolated containers; ${ref.name} is ${ref.config.isolation}`);
    const name = ref.name;
    const mine = await this.ourJail(name);
    if (mine) {
      let pids = await this.jailPids(mine.jid);
      if (pids.length > 0) {
        await this.host.run(['pkill', '-TERM', '-j', String(mine.jid)], { okExitCodes: [1] });
        const deadline = clock.now().getTime() + graceMs;
        for (let i = 0; i < 10_000 && (pids = await this.jailPids(mine.jid)).length > 0 && clock.now().getTime() < deadline; i++) {
          await clock.sleep(Math.min(200, Math.max(10, graceMs / 20)));
        }
        if (pids.length > 0) this.warn('processes in the jail outlived SIGTERM and the grace period; removing the jail kills them', { container: name, jid: mine.jid, pids });
      }
      const r = await this.host.run(['jail', '-R', jailName(name)], { okExitCodes: [1] });
      if (r.exitCode !== 0 && !saysJailNotFound(r.stderr)) throw new CommandFailedError(r.argv, r.exitCode, r.stderr);
      // The kernel's SIGKILL is delivered, not waited for: the mounts are busy until the processes are gone.
      for (let i = 0; i < 50 && (await this.jailPids(mine.jid)).length > 0; i++) await clock.sleep(100);
    }
    if ((await this.racctState()).enabled) await this.rctlClear(name);
    await this.unmountContainer(name);
  }

  /**
   * jls and the mount table as one List sees them: read once and shared by every
   * runtime() within RUNTIME_SNAPSHOT_MS (a List of a thousand jails runs one jls,
   * not a thousand); any change this driver makes drops it.
   */
  private snapshot: { readonly at: number; readonly value: Promise<{ jails: JailInfo[]; table: MountTable }> } | undefined;

  /** A change to the host (mounts, jails): the snapshot runtime() reads is dropped before and after it. */
  private async changing(fn: () => Promise<void>): Promise<void> {
    this.snapshot = undefined;
    try {
      await fn();
    } finally {
      this.snapshot = undefined;
    }
  }

  private runtimeSnapshot(): Promise<{ jails: JailInfo[]; table: MountTable }> {
    const now = Date.now();
    if (this.snapshot && now - this.snapshot.at < RUNTIME_SNAPSHOT_MS) return this.snapshot.value;
    const value = Promise.all([this.jails(), this.host.mountTable()]).then(([jails, table]) => ({ jails, table }));
    const snap = { at: now, value };
    this.snapshot = snap;
    value.catch(() => { if (this.snapshot === snap) this.snapshot = undefined; });
    return value;
  }

  /** jail: whether its jail runs and which of its mounts are missing, from one jls and one mount table read per List; no process scan. */
  async runtime(ref: ContainerRef): Promise<RuntimeView> {
    if (ref.config.isolation !== 'jail') throw new InternalError(`runtime() is for isolated containers; ${ref.name} is ${ref.config.isolation}`);
    const root = this.root(ref.name);
    const jname = jailName(ref.name);
    const { jails, table } = await this.runtimeSnapshot();
    const found = jails.find((j) => j.name === jname);
    if (!found) return { up: false, problems: [] };
    if (found.path !== root) return { up: false, problems: [`a jail named ${jname} (jid ${found.jid}) runs at ${found.path || '?'}, not at ${root}`] };
    const want = [...this.expectedMounts(ref.name), ...ref.config.mounts.map((m) => `${root}${m.target}`)];
    const problems = want.filter((t) => !table.entries.some((e) => e.target === t)).map((t) => `${t} is not mounted`);
    return { up: true, problems, jid: found.jid };
  }

  async probeService(ref: ContainerRef, service: string, procs?: ProcessTable): Promise<ServiceProbe> {
    const name = ref.name;
    return this.probes.probe(name, service, procs?.fingerprint(name), () => this.askStatus(ref, service));
  }

  private async askStatus(ref: ContainerRef, service: string): Promise<ServiceProbe> {
    const name = ref.name;
    const spec = this.serviceSpec(ref, service, 'onestatus');
    const r = await this.host.run(spec.argv, { ...spec, okExitCodes: [1] });
    const out = `${r.stdout}${r.stderr}`;
    if (r.exitCode !== 0) {
      if (/does not exist in \/etc\/rc\.d/.test(out)) throw new NotFoundError(`container ${name} has no rc script ${service}`);
      if (/^chroot: /m.test(out)) throw new FailedPreconditionError(`container ${name} cannot run service(8) (${out.trim()}): is it mounted?`);
      // No jail, no service running in it.
      if (/^jexec: /m.test(r.stderr) && saysJailNotFound(r.stderr)) return { running: false, pids: [] };
    }
    return parseOnestatus(r.exitCode, out);
  }

  async startService(ref: ContainerRef, service: string): Promise<void> {
    const name = ref.name;
    if ((await this.probeService(ref, service)).running) return;
    const spec = this.serviceSpec(ref, service, 'onestart');
    const logFile = `${this.logDir}/${name}.${service}.log`;
    try {
      await this.host.run(spec.argv, { ...spec, logFile, timeoutMs: this.serviceGraceMs });
    } catch (err) {
      if (!(err instanceof CommandFailedError)) throw err;
      throw new CommandFailedError(err.argv, err.exitCode, `${err.stderr}${err.stderr ? '\n' : ''}(output in ${logFile})`, { timedOut: err.timedOut, cause: err });
    }
  }

  async stopService(ref: ContainerRef, service: string): Promise<void> {
    if (ref.config.isolation !== 'jail') return this.stopChrootService(ref, service);
    if (!(await this.probeService(ref, service)).running) return;
    const spec = this.serviceSpec(ref, service, 'onestop');
    await this.host.run(spec.argv, { ...spec, timeoutMs: this.serviceGraceMs });
  }

  /**
   * A chroot's rc stop, never reaching a process outside the container. rc.subr
   * signals the pids it finds (a pidfile's, or for a script without one every
   * process of that name in jail 0, which every chroot and the host are in);
   * `onestatus` reports exactly those ("is running as pid N"). Their root
   * directories (procstat -f) say whose they are: all in the container (its root
   * or below), the script stops them; any outside, the script is not run, and the
   * container's own pids get SIGTERM, then SIGKILL after the service grace.
   */
  private async stopChrootService(ref: ContainerRef, service: string): Promise<void> {
    const name = ref.name;
    const status = await this.askStatus(ref, service);
    if (!status.running) return;
    const root = this.root(name);
    const roots = await this.rootsOf(status.pids);
    const inside = status.pids.filter((p) => { const r = roots.get(p); return r !== undefined && isUnder(r, root); });
    const outside = status.pids.filter((p) => { const r = roots.get(p); return r !== undefined && !isUnder(r, root); });
    if (outside.length === 0) {
      const spec = this.serviceSpec(ref, service, 'onestop');
      await this.host.run(spec.argv, { ...spec, timeoutMs: this.serviceGraceMs });
      return;
    }
    this.warn('not running the rc stop: it would signal processes outside the container (rc.subr finds a script\'s processes by name in every chroot and on the host); signalling only the container\'s own', {
      container: name, service, outside: outside.map((p) => `${p} (root ${roots.get(p)})`), inside,
    });
    if (inside.length === 0) return;
    await this.signalProcesses(inside, 'SIGTERM');
    const stillInside = async () => {
      const now = await this.rootsOf(inside);
      return inside.filter((p) => { const r = now.get(p); return r !== undefined && isUnder(r, root); });
    };
    let left = await stillInside();
    const deadline = this.clock.now().getTime() + this.serviceGraceMs;
    for (let i = 0; i < 10_000 && left.length > 0 && this.clock.now().getTime() < deadline; i++) {
      await this.clock.sleep(Math.min(200, Math.max(10, this.serviceGraceMs / 20)));
      left = await stillInside();
    }
    if (left.length > 0) await this.signalProcesses(left, 'SIGKILL');
  }

  /** Each pid's root directory (`procstat -f PID...`, its `root` row); a pid that is gone has none. */
  private async rootsOf(pids: readonly number[]): Promise<Map<number, string>> {
    const list = assertPids(pids);
    if (list.length === 0) return new Map();
    // procstat exits non-zero when one of the pids is gone; the rows of the others are still good.
    const r = await this.host.run(['procstat', '-f', ...list.map(String)], { okExitCodes: [1] });
    return new Map(rootedProcesses(parseProcstatFiles(r.stdout)).filter((p) => list.includes(p.pid)).map((p) => [p.pid, p.root]));
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
    await this.host.removeTree(root, `container ${name} at`);
  }

  /** Measured with others in one du; an urgent measurement goes before the rest. */
  async diskUsage(name: string, opts: { readonly urgent?: boolean } = {}): Promise<number> {
    return this.usage.measure(this.root(name), opts.urgent ?? false);
  }

  /**
   * One `du -sxk` for a batch of containers: -x keeps it out of sharedfs
   * (nullfs) and devfs, which are mounts. It follows no symlink, and counts a
   * file of several hard links once in the whole batch. A batch nobody waits
   * for runs under nice(1) (duArgv).
   */
  private async measureTrees(roots: readonly string[], urgent: boolean): Promise<Map<string, number | Error>> {
    // Exit 1: some tree could not be read (one deleted meanwhile); the others' lines are there.
    const r = await this.host.run(duArgv(['-sxk', '--', ...roots], urgent), { okExitCodes: [1], timeoutMs: DU_BATCH_TIMEOUT_MS });
    return duAnswers(r, roots, 1024, '\n');
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
    let spec: CommandSpec;
    if (ref.config.isolation === 'jail') {
      // jexec -l: a clean login environment of the jail's root (HOME, SHELL, USER from its passwd; TERM kept);
      // env(1), run inside, adds ours. It would read a first word with '=' as one more variable.
      if (argv[0]!.includes('=')) throw new InvalidArgumentError(`the command ${JSON.stringify(argv[0])} must not contain '='`);
      const { HOME: _home, TERM, ...add } = env;
      spec = {
        argv: ['jexec', '-l', jailName(name), '/usr/bin/env', ...Object.entries(add).map(([k, v]) => `${k}=${v}`), ...argv],
        env: { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', ...(TERM ? { TERM } : {}) },
        cwd: root,
      };
    } else {
      spec = { argv: ['chroot', root, ...argv], env, cwd: root };
    }
    // On a pty of its own, which the runner sets up (script(1) with this argv: agent/runner/terminal.ts).
    return opts.tty ? { ...spec, terminal: { ...(opts.rows && opts.cols ? { rows: opts.rows, cols: opts.cols } : {}) } } : spec;
  }
}
