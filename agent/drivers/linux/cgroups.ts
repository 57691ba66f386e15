import { closeSync, constants, existsSync, openSync, readFileSync, rmdirSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LimitCapabilities, Limits } from '../container-config.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { SYSTEM_DRIVER_CLOCK, type DriverClock } from '../host-driver.js';
import { parseMountinfo } from './mountinfo.js';
import { errno, fdPath, lstatAt, openBeneath } from './safe-path.js';

/**
 * A container's control groups, which enforce its limits (memory, CPU, pids)
 * on every process in it. The Linux driver asks for the cgroup.procs files
 * before it starts anything in the container, and hands them to the runner
 * (CommandSpec.joinCgroups) so the init, services and exec sessions join them
 * before they run.
 */
export interface ContainerCgroups {
  /** Which limits this host can enforce, and why any it cannot ("limit memory: ..."). */
  capabilities(): LimitCapabilities & { readonly missing: readonly string[] };
  /**
   * Creates or updates the container's cgroups with these limits; answers the
   * cgroup.procs files to join (none when there are no limits to enforce).
   */
  prepare(name: string, limits: Limits, opts?: { readonly always?: boolean }): Promise<string[]>;
  /** The cgroup.procs files of a prepared container (none when it has no cgroups). */
  procsFiles(name: string): string[];
  /** Removes the container's cgroups once nothing runs in them. */
  remove(name: string): Promise<void>;
}

/** The placeholder of isolation step 1, for drivers under test that enforce no limits: offers none and says so. */
export class NoCgroups implements ContainerCgroups {
  capabilities() {
    return { memory: false, cpu: false, pids: false, missing: ['limit memory: not implemented yet', 'limit cpu: not implemented yet', 'limit pids: not implemented yet'] };
  }
  async prepare(_name: string, limits: Limits, _opts?: { readonly always?: boolean }): Promise<string[]> {
    if (limits.memoryBytes || limits.cpus || limits.pids) throw new Error('limits are not implemented yet');
    return [];
  }
  procsFiles(): string[] {
    return [];
  }
  async remove(): Promise<void> {}
}

export type CgroupController = 'memory' | 'cpu' | 'pids';
export const CGROUP_CONTROLLERS: readonly CgroupController[] = ['memory', 'cpu', 'pids'];

/** Where one controller lives on this host. */
export interface CgroupHierarchy {
  readonly controller: CgroupController;
  readonly version: 1 | 2;
  /** The mount point: the v1 hierarchy of this controller, or the unified (v2) hierarchy. */
  readonly mount: string;
}

export interface CgroupLayout {
  readonly hierarchies: Readonly<Partial<Record<CgroupController, CgroupHierarchy>>>;
  /** Why each controller that is not in `hierarchies` is not ("limit memory: ..."). */
  readonly missing: readonly string[];
}

/** The cgroup v1 control file whose presence at a hierarchy's root shows the limit can be set there. */
const V1_PROOF: Record<CgroupController, string | undefined> = {
  memory: 'memory.limit_in_bytes',
  // Absent when the kernel has no CFS bandwidth control (CONFIG_CFS_BANDWIDTH): no cpu limit then.
  cpu: 'cpu.cfs_quota_us',
  // The root of a v1 pids hierarchy has no pids.max (only its children do); the mount's options prove it.
  pids: undefined,
};

/** How capabilities() and refusals name each limit (as HostDriver's missing[] does). */
const LIMIT_WORD: Record<CgroupController, string> = { memory: 'limit memory', cpu: 'limit cpu', pids: 'limit pids' };

/**
 * Where the memory, cpu and pids controllers are, from the mount table:
 * cgroup v2 (mounted at `root` itself, or at `root`/unified on a hybrid host)
 * when its cgroup.controllers lists the controller, else the v1 hierarchy
 * mounted directly below `root` whose options name it. The mount table, not
 * directory names, says which hierarchy holds what: `cpu` may be a symlink to
 * `cpu,cpuacct`, and mount points are the kernel's own paths (no symlinks).
 */
