import { lstatSync, mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { FailedPreconditionError } from '../../errors.js';

/**
 * What goes into the shared read-only base (qjail's split carried to Linux):
 * the executables and libraries. Everything else (etc, var, root, home, tmp,
 * usr/local, …) is configuration and stays in the per-container template.
 */
export const SHARED_DIRS: readonly string[] = [
  'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32',
  'usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib32', 'usr/lib64', 'usr/libx32',
  'usr/libexec', 'usr/share', 'usr/include',
];

export type EntryKind = 'dir' | 'symlink' | 'other' | 'missing';

export interface SplitPlan {
  /** Real directories moved into sharedfs; the template gets `X -> /sharedfs/X` for each. */
  readonly shared: readonly string[];
  /** Shared names that are symlinks in the base (merged /usr: bin -> usr/bin); they stay as they are. */
  readonly keptSymlinks: readonly string[];
}

/**
 * Decides the split from what each path is in the base. A shared directory is
 * moved only if it and every parent are real directories: a base with
 * `usr -> /` must not make us move the host's /usr/bin.
 */
export function planSplit(kindOf: (rel: string) => EntryKind): SplitPlan {
  const shared: string[] = [];
  const keptSymlinks: string[] = [];
  for (const rel of SHARED_DIRS) {
    const parts = rel.split('/');
    const parentsOk = parts.slice(0, -1).every((_, i) => kindOf(parts.slice(0, i + 1).join('/')) === 'dir');
    if (!parentsOk) continue;
    const kind = kindOf(rel);
    if (kind === 'dir') shared.push(rel);
    else if (kind === 'symlink') keptSymlinks.push(rel);
  }
  return { shared, keptSymlinks };
}

/** lstat-based kinds for a tree on this host (never follows a symlink). */
export function kindsIn(tree: string): (rel: string) => EntryKind {
  return (rel) => {
    try {
      const st = lstatSync(`${tree}/${rel}`);
      return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
      throw e;
    }
  };
}

/**
 * Moves the planned directories from `base` into `sharedfs` (both on one
 * filesystem, so these are renames) and turns `base` into a template:
 * a symlink `X -> /sharedfs/X` for each moved X and an empty `sharedfs/`
 * mount point. Parents were checked to be real directories by planSplit.
 */
export function applySplit(plan: SplitPlan, base: string, sharedfs: string, mountPoint: string): void {
  mkdirSync(sharedfs, { recursive: true, mode: 0o755 });
  for (const rel of plan.shared) {
    mkdirSync(dirname(`${sharedfs}/${rel}`), { recursive: true, mode: 0o755 });
    renameSync(`${base}/${rel}`, `${sharedfs}/${rel}`);
    symlinkSync(`/${mountPoint}/${rel}`, `${base}/${rel}`);
  }
  try {
    mkdirSync(`${base}/${mountPoint}`, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    if (!lstatSync(`${base}/${mountPoint}`).isDirectory()) {
      throw new FailedPreconditionError(`the base has /${mountPoint} and it is not a directory; cannot use it as the sharedfs mount point`);
    }
  }
}
