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
 * Records every command a driver plans and answers from handlers, in order:
 * the first handler returning a reply wins; unmatched commands exit 0 silently.
 * `transcript` is what golden tests compare against.
 */
export class FakeRunner implements CommandRunner {
  readonly calls: CommandSpec[] = [];
  private readonly handlers: FakeHandler[] = [];

  /** Answer commands whose argv starts with `prefix`. */
  on(prefix: readonly string[], reply: FakeReply | ((spec: CommandSpec) => FakeReply)): this {
    this.handlers.push((spec) =>
      prefix.every((p, i) => spec.argv[i] === p) ? (typeof reply === 'function' ? reply(spec) : reply) : undefined,
    );
    return this;
  }

  handle(handler: FakeHandler): this {
    this.handlers.push(handler);
    return this;
  }

  /** Each command as one line, argv joined by spaces. */
  get transcript(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }

  async run(spec: CommandSpec): Promise<CommandResult> {
    this.calls.push(spec);
    let reply: FakeReply = {};
    for (const h of this.handlers) {
      const r = h(spec);
      if (r) { reply = r; break; }
    }
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
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.end();
    stderr.end();
    return {
      pid: undefined,
      stdin: new PassThrough(),
      stdout,
      stderr,
      kill: () => undefined,
      exited: Promise.resolve({ code: 0, signal: null }),
    };
  }
}