export function detectCgroups(rootDir: string, mountinfo: string): CgroupLayout {
  const root = resolve(rootDir);
  const entries = parseMountinfo(mountinfo);
  const v2 = [root, `${root}/unified`]
    .map((mp) => entries.find((e) => e.fstype === 'cgroup2' && e.mountPoint === mp))
    .find((e) => e !== undefined);
  const v2Controllers = v2 ? readControllers(`${v2.mountPoint}/cgroup.controllers`) : [];
  const hierarchies: Partial<Record<CgroupController, CgroupHierarchy>> = {};
  const missing: string[] = [];
  for (const controller of CGROUP_CONTROLLERS) {
    if (v2 && v2Controllers.includes(controller)) {
      hierarchies[controller] = { controller, version: 2, mount: v2.mountPoint };
      continue;
    }
    const v1 = entries.find((e) => e.fstype === 'cgroup' && parentOf(e.mountPoint) === root && e.superOptions.includes(controller));
    const proof = V1_PROOF[controller];
    if (v1 && (proof === undefined || existsSync(`${v1.mountPoint}/${proof}`))) {
      hierarchies[controller] = { controller, version: 1, mount: v1.mountPoint };
      continue;
    }
    const where = v2 ? `cgroup v2 at ${v2.mountPoint} does not offer it` : 'no cgroup v2 hierarchy';
    missing.push(
      v1
        ? `${LIMIT_WORD[controller]}: the ${controller} controller at ${v1.mountPoint} has no ${proof} (${where})`
        : `${LIMIT_WORD[controller]}: no ${controller} controller in ${root} (${where}, and no cgroup v1 hierarchy has it)`,
    );
  }
  return { hierarchies, missing };
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function readControllers(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** Names that may become a cgroup directory: one plain component, nothing a path could be made of. */
const CGROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

function checkName(name: string, what: string): string {
  if (!CGROUP_NAME.test(name) || name.includes('..')) {
    throw new InvalidArgumentError(`refusing cgroup ${what} ${JSON.stringify(name)}: letters, digits, '_', '-' and '.' only, at most 64`);
  }
  return name;
}

export interface LinuxCgroupsOptions {
  /** The cgroup mount root; default /sys/fs/cgroup. */
  readonly root?: string;
  /**
   * The directory this agent's containers' cgroups go in, in every hierarchy
   * (`qfleet`, `qfleet-<zone>`): agents (and tests) on one machine never share one.
   */
  readonly parent: string;
  /** The mount table (/proc/self/mountinfo); tests hand in a fake one for a fake tree. */
  readonly mountinfo?: () => string;
  /** How long remove() retries a cgroup that still has tasks (they may be exiting); default 2 s. */
  readonly removeDeadlineMs?: number;
  readonly clock?: DriverClock;
}

const CPU_PERIOD_US = 100_000;
/** The kernel refuses a CFS quota below 1 ms. */
const CPU_MIN_QUOTA_US = 1_000;
const REMOVE_RETRY_MS = 50;


/**
 * Limits with cgroups: v2 where the host's unified hierarchy has the
 * controller, else its v1 hierarchy (the hybrid layout of these machines).
 * A container's cgroup is `<hierarchy>/<parent>/<name>`.
 *
 * When any limit is set, the container gets a cgroup in every hierarchy the
 * host has (memory, cpu and pids), the unset ones unlimited: limits may be
 * changed while the container runs (they are not stopped-only), and a process
 * joins its cgroups only when it starts, so every process must already be in
 * every hierarchy for a later limit to reach it. The pids cgroup also lists
 * exactly the container's tasks.
 */
export class LinuxCgroups implements ContainerCgroups {
  private readonly root: string;
  private readonly parent: string;
  private readonly mountinfo: () => string;
  private readonly clock: DriverClock;
  private readonly removeDeadlineMs: number;

  constructor(opts: LinuxCgroupsOptions) {
    this.root = resolve(opts.root ?? '/sys/fs/cgroup');
    this.parent = checkName(opts.parent, 'parent');
    this.mountinfo = opts.mountinfo ?? (() => readFileSync('/proc/self/mountinfo', 'utf8'));
    this.clock = opts.clock ?? SYSTEM_DRIVER_CLOCK;
    this.removeDeadlineMs = opts.removeDeadlineMs ?? 2_000;
  }

  layout(): CgroupLayout {
    let text: string;
    try {
      text = this.mountinfo();
    } catch (e) {
      const why = `cannot read the mount table: ${(e as Error).message}`;
      return { hierarchies: {}, missing: CGROUP_CONTROLLERS.map((c) => `${LIMIT_WORD[c]}: ${why}`) };
    }
    return detectCgroups(this.root, text);
  }

  capabilities(): LimitCapabilities & { readonly missing: readonly string[] } {
    const { hierarchies, missing } = this.layout();
    return { memory: !!hierarchies.memory, cpu: !!hierarchies.cpu, pids: !!hierarchies.pids, missing };
  }

  /**
   * With `always`, the cgroups are made even without a limit (in every hierarchy the host has), so
   * that limits set later, while the container runs, reach every process already in it.
   */
  async prepare(name: string, limits: Limits, opts: { readonly always?: boolean } = {}): Promise<string[]> {
    // One at a time with a parent's removal (remove): a new container's directory never lands in a parent being removed.
    return this.exclusive(async () => this.prepareNow(name, limits, opts));
  }

  private prepareNow(name: string, limits: Limits, opts: { readonly always?: boolean }): string[] {
    checkName(name, 'name');
    const layout = this.layout();
    const asked = CGROUP_CONTROLLERS.filter((c) => limitOf(limits, c) > 0);
    for (const c of asked) {
      if (!layout.hierarchies[c]) {
        const why = layout.missing.find((m) => m.startsWith(`${LIMIT_WORD[c]}:`)) ?? `${LIMIT_WORD[c]}: not available`;
        throw new FailedPreconditionError(`cannot enforce the limits of ${name}: ${why}`, { reason: 'unsupported', fields: { name } });
      }
    }
    const present = CGROUP_CONTROLLERS.map((c) => layout.hierarchies[c]).filter((h): h is CgroupHierarchy => !!h);
    // No limit asked: create nothing, but lift the limits of cgroups a former configuration left.
    const wanted = asked.length > 0 || opts.always ? present : present.filter((h) => this.exists(h, name));
    const v2 = wanted.filter((h) => h.version === 2);
    if (v2.length > 0) this.makeV2(v2[0]!.mount, name, v2.map((h) => h.controller));
    for (const h of wanted.filter((h) => h.version === 1)) this.makeDir(h.mount, name);
    for (const h of wanted) this.writeLimit(h, name, limits);
    return this.procsFiles(name);
  }

  procsFiles(name: string): string[] {
    checkName(name, 'name');
    const { hierarchies } = this.layout();
    return uniqueMounts(CGROUP_CONTROLLERS.map((c) => hierarchies[c]))
      .filter((h) => this.exists(h, name))
      .map((h) => `${this.dirOf(h, name)}/cgroup.procs`);
  }

  async remove(name: string): Promise<void> {
    checkName(name, 'name');
    const { hierarchies } = this.layout();
    let left = uniqueMounts(CGROUP_CONTROLLERS.map((c) => hierarchies[c]));
    const deadline = this.clock.now().getTime() + this.removeDeadlineMs;
    // Bounded by the deadline: tasks that are exiting leave their cgroup on their own, soon.
    const all = left;
    for (;;) {
      left = left.filter((h) => !this.tryRmdir(h, name));
      if (left.length === 0) {
        // The agent's own directory goes with its last container (it is made again at the next start).
        await this.exclusive(async () => { for (const h of all) this.tryRemoveParent(h); });
        return;
      }
      if (this.clock.now().getTime() >= deadline) break;
      await this.clock.sleep(REMOVE_RETRY_MS);
    }
    const shown = left.map((h) => `${this.dirOf(h, name)} (tasks: ${tasksOf(this.dirOf(h, name)) || 'none'})`).join(', ');
    throw new FailedPreconditionError(`cgroups of ${name} not removed, still in use: ${shown}`, { fields: { name } });
  }

  private dirOf(h: CgroupHierarchy, name: string): string {
    return `${h.mount}/${this.parent}/${name}`;
  }

  private queue: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every earlier exclusive call has ended (a promise chain: prepare and a parent's removal never interleave). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Removes this agent's parent directory in a hierarchy if nothing is left in it; otherwise leaves it. */
  private tryRemoveParent(h: CgroupHierarchy): void {
    const root = openIfThere(h.mount, []);
    if (root === undefined) return;
    try {
      const st = lstatAt(root, this.parent);
      if (st?.isDirectory()) rmdirSync(fdPath(root, this.parent));
    } catch {
      // Another container's cgroup is still in it (EBUSY, ENOTEMPTY), or it went already.
    } finally {
      closeSync(root);
    }
  }

  /** True when the directory is gone (or never was); false while tasks keep it. */
  private tryRmdir(h: CgroupHierarchy, name: string): boolean {
    const parent = openIfThere(h.mount, [this.parent]);
    if (parent === undefined) return true;
    try {
      const st = lstatAt(parent, name);
      if (st === undefined) return true;
      if (!st.isDirectory()) throw new FailedPreconditionError(`${this.dirOf(h, name)} is a symlink or not a directory; refusing to remove it`);
      rmdirSync(fdPath(parent, name));
      return true;
    } catch (e) {
      if (errno(e) === 'ENOENT') return true;
      if (errno(e) === 'EBUSY' || errno(e) === 'ENOTEMPTY') return false;
      throw e;
    } finally {
      closeSync(parent);
    }
  }

  /**
   * v2: a controller reaches a cgroup only if every ancestor enables it for
   * its children (cgroup.subtree_control), so enable them in the root and
   * in our parent. Neither has processes of its own (the root is exempt).
   */
  private makeV2(mount: string, name: string, controllers: readonly CgroupController[]): void {
    const enable = controllers.map((c) => `+${c}`).join(' ');
    this.write(mount, [], 'cgroup.subtree_control', enable);
    const fd = openBeneath(mount, [this.parent], { create: true });
    closeSync(fd);
    this.write(mount, [this.parent], 'cgroup.subtree_control', enable);
    this.makeDir(mount, name);
  }

  private makeDir(mount: string, name: string): void {
    closeSync(openBeneath(mount, [this.parent, name], { create: true }));
  }

  private writeLimit(h: CgroupHierarchy, name: string, limits: Limits): void {
    const at = [this.parent, name];
    const m = h.mount;
    switch (h.controller) {
      case 'memory': {
        const bytes = limits.memoryBytes;
        if (h.version === 2) {
          this.write(m, at, 'memory.max', bytes > 0 ? String(bytes) : 'max');
          // Swap does not stretch the limit (as memsw does on v1); a kernel without swap accounting has no file.
          if (this.has(m, at, 'memory.swap.max')) this.write(m, at, 'memory.swap.max', bytes > 0 ? '0' : 'max');
        } else {
          const value = bytes > 0 ? String(bytes) : '-1';
          // memsw (memory + swap) must never be below the memory limit: lift it, set the limit, then match it.
          const memsw = this.has(m, at, 'memory.memsw.limit_in_bytes');
          if (memsw) this.write(m, at, 'memory.memsw.limit_in_bytes', '-1');
          this.write(m, at, 'memory.limit_in_bytes', value);
          if (memsw) this.write(m, at, 'memory.memsw.limit_in_bytes', value);
        }
        return;
      }
      case 'cpu': {
        const quota = limits.cpus > 0 ? Math.max(CPU_MIN_QUOTA_US, Math.round(limits.cpus * CPU_PERIOD_US)) : undefined;
        if (h.version === 2) {
          this.write(m, at, 'cpu.max', `${quota ?? 'max'} ${CPU_PERIOD_US}`);
        } else {
          this.write(m, at, 'cpu.cfs_period_us', String(CPU_PERIOD_US));
          this.write(m, at, 'cpu.cfs_quota_us', String(quota ?? -1));
        }
        return;
      }
      case 'pids':
        this.write(m, at, 'pids.max', limits.pids > 0 ? String(limits.pids) : 'max');
        return;
    }
  }

  /** Whether the container's cgroup directory is in this hierarchy (a symlink on the way is refused). */
  private exists(h: CgroupHierarchy, name: string): boolean {
    const fd = openIfThere(h.mount, [this.parent, name]);
    if (fd !== undefined) closeSync(fd);
    return fd !== undefined;
  }

  /** Whether the kernel made this control file (a v1 memory cgroup has memsw only with swap accounting). */
  private has(mount: string, at: readonly string[], file: string): boolean {
    const fd = openBeneath(mount, at);
    try {
      return lstatAt(fd, file)?.isFile() ?? false;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Writes one control file, reached without following a symlink anywhere
   * below the mount, and never creating one: a missing file means the
   * controller is not there, which is an error to report.
   */
  private write(mount: string, at: readonly string[], file: string, value: string): void {
    const shown = `${[mount, ...at].join('/')}/${file}`;
    try {
      const dir = openBeneath(mount, at);
      try {
        const fd = openSync(fdPath(dir, file), constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
        try {
          writeSync(fd, value);
        } finally {
          closeSync(fd);
        }
      } finally {
        closeSync(dir);
      }
    } catch (e) {
      throw new FailedPreconditionError(`cannot write ${JSON.stringify(value)} to ${shown}: ${(e as Error).message}`);
    }
  }
}

function limitOf(limits: Limits, c: CgroupController): number {
  return c === 'memory' ? limits.memoryBytes : c === 'cpu' ? limits.cpus : limits.pids;
}

/** The directory below `mount`, opened without following symlinks; undefined if it is not there. */
function openIfThere(mount: string, at: readonly string[]): number | undefined {
  try {
    return openBeneath(mount, at);
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** One entry per mount: on v2 one directory holds every controller. */
function uniqueMounts(hs: readonly (CgroupHierarchy | undefined)[]): CgroupHierarchy[] {
  const out: CgroupHierarchy[] = [];
  for (const h of hs) if (h && !out.some((o) => o.mount === h.mount)) out.push(h);
  return out;
}

function tasksOf(dir: string): string {
  try {
    return readFileSync(`${dir}/cgroup.procs`, 'utf8').trim().split('\n').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}
