import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { normalize } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import type { CommandRunner } from '../../runner/command-runner.js';
import { isUnder, Layout, type InstallSpec, type PreparedBase, type ProgressSink } from '../host-driver.js';
import { applySplit, kindsIn, planSplit } from './base-split.js';
import { checkHostPath, readFileBeneathIfExists } from './host-paths.js';
import type { MountInfoEntry } from './mountinfo.js';
import { DEV_MOUNTPOINT, type LinuxMounts } from './mounts.js';
import { parseOsRelease, releaseFromOsRelease } from './os-release.js';
import { mountIdOf, openBeneath } from './safe-path.js';
import { removeTree } from './safe-remove.js';

/** Marker in sharedfs naming the release it was built from (swapped in with it). */
const RELEASE_MARKER = '.qfleet-release';
export const INSTALL_TIMEOUT_MS = 30 * 60_000;

/**
 * The base: extracted (cp, tar or debootstrap) into staging, split into a new
 * sharedfs and template, swapped in by rename. A previous sharedfs still
 * mounted by running containers is kept aside and removed once unused.
 */
export class LinuxBaseInstaller {
  constructor(
    private readonly runner: CommandRunner,
    private readonly layout: Layout,
    private readonly mounts: LinuxMounts,
  ) {}

  async prepare(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
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

  async activate(base: PreparedBase, progress: ProgressSink): Promise<{ notes: string[] }> {
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

  async discard(base: PreparedBase): Promise<void> {
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
   * Mount points that show the installed sharedfs inside containers; when it
   * cannot be placed in the mount table, any container's sharedfs mount counts.
   */
  private async sharedfsUsers(): Promise<string[]> {
    return (await this.usersOf(this.layout.sharedfs)) ?? this.anyContainerSharedfs(await this.mounts.table());
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
    const table = await this.mounts.table();
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
  async pruneRetired(): Promise<string[]> {
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
