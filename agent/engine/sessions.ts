import type { Readable } from 'node:stream';
import type { HostDriver } from '../drivers/host-driver.js';
import { InternalError, InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CommandRunner, CommandSpec } from '../runner/command-runner.js';
import type { ContainerView } from './engine.js';

/** What a client asks for: a command in a started container, or a console on a stopped one. */
export interface SessionRequest {
  readonly name: unknown;
  /** qchroot console (argv is then ignored): the container must be stopped, and is mounted for the session. */
  readonly console: boolean;
  readonly argv: readonly string[];
  readonly tty: boolean;
  readonly env: Readonly<Record<string, string>>;
  readonly rows?: number;
  readonly cols?: number;
  readonly requestId?: string;
}

/** An interactive session's command plus what must happen when it ends (made by the engine's exec or console). */
export interface ExecSession {
  readonly spec: CommandSpec;
  /** Call exactly once when the command has exited. */
  end(): Promise<void>;
}

export interface SessionExit {
  /** -1 when the command was ended by a signal. */
  readonly code: number;
  /** The signal's name, or empty. */
  readonly signal: string;
}

/** A running exec or console: its output, and what the client may send it. */
export interface Session {
  readonly stdout: Readable;
  readonly stderr: Readable;
  write(data: Uint8Array): void;
  endInput(): void;
  /** A signal number from the client (1-64; anything else is ignored) or a name from the agent. */
  signal(sig: number | NodeJS.Signals): void;
  /** Follows the client's terminal size; a session without a terminal ignores it. */
  resize(rows: number, cols: number): void;
  /** Settles once the command has exited and the session's clean-up (a console's unmount) has run. */
  readonly exited: Promise<SessionExit>;
}

export interface SessionsOptions {
  /** The engine's checks and preparation: exec needs a started container, console a stopped one. */
  readonly prepare: (req: SessionRequest) => Promise<ExecSession>;
  /** The same checks without preparing anything (validate_only): the container the session would run in. */
  readonly check: (req: SessionRequest) => Promise<ContainerView>;
  /** Absent: every session is refused before anything is prepared. */
  readonly runner: CommandRunner | undefined;
  readonly driver: HostDriver;
  readonly log: Logger;
}

const MAX_ENV = 64;

/**
 * Exec and console sessions: the engine prepares the container, the runner
 * spawns the command, the driver resizes its terminal, and the session's
 * clean-up runs when the command exits. The server only carries bytes.
 */
export class Sessions {
  constructor(private readonly opts: SessionsOptions) {}

  /** What open() would check, answering the container the session would run in; nothing is mounted or spawned. */
  async validate(req: SessionRequest): Promise<ContainerView> {
    checkEnv(req.env);
    return this.opts.check(req);
  }

  /**
   * Prepares and starts a session. `abandoned` is asked once the container is
   * ready: if the client has gone meanwhile, the session is ended unstarted and
   * undefined is returned.
   */
  async open(req: SessionRequest, abandoned: () => boolean = () => false): Promise<Session | undefined> {
    const { runner, driver, log } = this.opts;
    if (!runner) throw new InternalError('this agent has no command runner to start sessions with');
    checkEnv(req.env);
    const prepared = await this.opts.prepare(req);
    if (abandoned()) {
      await prepared.end();
      return undefined;
    }
    let child;
    try {
      child = runner.spawn(prepared.spec);
    } catch (e) {
      await prepared.end().catch(() => undefined);
      throw e;
    }
    const c = child;
    c.stdin.on('error', () => undefined); // the command may exit before reading all input
    const exited = c.exited.then(async ({ code, signal }) => {
      await prepared.end().catch((e) => log.error('console clean-up failed', { container: req.name, error: String(e) }));
      return { code: code ?? -1, signal: signal ?? '' };
    });
    return {
      stdout: c.stdout,
      stderr: c.stderr,
      write: (data) => void c.stdin.write(data),
      endInput: () => void c.stdin.end(),
      signal: (sig) => {
        if (typeof sig === 'number' && !(sig > 0 && sig < 65)) return;
        c.kill(sig);
      },
      resize: (rows, cols) => {
        if (!req.tty || !c.pid || !rows || !cols) return;
        driver.resizeTerminal(c.pid, rows, cols).catch((e) => log.warn('terminal resize failed', { error: String(e) }));
      },
      exited,
    };
  }
}

/** Environment names a session may set: shell identifiers, a bounded number of them. */
function checkEnv(env: Readonly<Record<string, string>>): void {
  const names = Object.keys(env);
  if (names.length > MAX_ENV || names.some((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) {
    throw new InvalidArgumentError(`Error; exec environment names must be shell identifiers (at most ${MAX_ENV} of them).`);
  }
}
