import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { connectUnix, defaultSocket, isServiceError, type AgentServiceClient } from './client.js';

/** Exit codes: 0 every target ok, 1 anything failed, 2 usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export interface CliContext {
  readonly socket: string;
  readonly json: boolean;
  /** Deadline for quick calls; long operations use their own. */
  readonly timeoutMs: number;
  client(): AgentServiceClient;
  out(text: string): void;
  err(text: string): void;
}

export function contextFrom(program: Command): CliContext {
  const o = program.opts<{ socket?: string; json?: boolean; timeout?: string }>();
  const socket = o.socket ?? defaultSocket();
  let client: AgentServiceClient | undefined;
  return {
    socket,
    json: Boolean(o.json),
    timeoutMs: Math.max(1, Number(o.timeout ?? 30)) * 1000,
    client: () => (client ??= connectUnix(socket)),
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  };
}

/** Prints a failure the way an operator can act on it and returns the exit code. */
export function reportError(ctx: CliContext, e: unknown): number {
  if (isServiceError(e)) {
    if (e.code === grpc.status.UNAVAILABLE) {
      ctx.err(`qfleet: cannot reach the agent at ${ctx.socket}: is qfleetd running? (${e.details})`);
      return EXIT.failed;
    }
    if (e.code === grpc.status.DEADLINE_EXCEEDED) {
      ctx.err(`qfleet: the agent at ${ctx.socket} did not answer in time.`);
      return EXIT.failed;
    }
    ctx.err(e.details.startsWith('Error;') ? e.details : `qfleet: ${e.details}`);
    return e.code === grpc.status.INVALID_ARGUMENT ? EXIT.usage : EXIT.failed;
  }
  ctx.err(`qfleet: ${e instanceof Error ? e.message : String(e)}`);
  return EXIT.failed;
}

/** Wraps a subcommand's action: its resolved number is the exit code. */
export function action<A extends unknown[]>(program: Command, fn: (ctx: CliContext, ...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    const ctx = contextFrom(program);
    try {
      process.exitCode = await fn(ctx, ...args);
    } catch (e) {
      process.exitCode = reportError(ctx, e);
    } finally {
      if (process.exitCode !== undefined) setImmediate(() => ctx.client().close());
    }
  };
}
