import { closeSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { FailedPreconditionError, InternalError } from '../../errors.js';
import type { CommandRunner } from '../../runner/command-runner.js';
import { deepestFirst, isUnder, Layout, type MountEntry } from '../host-driver.js';
import { parseMountinfo, toMountEntry, type MountInfoEntry } from './mountinfo.js';
import { lstatAt, mountIdOf, openBeneath, splitRelative, withDirBeneath } from './safe-path.js';

export const DEV_MOUNTPOINT = 'dev';
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

/**
 * A container's mounts: sharedfs bound read-only and a private /dev, each made
 * on a directory opened without following symlinks and confirmed in the
 * kernel's table; unmounted by path only where the path still leads to the
 * mount. The kernel's table (self/mountinfo) is read fresh each time.
 */
export class LinuxMounts {
  constructor(
    private readonly runner: CommandRunner,
    private readonly layout: Layout,
    private readonly procDir: string,
  ) {}

  /** Absolute mount targets a started container at `root` has (sharedfs first). */
  expected(root: string): string[] {
    return [`${root}/${Layout.SHAREDFS_MOUNTPOINT}`, `${root}/${DEV_MOUNTPOINT}`];
  }

  async entries(): Promise<MountEntry[]> {
    return (await this.table()).map(toMountEntry);
  }

  /** The kernel's table, read fresh each time (the host is the truth). */
  async table(): Promise<MountInfoEntry[]> {
    return parseMountinfo(await readFile(`${this.procDir}/self/mountinfo`, 'utf8'));
  }
  /** Mount points at or below `root`, as the kernel's table shows them now. */
  async pointsUnder(root: string): Promise<string[]> {
    return (await this.table()).filter((e) => isUnder(e.mountPoint, root)).map((e) => e.mountPoint);
  }


  /** Mounts what is missing of sharedfs (read-only) and /dev into the container at `root` (which must exist). */
  async mount(root: string): Promise<void> {
    // Check every mount point first, so a planted symlink refuses the whole call before anything is mounted.
    for (const rel of [Layout.SHAREDFS_MOUNTPOINT, DEV_MOUNTPOINT]) closeSync(openBeneath(root, [rel], { create: true }));
    const before = new Set((await this.table()).filter((e) => isUnder(e.mountPoint, root)).map((e) => e.mountId));
    try {
      await this.mountSharedfs(root);
      await this.mountDev(root);
    } catch (e) {
      // Undo only what this call mounted (the table, not our memory, says what that is).
      const ours = (await this.table()).filter((m) => isUnder(m.mountPoint, root) && !before.has(m.mountId));
      for (const m of deepestFirst(ours.map((o) => ({ target: o.mountPoint })))) {
        await this.runner.run({ argv: ['umount', '--no-canonicalize', m.target] }).catch(() => undefined);
      }
      throw e;
    }
  }

  private async mountSharedfs(root: string): Promise<void> {
    const target = `${root}/${Layout.SHAREDFS_MOUNTPOINT}`;
    if (!existsSync(this.layout.sharedfs)) throw new FailedPreconditionError('no sharedfs is installed; run install first');
    let top = topMountAt(await this.table(), target);
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
    const existing = topMountAt(await this.table(), target);
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
    const table = await this.table();
    const entry = table.find((e) => e.mountId === id);
    if (!entry || entry.mountPoint !== target) {
      throw new InternalError(`mounted at ${target} but the mount table does not show it there`);
    }
    return entry;
  }

  /** Unmounts everything under `root`, deepest first, never lazily; throws naming what stays mounted. */
  async unmount(root: string): Promise<void> {
    const failures: string[] = [];
    const tried = new Set<number>();
    // Passes, because stacked mounts surface one by one; bounded by what was there.
    for (let pass = 0; pass < 64; pass++) {
      const under = deepestFirst((await this.table()).filter((e) => isUnder(e.mountPoint, root)).map((e) => ({ ...e, target: e.mountPoint })));
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
    const left = await this.pointsUnder(root);
    if (left.length > 0) {
      throw new FailedPreconditionError(`still mounted under ${root}: ${[...new Set(left)].join(', ')}${failures.length ? ` (${failures.join('; ')})` : ''}`);
    }
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
}

/** The topmost mount at `target` (the kernel lists mounts in the order they were made). */
export function topMountAt(table: readonly MountInfoEntry[], target: string): MountInfoEntry | undefined {
  let top: MountInfoEntry | undefined;
  for (const e of table) if (e.mountPoint === target) top = e;
  return top;
}
