import { readdir, readFile, readlink } from 'node:fs/promises';
import { InvalidArgumentError } from '../../errors.js';
import { eachLimited } from '../../worker-pool.js';
import { ProcessTable, type Layout, type RootedProcess } from '../host-driver.js';

/**
 * The fields of a /proc/PID/stat line after "(comm) ", from field 3 (state) to
 * field 22: [0] is the state, [1] the parent pid (field 4), [17] the thread
 * count (field 20), [19] the start time in clock ticks (field 22). The thirty
 * fields after it are not split off: a List reads a few hundred of these lines.
 * comm may hold spaces and parentheses, hence the last ')'.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20);
}

/** /proc reads one process-table scan has outstanding at once. */
const PROC_IN_FLIGHT = 32;

/** The host's processes, from /proc (read asynchronously): which run in containers, and signals to them. */
export class LinuxProcesses {
  constructor(
    private readonly layout: Layout,
    private readonly procDir: string,
  ) {}

  /**
   * /proc/PID/root of every process (asynchronously, PROC_IN_FLIGHT at a time), and for
   * those inside the containers directory their start time (/proc/PID/stat
   * field 22), which tells a reused pid apart.
   */
  async table(): Promise<ProcessTable> {
    const inside = `${this.layout.containersDir}/`;
    const rooted: RootedProcess[] = [];
    const pids = (await readdir(this.procDir)).filter((e) => /^\d+$/.test(e));
    await eachLimited(pids, PROC_IN_FLIGHT, async (entry) => {
      let root: string;
      try {
        root = await readlink(`${this.procDir}/${entry}/root`);
      } catch {
        return; // gone, a zombie, or a kernel thread
      }
      if (!root.startsWith(inside)) return;
      let start = '';
      try {
        const stat = await readFile(`${this.procDir}/${entry}/stat`, 'utf8');
        start = statFields(stat)[19] ?? '';
      } catch { /* gone since: still listed, as the root link said */ }
      rooted.push({ pid: Number(entry), root, start });
    });
    return new ProcessTable(this.layout.containersDir, rooted);
  }

  async signal(pids: readonly number[], signal: NodeJS.Signals): Promise<void> {
    for (const pid of pids) {
      if (!Number.isInteger(pid) || pid <= 1) throw new InvalidArgumentError(`refusing to signal pid ${pid}`);
      try {
        process.kill(pid, signal);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
  }

  /** The /dev/pts slave that a descendant of script(1) (the session's shell) has as stdin; /proc read asynchronously. */
  async sessionPty(sessionPid: number): Promise<string | undefined> {
    const parentOf = new Map<number, number>();
    const pids = (await readdir(this.procDir)).filter((e) => /^\d+$/.test(e));
    await eachLimited(pids, PROC_IN_FLIGHT, async (e) => {
      try {
        const stat = await readFile(`${this.procDir}/${e}/stat`, 'utf8');
        parentOf.set(Number(e), Number(statFields(stat)[1]));
      } catch { /* gone */ }
    });
    let frontier = [sessionPid];
    for (let depth = 0; depth < 6 && frontier.length; depth++) {
      const next: number[] = [];
      for (const [pid, ppid] of parentOf) if (frontier.includes(ppid)) next.push(pid);
      for (const pid of next.sort((a, b) => a - b)) {
        try {
          const link = await readlink(`${this.procDir}/${pid}/fd/0`);
          if (/^\/dev\/pts\/\d+$/.test(link)) return link;
        } catch { /* gone or no fd 0 */ }
      }
      frontier = next;
    }
    return undefined;
  }
}
