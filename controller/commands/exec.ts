import type { Command } from 'commander';
import { action } from '../context.js';
import { runExecStream } from '../exec-stream.js';

export function register(program: Command): void {
  program
    .command('exec')
    .description('run a command inside a started container; its exit code becomes ours')
    .argument('<name>')
    .argument('<command...>', 'the command and its arguments (put -- before them)')
    .option('-t, --tty', 'run on a pseudo-terminal')
    .option('-e, --env <NAME=value...>', 'environment for the command')
    .action(
      action(program, (ctx, name: string, argv: string[], opts: { tty?: boolean; env?: string[] }) => {
        const env: Record<string, string> = {};
        for (const kv of opts.env ?? []) {
          const i = kv.indexOf('=');
          if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        if (opts.tty && process.env.TERM) env.TERM ??= process.env.TERM;
        return runExecStream(ctx, { name, argv, tty: Boolean(opts.tty), console: false, env });
      }),
    );
}
