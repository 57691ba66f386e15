import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * Files kept open at most: a few per running container's process; the rest
 * are read as before. Less where a quarter of the process's open-file limit
 * is less (keptFilesBound), so the kept files never starve the agent of
 * descriptors (a host without systemd may give it 1,024).
 */
export const MAX_KEPT_PROC_FILES = 1024;
/** A kept file not read for this long is closed (its process left the container, or the container stopped). */
export const PROC_FILE_IDLE_MS = 30_000;
/** /proc/PID/stat is under 1 KB: one read. A children list is read on until a read returns nothing. */
const READ_BYTES = 4096;
/** Reads of one file at most (a children list of 4,096 processes is some 32 KB). */
const MAX_READS = 64;

/**
 * The /proc files a List reads for every running namespaces container (each
 * process's stat, each task's children), kept open and read again from offset
 * 0: one pread for a stat, two for a children list (pread), where
 * readFileSync makes five system calls (open, fstat, two reads, close).
 *
 * A kept file belongs to its process, not to its pid: once the process has
 * been reaped, reading its stat fails (ESRCH), also when the pid has been
 * reused since. That failure closes every file kept for the pid, and the
 * stat is opened afresh (the pid's new process, if there is one). A dead
 * task's children file reads empty instead of failing, so a children file is
 * kept with the start time of the process it was opened for, and used only
 * for a caller that names the same start time (read from the stat just before).
 *
 * Only the real /proc is kept open: a directory of plain files (the tests')
 * can be rewritten by rename, which a kept file would not see.
 */
export class ProcFiles {
  private readonly kept = new Map<string, { readonly fd: number; readonly pid: number; readonly start?: string; usedAt: number }>();
  private readonly buf = Buffer.allocUnsafe(READ_BYTES);
  private readonly keep: boolean;
  private lastSweep: number;

  constructor(
    private readonly procDir: string,
    private readonly now: () => number = Date.now,
    private readonly max = keptFilesBound(),
  ) {
    this.keep = procDir === '/proc';
    this.lastSweep = now();
    // Files are swept as they are read; with nothing read any more (every container stopped), by the clock.
    if (this.keep) setInterval(() => this.sweep(this.now()), PROC_FILE_IDLE_MS).unref();
  }

  /** /proc/PID/stat, or undefined when the process is gone. */
  stat(pid: number): string | undefined {
    return this.read(`${this.procDir}/${pid}/stat`, pid, undefined, true);
  }

  /**
   * /proc/PID/task/TID/children ('' when it has none), or undefined when the task cannot be read.
   * `start`: the process's start time (stat field 22) as the caller just read it; without it the
   * file is read afresh and not kept.
   */
  children(pid: number, tid: number | string, start?: string): string | undefined {
    const path = `${this.procDir}/${pid}/task/${tid}/children`;
    return start === undefined ? readWhole(path) : this.read(path, pid, start, false);
  }

  /** How many files are kept open now. */
  get size(): number {
    return this.kept.size;
  }

  /** Closes every kept file. */
  closeAll(): void {
    for (const { fd } of this.kept.values()) closeQuietly(fd);
    this.kept.clear();
  }

  /** `oneRecord`: the file is one line (stat), which a single read returns whole; a list (children) may take several. */
  private read(path: string, pid: number, start: string | undefined, oneRecord: boolean): string | undefined {
    const now = this.now();
    if (now - this.lastSweep > PROC_FILE_IDLE_MS) this.sweep(now);
    const hit = this.kept.get(path);
    if (hit && hit.start === start) {
      hit.usedAt = now;
      const text = this.pread(hit.fd, oneRecord);
      if (text !== undefined) return text;
    }
    // Gone, or another process under the same pid: whatever was kept for the pid is of no use now.
    if (hit) this.forgetPid(pid);
    if (!this.keep || this.kept.size >= this.max) return readWhole(path);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EMFILE' && code !== 'ENFILE') return undefined;
      // Out of descriptors (the agent's or the system's): give back the kept ones, read the usual way.
      this.closeAll();
      return readWhole(path);
    }
    const text = this.pread(fd, oneRecord);
    if (text === undefined) {
      closeQuietly(fd);
      return undefined;
    }
    this.kept.set(path, { fd, pid, ...(start !== undefined ? { start } : {}), usedAt: now });
    return text;
  }

  /**
   * The file's whole text from offset 0, or undefined when it cannot be read (its process is gone).
   * A /proc list is a seq_file: a read returns at most about a page and stops before a record that
   * does not fit (4,092 bytes of a 7,200-byte children list), so a list is read on until a read
   * returns nothing; a one-line file is whole after one read shorter than the buffer.
   */
  private pread(fd: number, oneRecord: boolean): string | undefined {
    let n: number;
    try {
      n = readSync(fd, this.buf, 0, READ_BYTES, 0);
    } catch {
      return undefined;
    }
    if (n === 0 || (oneRecord && n < READ_BYTES)) return this.buf.toString('utf8', 0, n);
    const parts = [Buffer.from(this.buf.subarray(0, n))];
    let at = n;
    for (let i = 1; i < MAX_READS; i++) {
      let got: number;
      try {
        got = readSync(fd, this.buf, 0, READ_BYTES, at);
      } catch {
        return undefined;
      }
      if (got === 0) break;
      parts.push(Buffer.from(this.buf.subarray(0, got)));
      at += got;
    }
    return parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
  }

  private forgetPid(pid: number): void {
    for (const [path, k] of this.kept) {
      if (k.pid !== pid) continue;
      closeQuietly(k.fd);
      this.kept.delete(path);
    }
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [path, k] of this.kept) {
      if (now - k.usedAt <= PROC_FILE_IDLE_MS) continue;
      closeQuietly(k.fd);
      this.kept.delete(path);
    }
  }
}

/** MAX_KEPT_PROC_FILES, or a quarter of this process's soft limit on open files if that is less. */
function keptFilesBound(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return Math.min(MAX_KEPT_PROC_FILES, Math.floor(Number(m[1]) / 4));
  } catch { /* not Linux's /proc: the fixed bound */ }
  return MAX_KEPT_PROC_FILES;
}

function readWhole(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch { /* already closed: nothing to release */ }
}
