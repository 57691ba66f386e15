import { CommandFailedError } from '../errors.js';
import type { CommandSpec } from './command-runner.js';

/** The exit code of a command that never ran because it could not join its cgroups (as env(1) and chroot(8) use 125). */
export const JOIN_FAILED_EXIT = 125;
/** The first words of the join's own complaint on stderr, by which the runner tells it from the command's 125. */
export const JOIN_FAILED_MARK = 'qfleet-join:';

/**
 * The constant script that makes the child join its cgroups and then become
 * the command (exec: same process, so everything it forks is inside too).
 * Nothing is interpolated into it, and it sets no variable of its own (the
 * command's environment might have one of that name): its positional
 * parameters are the cgroup.procs files, then "--", then
 * 1 to send stderr where stdout goes once joined (a log file: until then
 * stderr is the runner's pipe, so it sees a failed join) or 0,
 * the command's PWD as "=value" or "-" for none (sh exports a PWD of its own,
 * and the command's environment is exactly the one it was given),
 * then the command's argv. A failed write stops it before the command runs.
 */
export const JOIN_SCRIPT = [
  'while [ "$1" != -- ]; do',
  // -f first: a redirection would create a missing file, where a cgroup is not.
  `  { [ -f "$1" ] && echo "$$" >"$1"; } || { printf '%s\\n' "${JOIN_FAILED_MARK} could not join the cgroup $1; the command did not run" >&2; exit ${JOIN_FAILED_EXIT}; }`,
  '  shift',
  'done',
  'shift',
  'if [ "$2" = - ]; then unset PWD; else PWD=${2#=}; export PWD; fi',
  'if [ "$1" = 1 ]; then exec 2>&1; fi',
  'shift 2',
  'exec "$@"',
].join('\n');

/** The host's own shell, whatever PATH the command is given. */
const HOST_SH = '/bin/sh';

/**
 * `spec` run so that its process joins `spec.joinCgroups` first. Wraps
 * whatever argv the runner will start, a terminal's script(1) included: the
 * joined process becomes script(1), so script, the pty session it makes and
 * everything in it are inside (and a failed join is told on the runner's own
 * stderr, not on the terminal).
 */
export function joiningCgroups(spec: CommandSpec, opts: { mergeStderr: boolean }): CommandSpec {
  const files = spec.joinCgroups ?? [];
  if (files.length === 0) return spec;
  for (const f of files) {
    if (!f.startsWith('/') || !f.endsWith('/cgroup.procs') || f.includes('\0') || f.split('/').some((c) => c === '.' || c === '..')) {
      throw new CommandFailedError(spec.argv, undefined, `joinCgroups: refusing ${JSON.stringify(f)}: not the absolute path of a cgroup.procs file`);
    }
  }
  const { joinCgroups: _files, ...rest } = spec;
  const pwd = spec.env?.PWD;
  const params = [...files, '--', opts.mergeStderr ? '1' : '0', pwd === undefined ? '-' : `=${pwd}`];
  return { ...rest, argv: [HOST_SH, '-c', JOIN_SCRIPT, 'qfleet-join', ...params, ...spec.argv] };
}

/** Whether a command that exited so never ran because its join failed. */
export function joinFailed(exitCode: number | undefined, stderr: string): boolean {
  return exitCode === JOIN_FAILED_EXIT && stderr.includes(JOIN_FAILED_MARK);
}
