import type { Dirent, Stats } from 'node:fs';
import { lstat, open, opendir, readdir, readFile, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { FailedPreconditionError } from '../../errors.js';
import { eachLimited } from '../../worker-pool.js';
import { checkComponent, DIR_FLAGS, errno, fdPath, notDirectoryRefusal } from './safe-path.js';

// Removing and measuring a tree that a container (untrusted) could have shaped:
// every directory is entered through its parent's descriptor with O_NOFOLLOW,
// every name is unlinked relative to its open parent (unlink/rmdir never follow
// the final component), and a directory on another mount is never entered.
// st_dev is not enough to spot a mount: a bind mount of the same filesystem
// shares it, so the kernel's mount id (fdinfo mnt_id) is compared instead.
//
// Everything here is asynchronous (libuv's thread pool does the system calls),
// so a container of a million files never holds up the agent's event loop: a
// health check or a List answers while it is being removed. Each walk keeps at
// most IN_FLIGHT calls outstanding.

/**
 * System calls one walk has outstanding at once: enough that the pool's four
 * threads never wait on the event loop for the next one (on a busy host each
 * round trip costs a scheduling delay), few enough that another caller's
 * file access waits behind at most this many short calls.
 */
const IN_FLIGHT = 16;
/** Directory entries read and handled per step, so memory stays flat in a directory of any size. */
const BATCH = 256;
/**
 * Entries removed while a directory is being read may make the kernel skip
 * others, so a directory is read again until a pass finds it empty; a tree
 * that keeps growing is given up on after this many passes (rmdir then fails).
 */
const MAX_PASSES = 8;


/** Opens a directory never following a final symlink: a symlink or non-directory is a FailedPreconditionError. */
async function openDir(path: string, shownAs: string): Promise<FileHandle> {
  try {
    return await open(path, DIR_FLAGS);
  } catch (e) {
    throw notDirectoryRefusal(e, shownAs, 'refusing to follow it');
  }
}

/** The kernel's mount id of the mount an open descriptor lives on (fdinfo, Linux ≥ 3.15). */
export async function mountIdOfAsync(fd: number): Promise<number> {
  const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
  const m = /^mnt_id:\s*(\d+)$/m.exec(info);
  if (!m) throw new Error(`no mnt_id in /proc/self/fdinfo/${fd}`);
  return Number(m[1]);
}

/**
 * Reads an open directory in batches (a fresh read of /proc/self/fd/N, which
 * is that very directory), handing each batch to `fn`. Returns how many
 * entries it saw.
 */
async function forEachBatch(dirFd: number, fn: (batch: Dirent[]) => Promise<void>): Promise<number> {
  const dir = await opendir(fdPath(dirFd), { bufferSize: BATCH });
  let seen = 0;
  let batch: Dirent[] = [];
  try {
    for await (const d of dir) {
      seen++;
      batch.push(d);
      if (batch.length >= BATCH) {
        await fn(batch);
        batch = [];
      }
    }
  } finally {
    // for await closes the Dir when it ends; an exception from fn leaves it open.
    await dir.close().catch(() => undefined);
  }
  if (batch.length) await fn(batch);
  return seen;
}

/**
 * Removes `path` and everything below it. Refuses (FailedPreconditionError
 * naming it) on reaching a directory that is on a different mount than `path`
 * itself, before anything below that point is touched. A missing path is fine.
 */
export async function removeTree(path: string): Promise<void> {
  let dir: FileHandle;
  try {
    dir = await openDir(path, path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  try {
    await emptyDir(dir.fd, path, await mountIdOfAsync(dir.fd));
  } finally {
    await dir.close();
  }
  await rmdir(path);
}

async function emptyDir(dirFd: number, shown: string, rootMount: number): Promise<void> {
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const seen = await forEachBatch(dirFd, async (batch) => {
      // Files (and links, sockets, …) a few at a time; then each directory, depth first.
      await eachLimited(batch.filter((d) => !d.isDirectory()), IN_FLIGHT, (d) => removeNonDir(dirFd, shown, d.name, rootMount));
      for (const d of batch) if (d.isDirectory()) await removeDir(dirFd, shown, d.name, rootMount);
    });
    if (seen === 0) return;
  }
}

/** Unlinks a name the directory listed as not a directory; one that became a directory since is removed as one. */
async function removeNonDir(dirFd: number, shown: string, name: string, rootMount: number): Promise<void> {
  try {
    await unlink(fdPath(dirFd, checkComponent(name)));
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    // Linux unlink(2) says EISDIR for a directory: swapped in since the listing.
    if (errno(e) === 'EISDIR') return removeDir(dirFd, shown, name, rootMount);
    throw e;
  }
}

async function removeDir(dirFd: number, shown: string, name: string, rootMount: number): Promise<void> {
  const here = `${shown}/${name}`;
  let child: FileHandle;
  try {
    child = await openDir(fdPath(dirFd, checkComponent(name)), here);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    // Swapped for a symlink (or a file) since the listing: remove the link, never its target.
    if (e instanceof FailedPreconditionError) return unlinkQuiet(fdPath(dirFd, name));
    throw e;
  }
  try {
    if ((await mountIdOfAsync(child.fd)) !== rootMount) {
      throw new FailedPreconditionError(`${here} is a mount point; refusing to remove anything below it`);
    }
    await emptyDir(child.fd, here, rootMount);
  } finally {
    await child.close();
  }
  try {
    await rmdir(fdPath(dirFd, name));
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

async function unlinkQuiet(p: string): Promise<void> {
  try {
    await unlink(p);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

/** A directory whose size is at most this is read with one readdir (a few hundred entries); a bigger one in batches. */
const SMALL_DIR_BYTES = 64 * 1024;
/** Subdirectories one usage walk measures side by side (each with its own IN_FLIGHT calls). */
const PARALLEL_DIRS = 4;

interface UsageWalk {
  readonly rootDev: number;
  /** Mount points at or below the root, from the mount table (the root's own excepted). */
  readonly mountPoints: ReadonlySet<string>;
  /** Hard-linked files already counted, by dev:ino. */
  readonly seen: Set<string>;
  /** Directories being measured beside the one that started them. */
  side: number;
}

/**
 * Allocated bytes (st_blocks × 512) of the tree at `path` on its own mount:
 * directories on other mounts are skipped, symlinks are counted but not
 * followed, and hard-linked files are counted once.
 *
 * Unlike removal, a miscount is all a race here could cause, so mounts are
 * told apart without a mount id per directory (four calls each): a directory
 * on another device, or at a path the mount table lists (`mountPoints`, the
 * mount points at or below `path`; a bind mount of the same filesystem shares
 * the device), is not entered. Directories are still opened only through
 * their parent's descriptor with O_NOFOLLOW, so the walk never leaves the tree.
 */
export async function measureTree(path: string, mountPoints: Iterable<string> = []): Promise<number> {
  const dir = await openDir(path, path);
  try {
    const st = await dir.stat();
    const walk: UsageWalk = { rootDev: st.dev, mountPoints: new Set([...mountPoints].filter((m) => m !== path)), seen: new Set(), side: 0 };
    return st.blocks * 512 + (await usageOf(dir.fd, st.size, path, walk));
  } finally {
    await dir.close();
  }
}

/** Every entry of an open directory: one readdir when it is small, else batches. */
async function listDir(dirFd: number, size: number, fn: (batch: Dirent[]) => Promise<void>): Promise<void> {
  if (size <= SMALL_DIR_BYTES) await fn(await readdir(fdPath(dirFd), { withFileTypes: true }));
  else await forEachBatch(dirFd, fn);
}

async function usageOf(dirFd: number, size: number, shown: string, walk: UsageWalk): Promise<number> {
  let total = 0;
  const statOf = async (name: string) => {
    try {
      return await lstat(fdPath(dirFd, checkComponent(name)));
    } catch (e) {
      if (errno(e) === 'ENOENT') return undefined;
      throw e;
    }
  };
  const countFile = (st: Stats) => {
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      if (walk.seen.has(key)) return;
      walk.seen.add(key);
    }
    total += st.blocks * 512;
  };
  const measureDir = async (name: string) => {
    const st = await statOf(name);
    if (!st) return;
    if (!st.isDirectory()) { countFile(st); return; }
    const here = `${shown}/${name}`;
    if (st.dev !== walk.rootDev || walk.mountPoints.has(here)) return;
    let child: FileHandle;
    try {
      child = await openDir(fdPath(dirFd, name), here);
    } catch (e) {
      if (errno(e) === 'ENOENT' || e instanceof FailedPreconditionError) return;
      throw e;
    }
    try {
      // Read after the await: with directories measured side by side, `total +=` across it would lose their counts.
      const below = await usageOf(child.fd, st.size, here, walk);
      total += st.blocks * 512 + below;
    } finally {
      await child.close();
    }
  };
  await listDir(dirFd, size, async (batch) => {
    await eachLimited(batch.filter((d) => !d.isDirectory()), IN_FLIGHT, async (d) => {
      const st = await statOf(d.name);
      if (st) countFile(st);
    });
    // Subdirectories depth first; while the walk has room, some of them beside this one (never waiting for room).
    const beside: Promise<void>[] = [];
    let settled: PromiseSettledResult<void>[];
    try {
      for (const d of batch) {
        if (!d.isDirectory()) continue;
        if (walk.side < PARALLEL_DIRS) {
          walk.side++;
          beside.push(measureDir(d.name).finally(() => { walk.side--; }));
        } else {
          await measureDir(d.name);
        }
      }
    } finally {
      settled = await Promise.allSettled(beside);
    }
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  return total;
}
