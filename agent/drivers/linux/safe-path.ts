import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, type Stats } from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';

// Symlink-race-free access below a directory, with no native code: every step
// is an open of "/proc/self/fd/<parent>/<component>" with O_NOFOLLOW, so a
// component that is (or is swapped for) a symlink fails instead of redirecting.

// libuv opens every descriptor O_CLOEXEC already; passFds dup2s it into the child on purpose.
export const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The path by which this process reaches an open descriptor (or a name in that directory). */
export function fdPath(fd: number, child?: string): string {
  return child === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${child}`;
}

/** Refuses anything that is not one plain name: empty, ".", "..", a slash or a NUL. */
export function checkComponent(component: string): string {
  if (component === '' || component === '.' || component === '..' || component.includes('/') || component.includes('\0')) {
    throw new InvalidArgumentError(`refusing path component ${JSON.stringify(component)}`);
  }
  return component;
}

/** "a/b/c" → ["a","b","c"], every component checked (no normalisation: "a//b" and "a/../b" are refused). */
export function splitRelative(rel: string): string[] {
  if (rel === '') return [];
  return rel.split('/').map(checkComponent);
}

export function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** A DIR_FLAGS open's ELOOP or ENOTDIR as the refusal it means (a symlink or not a directory); any other error as it is. */
export function notDirectoryRefusal(e: unknown, shownAs: string, refusing: string): unknown {
  return errno(e) === 'ELOOP' || errno(e) === 'ENOTDIR' ? new FailedPreconditionError(`${shownAs} is a symlink or not a directory; ${refusing}`) : e;
}

/** Opens an absolute directory path we trust (our own layout), refusing only a final symlink. */
export function openTrustedDir(path: string): number {
  try {
    return openSync(path, DIR_FLAGS);
  } catch (e) {
    throw notDirectoryRefusal(e, path, 'refusing to use it');
  }
}

/** Opens directory `name` inside the open directory `dirFd`, never following a symlink. */
export function openDirAt(dirFd: number, name: string, shownAs: string): number {
  try {
    return openSync(fdPath(dirFd, checkComponent(name)), DIR_FLAGS);
  } catch (e) {
    throw notDirectoryRefusal(e, shownAs, 'refusing to follow it');
  }
}

export interface WalkOptions {
  /** Create missing directories (mode 0755) on the way, each relative to its open parent. */
  readonly create?: boolean;
}

/**
 * Opens `root` and then each component of `rel` in turn without following
 * symlinks. Returns the final directory's descriptor (the caller closes it).
 * A symlink or non-directory anywhere on the way is a FailedPreconditionError
 * naming it; a missing component is ENOENT unless `create` is set.
 */
export function openBeneath(root: string, rel: string | readonly string[], opts: WalkOptions = {}): number {
  const parts = typeof rel === 'string' ? splitRelative(rel) : rel.map(checkComponent);
  let fd = openTrustedDir(root);
  let shown = root;
  try {
    for (const part of parts) {
      shown = `${shown}/${part}`;
      let next: number;
      try {
        next = openDirAt(fd, part, shown);
      } catch (e) {
        if (!opts.create || errno(e) !== 'ENOENT') throw e;
        // mkdir never follows a final symlink (EEXIST), so creating through the parent fd is safe.
        try { mkdirSync(fdPath(fd, part), 0o755); } catch (e2) { if (errno(e2) !== 'EEXIST') throw e2; }
        next = openDirAt(fd, part, shown);
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Runs `fn` with the directory descriptor from openBeneath, closing it afterwards. */
export async function withDirBeneath<T>(root: string, rel: string | readonly string[], fn: (fd: number) => Promise<T> | T, opts: WalkOptions = {}): Promise<T> {
  const fd = openBeneath(root, rel, opts);
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** lstat of `name` in an open directory: never follows the final component. */
export function lstatAt(dirFd: number, name: string): Stats | undefined {
  try {
    return lstatSync(fdPath(dirFd, checkComponent(name)));
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** The kernel's mount id of the mount an open descriptor lives on (fdinfo, Linux ≥ 3.15). */
export function mountIdOf(fd: number): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const m = /^mnt_id:\s*(\d+)$/m.exec(info);
  if (!m) throw new Error(`no mnt_id in /proc/self/fdinfo/${fd}`);
  return Number(m[1]);
}

/**
 * Reads a regular file below `root` without following any symlink on the way
 * (including the file itself). Undefined if it is missing or not a regular file.
 */
export function readFileBeneath(root: string, rel: string): string | undefined {
  const parts = splitRelative(rel);
  const name = parts.pop();
  if (name === undefined) return undefined;
  let dirFd: number;
  try {
    dirFd = openBeneath(root, parts);
  } catch (e) {
    if (e instanceof FailedPreconditionError || errno(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    let fd: number;
    try {
      fd = openSync(fdPath(dirFd, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      if (['ENOENT', 'ELOOP', 'ENOTDIR', 'ENXIO'].includes(errno(e) ?? '')) return undefined;
      throw e;
    }
    try {
      // fstat, so a FIFO or device (opened O_NONBLOCK above) is never read.
      if (!fstatSync(fd).isFile()) return undefined;
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(dirFd);
  }
}
