import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import { checkWindowSize, type ExecOptions } from '../host-driver.js';
import type { Entry } from './entry.js';
import type { LinuxProcesses } from './processes.js';

/** Exec and console sessions are interactive; a day is "until the operator leaves". */
const EXEC_TIMEOUT_MS = 24 * 3600_000;

/** Exec and console: the command chrooted into the container, on a terminal when asked; its terminal resized by stty. */
export class LinuxExec {
  constructor(
    private readonly runner: CommandRunner,
    private readonly processes: LinuxProcesses,
  ) {}

  /** The command of `opts` in the container `name`, entered as `entry` says. */
  spec(name: string, entry: Entry, opts: ExecOptions): CommandSpec {
    for (const k of Object.keys(opts.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new InvalidArgumentError(`bad environment variable name ${JSON.stringify(k)}`);
    }
    const env: Record<string, string> = { ...entry.env, ...opts.env };
    const cgroups = entry.joinCgroups.length ? { joinCgroups: entry.joinCgroups } : {};
    // Without a terminal (a console fed from a pipe, a plain exec), no pty: the shell reads stdin as a script.
    if (!opts.tty) {
      const argv = opts.argv.length > 0 && !opts.console ? opts.argv : ['/bin/sh'];
      return { argv: [...entry.prefix, ...argv], env, cwd: '/', timeoutMs: EXEC_TIMEOUT_MS, ...cgroups };
    }
    // On a terminal, which the runner sets up (script(1)); the console's prompt names the container.
    const inner = opts.console
      ? ['/bin/sh', '-i']
      : opts.argv.length > 0 ? [...opts.argv] : ['/bin/sh', '-i'];
    if (opts.console) env.PS1 = `${name}:\\w# `;
    return {
      argv: [...entry.prefix, ...inner],
      env,
      ...cgroups,
      cwd: '/',
      timeoutMs: EXEC_TIMEOUT_MS,
      terminal: { ...(opts.rows && opts.cols ? { rows: opts.rows, cols: opts.cols } : {}) },
    };
  }

  async resize(sessionPid: number, rows: number, cols: number): Promise<void> {
    checkWindowSize(rows, cols);
    const pty = await this.processes.sessionPty(sessionPid);
    if (!pty) throw new NotFoundError(`no pseudo-terminal found under session ${sessionPid}`);
    await this.runner.run({ argv: ['stty', '-F', pty, 'rows', String(rows), 'cols', String(cols)], timeoutMs: 5000 });
  }
}
