import { closeSync, fstatSync, lstatSync, readdirSync, rmdirSync, unlinkSync, type Stats } from 'node:fs';
import { FailedPreconditionError } from '../../errors.js';
import { fdPath, mountIdOf, openDirAt, openTrustedDir } from './safe-path.js';

// Removing and measuring a tree that a container (untrusted) could have shaped:
// every directory is entered through its parent's descriptor with O_NOFOLLOW,
// every name is unlinked relative to its open parent (unlink/rmdir never follow
// the final component), and a directory on another mount is never entered.
// st_dev is not enough to spot a mount: a bind mount of the same filesystem
// shares it, so the kernel's mount id (fdinfo mnt_id) is compared instead.

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Removes `path` and everything below it. Refuses (FailedPreconditionError
 * naming it) on reaching a directory that is on a different mount than `path`
 * itself, before anything below that point is touched. A missing path is fine.
 */
export function removeTreeSafely(path: string): void {
  let fd: number;
  try {
    fd = openTrustedDir(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  try {
    emptyDir(fd, path, mountIdOf(fd));
  } finally {
    closeSync(fd);
  }
  rmdirSync(path);
}

/** Each entry of an open directory with its lstat, skipping entries that vanish meanwhile. */
function* entries(dirFd: number): Generator<{ name: string; st: Stats }> {
  for (const name of readdirSync(fdPath(dirFd))) {
    let st: Stats;
    try {
      st = lstatSync(fdPath(dirFd, name));
    } catch (e) {
      if (errno(e) === 'ENOENT') continue;
      throw e;
    }
    yield { name, st };
  }
}

function emptyDir(dirFd: number, shown: string, rootMount: number): void {
  for (const { name, st } of entries(dirFd)) {
    const here = `${shown}/${name}`;
    if (!st.isDirectory()) {
      unlinkQuiet(fdPath(dirFd, name));
      continue;
    }
    let child: number;
    try {
      child = openDirAt(dirFd, name, here);
    } catch (e) {
      if (errno(e) === 'ENOENT') continue;
      // Swapped for a symlink since lstat: remove the link, never its target.
      if (e instanceof FailedPreconditionError) { unlinkQuiet(fdPath(dirFd, name)); continue; }
      throw e;
    }
    try {
      if (mountIdOf(child) !== rootMount) {
        throw new FailedPreconditionError(`${here} is a mount point; refusing to remove anything below it`);
      }
      emptyDir(child, here, rootMount);
    } finally {
      closeSync(child);
    }
    try {
      rmdirSync(fdPath(dirFd, name));
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
  }
}

function unlinkQuiet(p: string): void {
  try {
    unlinkSync(p);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
}

/**
 * Allocated bytes (st_blocks × 512) of the tree at `path` on its own mount:
 * directories on other mounts are skipped, symlinks are counted but not
 * followed, and hard-linked files are counted once.
 */
export function treeUsage(path: string): number {
  const fd = openTrustedDir(path);
  const seen = new Set<string>();
  try {
    return fstatSync(fd).blocks * 512 + usageOf(fd, path, mountIdOf(fd), seen);
  } finally {
    closeSync(fd);
  }
}

function usageOf(dirFd: number, shown: string, rootMount: number, seen: Set<string>): number {
  let total = 0;
  for (const { name, st } of entries(dirFd)) {
    if (!st.isDirectory()) {
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.blocks * 512;
      continue;
    }
    let child: number;
    try {
      child = openDirAt(dirFd, name, `${shown}/${name}`);
    } catch (e) {
      if (errno(e) === 'ENOENT' || e instanceof FailedPreconditionError) continue;
      throw e;
    }
    try {
      if (mountIdOf(child) !== rootMount) continue;
      total += st.blocks * 512 + usageOf(child, `${shown}/${name}`, rootMount, seen);
    } finally {
      closeSync(child);
    }
  }
  return total;
}
