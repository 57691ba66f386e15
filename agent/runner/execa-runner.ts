import { execa, type Options, type ResultPromise } from 'execa';
import { closeSync, existsSync, openSync } from 'node:fs';
import { CommandFailedError } from '../errors.js';
import type { CommandResult, CommandRunner, CommandSpec, SpawnedCommand } from './command-runner.js';
import { joinFailed, joiningCgroups } from './join-cgroups.js';
import { onTerminal } from './terminal.js';

const DEFAULT_TIMEOUT_MS = 120_000;
/** How long a spawned command's output may keep draining after it exited. */
const EXIT_DRAIN_MS = 300;

/** Linux: children die with the agent (util-linux setpriv); elsewhere, no wrapper. */
export function dieWithAgentWrapper(platform = process.platform, exists: (p: string) => boolean = existsSync): string[] {
  return platform === 'linux' && exists('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];
}
/** A minimal, predictable environment for host commands. */
export const DEFAULT_ENV: Readonly<Record<string, string>> = {
  PATH: '/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin',
  LANG: 'C',
  LC_ALL: 'C',
};

/**
 * The only place in the agent that spawns processes. Each child gets its own
 * process group (detached), so a timeout kills everything the command started.
 */
export class ExecaRunner implements CommandRunner {
  /**
   * Prepended to every command line (not to what errors report). The agent uses
   * `setpriv --pdeathsig KILL --` on Linux so that a killed agent takes its
   * direct children (cp, tar, mount, an rc script's shell) with it, instead of
   * leaving them writing into a container that recovery is removing. The death
   * signal is cleared on fork, so daemons started by rc scripts live on.
   */
  constructor(private readonly opts: { wrapper?: readonly string[] } = {}) {}

  private argvOf(spec: CommandSpec): readonly string[] {
    return [...(this.opts.wrapper ?? []), ...spec.argv];
  }

  async run(asked: CommandSpec): Promise<CommandResult> {
    const shown = onTerminal(asked);
    if (shown.argv.length === 0) throw new CommandFailedError(shown.argv, undefined, 'empty command');
    // With a log file, the join's own stderr stays the runner's pipe until it has joined.
    const spec = joiningCgroups(shown, { mergeStderr: shown.logFile !== undefined });
    const [file = '', ...args] = this.argvOf(spec);
    // A raw descriptor, not execa's {file}: execa would pipe and wait for every holder to close.
    const logFd = spec.logFile ? openSync(spec.logFile, 'a', 0o600) : undefined;
    const timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timedOut = false;
    let child: ResultPromise | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child?.pid, 'SIGKILL');
    }, timeoutMs);
    try {
      child = execa(file, args, {
        cwd: spec.cwd ?? '/',
        env: { ...(spec.env ?? DEFAULT_ENV) },
        extendEnv: false,
        detached: true,
        reject: false,
        stripFinalNewline: false,
        ...(spec.input !== undefined ? { input: spec.input } : {}),
        stdio: stdioFor(spec, logFd, spec !== shown),
      });
      const r = await child;
      const stdout = typeof r.stdout === 'string' ? r.stdout : '';
      const stderr = typeof r.stderr === 'string' ? r.stderr : '';
      if (timedOut) throw new CommandFailedError(shown.argv, r.exitCode, stderr, { timedOut: true });
      if (r.failed && r.exitCode === undefined) {
        throw new CommandFailedError(shown.argv, undefined, r.stderr ? String(r.stderr) : (r.shortMessage ?? ''), { cause: r.cause });
      }
      const exitCode = r.exitCode ?? -1;
      // Before okExitCodes: a command that never ran answered nothing.
      if (spec !== shown && joinFailed(exitCode, stderr)) throw new CommandFailedError(shown.argv, exitCode, stderr);
      if (exitCode !== 0 && !(spec.okExitCodes ?? []).includes(exitCode)) {
        throw new CommandFailedError(shown.argv, exitCode, stderr || stdout);
      }
      return { argv: shown.argv, exitCode, stdout, stderr };
    } finally {
      clearTimeout(timer);
      if (logFd !== undefined) closeSync(logFd);
    }
  }

  /** A failed join: the child exits JOIN_FAILED_EXIT (125) without running the command, and says why on stderr. */
  spawn(asked: CommandSpec): SpawnedCommand {
    const shown = onTerminal(asked);
    if (shown.argv.length === 0) throw new CommandFailedError(shown.argv, undefined, 'empty command');
    const spec = joiningCgroups(shown, { mergeStderr: false });
    const [file = '', ...args] = this.argvOf(spec);
    const child = execa(file, args, {
      cwd: spec.cwd ?? '/',
      env: spec.env ?? DEFAULT_ENV,
      extendEnv: false,
      detached: true,
      reject: false,
      buffer: false,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      ...(spec.timeoutMs ? { timeout: spec.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    // The child's own exit, not execa's result: that waits for every holder of the pipes to close
    // them, and a daemon the command started (`/etc/init.d/x restart`) holds them for its lifetime.
    // After the exit, output already in the pipes gets a moment to drain, then the pipes are let go.
    child.catch(() => undefined);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => {
        let settled = false;
        const finish = () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          child.stdout?.destroy();
          child.stderr?.destroy();
          resolve({ code, signal });
        };
        const timer = setTimeout(finish, EXIT_DRAIN_MS);
        const open = [child.stdout, child.stderr].filter((st) => st && !st.readableEnded);
        let left = open.length;
        if (left === 0) finish();
        for (const st of open) st!.once('end', () => { if (--left === 0) finish(); });
      });
    });
    return {
      pid: child.pid,
      stdin: child.stdin!,
      stdout: child.stdout!,
      stderr: child.stderr!,
      kill: (signal) => killGroup(child.pid, signal),
      exited,
    };
  }
}

/** stdin, stdout, stderr, then any descriptors passed on as fd 3, 4, … */
function stdioFor(spec: CommandSpec, logFd: number | undefined, joining: boolean): Options['stdio'] {
  const out = logFd ?? 'pipe';
  // Joining cgroups with a log file: stderr is a pipe until the join is done, then the log (join-cgroups.ts).
  const err = joining ? 'pipe' : out;
  return [spec.input !== undefined ? 'pipe' : 'ignore', out, err, ...(spec.passFds ?? [])] as Options['stdio'];
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals | number): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try { process.kill(pid, signal); } catch { /* already gone */ }
  }
}
