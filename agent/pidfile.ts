import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { FailedPreconditionError } from './errors.js';

/**
 * One agent per state directory: a pidfile made with O_EXCL. A pidfile left by
 * an agent that died (kill -9) names a dead pid and is taken over.
 */
export function claimPidfile(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch { /* already gone */ }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        throw new FailedPreconditionError(`another qfleetd (pid ${pid}) is using this state directory (${path}).`);
      }
      unlinkSync(path);
    }
  }
  throw new FailedPreconditionError(`could not claim ${path}.`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (FreeBSD without linprocfs): kill(0) said it exists
  }
}
