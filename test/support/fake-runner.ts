import { PassThrough } from 'node:stream';
import { CommandFailedError } from '../../agent/errors.js';
import type { CommandResult, CommandRunner, CommandSpec, SpawnedCommand } from '../../agent/runner/command-runner.js';

/** What a scripted command answers. */
export interface FakeReply {
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exitCode?: number;
}

export type FakeHandler = (spec: CommandSpec) => FakeReply | undefined;

/**
 * A command no handler answered. Not a CommandFailedError on purpose: code under
 * test that treats a failed command as an answer must not swallow this one.
 */
export class UnexpectedCommandError extends Error {
  constructor(readonly argv: readonly string[], told: readonly string[]) {
    super(`FakeRunner: unexpected command: ${argv.join(' ')}\n  it was told about: ${told.length > 0 ? told.join('; ') : '(nothing)'}`);
    this.name = 'UnexpectedCommandError';
  }
}

/**
 * Records every command a driver plans and answers from handlers, in order:
 * the first handler returning a reply wins. A command no handler answers
 * rejects with UnexpectedCommandError (naming the argv and what the runner was
 * told), so a test can never pass on a default answer it did not mean to give;
 * `unexpected` keeps them too, and a root afterEach hook fails the test that
 * ran them even when the code under test caught the rejection (cleanup paths do).
 * `transcript` is what golden tests compare against.
 */
export class FakeRunner implements CommandRunner {
  /** Every runner made, so the hook below can fail a test whose code swallowed the rejection. */
  static readonly made = new Set<FakeRunner>();

  readonly calls: CommandSpec[] = [];
  /** Commands no handler answered, one line each, in order; a test that means to provoke one empties it. */
  readonly unexpected: string[] = [];
  private readonly handlers: { handler: FakeHandler; what: string }[] = [];

  constructor() {
    FakeRunner.made.add(this);
  }

  /** Answer commands whose argv starts with `prefix` (exit 0 and no output when no reply is given). */
  on(prefix: readonly string[], reply: FakeReply | ((spec: CommandSpec) => FakeReply) = {}): this {
    return this.handle(
      (spec) => (prefix.every((p, i) => spec.argv[i] === p) ? (typeof reply === 'function' ? reply(spec) : reply) : undefined),
      `${prefix.join(' ')} …`,
    );
  }

  /** A handler that answers some commands (returns undefined for the others); `what` names it in errors. */
  handle(handler: FakeHandler, what = `handler #${this.handlers.length + 1}`): this {
    this.handlers.push({ handler, what });
    return this;
  }

  /** Each command as one line, argv joined by spaces. */
  get transcript(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }

  private answer(spec: CommandSpec): FakeReply {
    for (const { handler } of this.handlers) {
      const r = handler(spec);
      if (r) return r;
    }
    this.unexpected.push(spec.argv.join(' '));
    throw new UnexpectedCommandError(spec.argv, this.handlers.map((h) => h.what));
  }

  async run(spec: CommandSpec): Promise<CommandResult> {
    this.calls.push(spec);
    const reply = this.answer(spec);
    const exitCode = reply.exitCode ?? 0;
    const stdout = reply.stdout ?? '';
    const stderr = reply.stderr ?? '';
    if (exitCode !== 0 && !(spec.okExitCodes ?? []).includes(exitCode)) {
      throw new CommandFailedError(spec.argv, exitCode, stderr || stdout);
    }
    return { argv: spec.argv, exitCode, stdout, stderr };
  }

  spawn(spec: CommandSpec): SpawnedCommand {
    this.calls.push(spec);
    const reply = this.answer(spec);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.end(reply.stdout ?? '');
    stderr.end(reply.stderr ?? '');
    return {
      pid: undefined,
      stdin: new PassThrough(),
      stdout,
      stderr,
      kill: () => undefined,
      exited: Promise.resolve({ code: reply.exitCode ?? 0, signal: null }),
    };
  }
}

/** Fails the test during which any runner met a command it was not told about (and forgets them, for the next test). */
export function checkUnexpectedCommands(): void {
  const seen: string[] = [];
  for (const r of FakeRunner.made) seen.push(...r.unexpected.splice(0));
  if (seen.length > 0) throw new Error(`FakeRunner: unexpected command(s) during this test, even if the code under test caught them: ${seen.join('; ')}`);
}

// Registered once, on mocha's root suite, when a test file first imports this module.
if (typeof afterEach === 'function') afterEach(checkUnexpectedCommands);
