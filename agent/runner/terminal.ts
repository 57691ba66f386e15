import type { CommandSpec } from './command-runner.js';
import { shJoin } from '../../common/shell-quote.js';

/** PATH for script(1) itself and the shell it runs the command line with, on the host. */
const TERMINAL_HOST_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The command of `spec` on a pseudo-terminal of its own, from script(1). On
 * Linux, util-linux script takes one command line, run by $SHELL: this is the
 * agent's only shell string built at run time (join-cgroups.ts's is a
 * constant), made here from the argv with every word quoted.
 * The command's whole environment is set by env(1) right before it (bash drops
 * PS1 when not interactive, so it is not inherited through the shell), and the
 * terminal gets its size from stty before the command starts. FreeBSD's
 * script(1) takes an argv, and no shell is involved.
 */
export function onTerminal(spec: CommandSpec, platform: NodeJS.Platform = process.platform): CommandSpec {
  const { terminal, ...rest } = spec;
  if (!terminal) return spec;
  if (platform !== 'linux') return { ...rest, argv: ['script', '-q', '/dev/null', ...spec.argv] };
  const env = spec.env ?? {};
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const { rows, cols } = terminal;
  const size = rows && cols ? `stty rows ${Math.trunc(rows)} cols ${Math.trunc(cols)} 2>/dev/null; ` : '';
  return {
    ...rest,
    argv: ['script', '-q', '-e', '-c', `${size}exec ${shJoin(['env', '-i', ...assignments, ...spec.argv])}`, '/dev/null'],
    env: { PATH: TERMINAL_HOST_PATH, SHELL: '/bin/sh', ...(env.TERM ? { TERM: env.TERM } : {}) },
  };
}
