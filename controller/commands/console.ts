import type { Command } from 'commander';
import { action } from '../context.js';
import { runExecStream } from '../exec-stream.js';

export function register(program: Command): void {
  program
    .command('console')
    .description('interactive shell in a stopped container (prompt shows its name and path); exit ends it. From a pipe, runs the input as a script')
    .argument('<name>')
    .action(
      action(program, (ctx, name: string) =>
        runExecStream(ctx, { name, argv: [], tty: Boolean(process.stdin.isTTY), console: true, env: { TERM: process.env.TERM ?? 'vt100' } }),
      ),
    );
}
