import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { FailedPreconditionError } from './errors.js';

/**
 * One agent per state directory: a pidfile made with O_EXCL. It is removed when
 * the returned function is called or the process exits; one left by an agent
 * that died (kill -9) names a dead pid and is taken over.
 */
export function claimPidfile(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      const release = () => {
        process.off('exit', release);
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch { /* already gone */ }
      };
      // However the agent ends short of kill -9 (a failed start included), it leaves no pidfile behind.
      process.on('exit', release);
      return release;
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
