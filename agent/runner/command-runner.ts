import type { Readable, Writable } from 'node:stream';

/**
 * One command for the host, always an argv array (never a shell string).
 * Drivers build these; only a CommandRunner turns them into processes.
 */
export interface CommandSpec {
  readonly argv: readonly string[];
  readonly cwd?: string;
  /** Complete environment for the child; the agent's own environment is not inherited. */
  readonly env?: Readonly<Record<string, string>>;
  /** Milliseconds before the whole process group is killed; default 120 s. */
  readonly timeoutMs?: number;
  readonly input?: string | Buffer;
  /** Exit codes that are answers rather than failures (e.g. 1 for `onestatus`). */
  readonly okExitCodes?: readonly number[];
  /**
   * Open file descriptors handed to the child as fd 3, 4, … (used to mount onto a
   * directory opened without following symlinks: `/proc/self/fd/3`).
   */
  readonly passFds?: readonly number[];
  /**
   * Append the child's stdout and stderr to this host file instead of capturing them.
   * For commands that leave daemons behind holding their output open (rc scripts).
   */
  readonly logFile?: string;
  /**
   * Run the command on a pseudo-terminal of its own, of this size if given
   * (exec and console with a tty). The runner sets it up (agent/runner/terminal.ts);
   * argv and env stay those of the command itself.
   */
  readonly terminal?: { readonly rows?: number; readonly cols?: number };
  /**
   * cgroup.procs files (one per hierarchy) the command joins before it runs,
   * so everything it forks (a daemon an rc script leaves) is counted against
   * the container's limits. The runner makes the child join itself before exec
   * (agent/runner/join-cgroups.ts; with a terminal, script(1) joins, so the pty
   * session is inside). A join that fails never runs the command: run() rejects
   * saying which cgroup, a spawned child exits 125 saying so on stderr.
   */
  readonly joinCgroups?: readonly string[];
}

export interface CommandResult {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A long-lived child with streams, for exec and console. */
export interface SpawnedCommand {
  readonly pid: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Signals the child's whole process group. */
  kill(signal: NodeJS.Signals | number): void;
  /** Resolves when the child exits: its code, or the signal that killed it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface CommandRunner {
  /**
   * Runs to completion. Resolves for exit code 0 or one of okExitCodes;
   * rejects with CommandFailedError otherwise (or on timeout / spawn failure).
   */
  run(spec: CommandSpec): Promise<CommandResult>;
  /** Starts a child whose streams the caller drives. */
  spawn(spec: CommandSpec): SpawnedCommand;
}
