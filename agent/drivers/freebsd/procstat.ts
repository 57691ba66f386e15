import type { RootedProcess } from '../host-driver.js';

/** One row of `procstat -f` / `procstat -af`. */
export interface ProcstatFileRow {
  readonly pid: number;
  readonly comm: string;
  /** A descriptor number, or text / ctty / cwd / root / jail. */
  readonly fd: string;
  readonly type: string;
  readonly path: string;
}

// "  PID COMM                FD T V FLAGS    REF  OFFSET PRO NAME"; COMM may hold spaces,
// so everything after it is matched from fixed-shape columns.
// T and V are one letter (or '-'), FLAGS like "r-------": that shape keeps `procstat -a` rows out.
const ROW = /^\s*(\d+)\s+(.*?)\s+(\S+)\s+([A-Za-z-])\s+([A-Za-z-])\s+([A-Za-z-]{6,10})\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*)$/;

export function parseProcstatFiles(text: string): ProcstatFileRow[] {
  const rows: ProcstatFileRow[] = [];
  for (const line of text.split('\n')) {
    const m = ROW.exec(line);
    if (!m) continue; // header, blank, or a procstat error line
    rows.push({ pid: Number(m[1]), comm: m[2]!, fd: m[3]!, type: m[4]!, path: m[10]!.trimEnd() });
  }
  return rows;
}

/** Pids whose root directory (FD column `root`) satisfies `match`, sorted, once each. */
export function pidsRootedWhere(rows: readonly ProcstatFileRow[], match: (rootPath: string) => boolean): number[] {
  const pids = rows.filter((r) => r.fd === 'root' && match(r.path.replace(/(.)\/+$/, '$1'))).map((r) => r.pid);
  return [...new Set(pids)].sort((a, b) => a - b);
}

/** Pids whose root directory is exactly `root`. */
export function pidsRootedAt(rows: readonly ProcstatFileRow[], root: string): number[] {
  return pidsRootedWhere(rows, (p) => p === root);
}

/** Each process's root directory (FD column `root`), trailing slashes dropped; procstat -af gives no start time. */
export function rootedProcesses(rows: readonly ProcstatFileRow[]): RootedProcess[] {
  return rows.filter((r) => r.fd === 'root').map((r) => ({ pid: r.pid, root: r.path.replace(/(.)\/+$/, '$1'), start: '' }));
}
