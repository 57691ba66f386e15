import { chmodSync, closeSync, fchmodSync, fchownSync, fstatSync, lchownSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { InvalidArgumentError } from '../../errors.js';
import type { IdMapping } from '../container-config.js';
import { fdPath, openDirAt, openTrustedDir } from './safe-path.js';

/**
 * The map a namespaces container gets when its config names none: root inside
 * is host uid 100000, never host uid 0. The kernel checks sysctl writes
 * (/proc/sys) and /proc/sysrq-trigger by uid alone: a process that is host
 * uid 0 may write them with no capability at all, so an identity map would
 * let root inside a container change the host's kernel settings (tested:
 * kernel.printk written from an identity-mapped user namespace).
 */
export const DEFAULT_NS_MAP: readonly IdMapping[] = [{ inside: 0, outside: 100_000, count: 65_536 }];
/** How a tree that was never shifted is owned: as the host sees it. */
export const IDENTITY: readonly IdMapping[] = [{ inside: 0, outside: 0, count: 65_536 }];
/** The kernel's limit on lines in uid_map / gid_map (Linux ≥ 4.15). */
const MAX_MAP_LINES = 340;
const MAX_ID = 0xffff_ffff;
/** Deepest directory the ownership walk descends to (a bound, not a policy). */
const MAX_DEPTH = 256;

/** The host id of `inside` under `map`, or undefined when it is not mapped. */
export function toHost(map: readonly IdMapping[], inside: number): number | undefined {
  for (const m of map) if (inside >= m.inside && inside < m.inside + m.count) return m.outside + (inside - m.inside);
  return undefined;
}

/** The id inside of host id `outside` under `map`, or undefined when it is not mapped. */
export function toInside(map: readonly IdMapping[], outside: number): number | undefined {
  for (const m of map) if (outside >= m.outside && outside < m.outside + m.count) return m.inside + (outside - m.outside);
  return undefined;
}

/** The map as uid_map / gid_map lines, comma-separated (the init script writes them one per line, in one write). */
export function mapText(map: readonly IdMapping[]): string {
  return map.map((m) => `${m.inside} ${m.outside} ${m.count}`).join(',');
}

/**
 * Refuses a map the kernel would refuse, or one that gives the container the
 * host's root: ranges must not overlap (inside or outside), must fit in 32
 * bits, must map root inside, and must not map anything to host id 0.
 */
export function checkMap(map: readonly IdMapping[], what: 'uid' | 'gid'): void {
  const bad = (why: string) => new InvalidArgumentError(`${what} map ${JSON.stringify(mapText(map))}: ${why}`, { fields: { field: `${what}_map` } });
  if (map.length > MAX_MAP_LINES) throw bad(`the kernel takes at most ${MAX_MAP_LINES} ranges`);
  for (const m of map) {
    if (![m.inside, m.outside, m.count].every((n) => Number.isInteger(n) && n >= 0) || m.count < 1) throw bad('ids must be whole numbers and every count at least 1');
    if (m.inside + m.count - 1 > MAX_ID || m.outside + m.count - 1 > MAX_ID) throw bad('a range goes past the largest id');
    if (m.outside === 0) throw bad(`it maps ${m.inside} inside to the host's root (${what} 0), whom the kernel lets write its settings (/proc/sys) without any capability; map to unused host ids, e.g. 0:100000:65536`);
  }
  const overlaps = (key: 'inside' | 'outside') => {
    const sorted = [...map].sort((a, b) => a[key] - b[key]);
    return sorted.some((m, i) => i > 0 && sorted[i - 1]![key] + sorted[i - 1]!.count > m[key]);
  };
  if (overlaps('inside')) throw bad('ranges overlap inside');
  if (overlaps('outside')) throw bad('ranges overlap on the host');
  if (toHost(map, 0) === undefined) throw bad(`it does not map ${what} 0 (root inside), which the container's init and services run as`);
}

export interface Ownership {
  readonly uid: readonly IdMapping[];
  readonly gid: readonly IdMapping[];
}

/**
 * Re-owns every file of the tree at `root` from the maps `from` to `to`
 * (each id taken back inside through `from`, then out through `to`; an id
 * `from` does not map is left as it is). Never follows a symlink (lchown,
 * every directory opened O_NOFOLLOW below its open parent) and never crosses
 * into another filesystem or mount. chown clears set-user-ID and set-group-ID
 * bits, so they are put back. Answers how many entries changed owner.
 */
export function shiftTree(root: string, from: Ownership, to: Ownership): number {
  const rootFd = openTrustedDir(root);
  let changed = 0;
  const rootDev = fstatSync(rootFd).dev;
  /** `path`, or the root's descriptor when undefined. */
  const fix = (path: string | undefined, st: Stats) => {
    const ui = toInside(from.uid, st.uid);
    const gi = toInside(from.gid, st.gid);
    const uid = ui === undefined ? st.uid : toHost(to.uid, ui) ?? st.uid;
    const gid = gi === undefined ? st.gid : toHost(to.gid, gi) ?? st.gid;
    if (uid === st.uid && gid === st.gid) return;
    if (path === undefined) fchownSync(rootFd, uid, gid);
    else lchownSync(path, uid, gid);
    if (!st.isSymbolicLink() && (st.mode & 0o6000) !== 0) {
      if (path === undefined) fchmodSync(rootFd, st.mode & 0o7777);
      else chmodSync(path, st.mode & 0o7777);
    }
    changed++;
  };
  const walk = (dirFd: number, shown: string, depth: number) => {
    if (depth > MAX_DEPTH) throw new InvalidArgumentError(`${shown} is nested deeper than ${MAX_DEPTH} directories; not re-owning it`);
    for (const name of readdirSync(fdPath(dirFd))) {
      const path = fdPath(dirFd, name);
      const st = lstatSync(path);
      if (st.dev !== rootDev) continue; // a mount point: not the container's own tree
      if (st.isDirectory()) {
        const child = openDirAt(dirFd, name, `${shown}/${name}`);
        try {
          walk(child, `${shown}/${name}`, depth + 1);
        } finally {
          closeSync(child);
        }
      }
      fix(path, st);
    }
  };
  try {
    walk(rootFd, root, 0);
    fix(undefined, fstatSync(rootFd));
  } finally {
    closeSync(rootFd);
  }
  return changed;
}
