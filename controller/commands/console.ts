import type { Command } from 'commander';
import { action } from '../context.js';
import { runExecOn } from '../exec-run.js';
import { oneContainer } from '../fleet/one-container.js';
import { dryRun, execSteps } from '../fleet/dry-run.js';

export function register(program: Command): void {
  program
    .command('console')
    .description('interactive shell in a stopped container (prompt shows its name and path); exit ends it. From a pipe, runs the input as a script')
    .argument('<[host/]name>', 'HOST/NAME with an inventory (NAME alone when -H selects one host)')
    .action(
      action(program, async (ctx, arg: string) => {
        const { host, name } = oneContainer(ctx, arg);
        const start = { name, argv: [], tty: Boolean(process.stdin.isTTY) && !ctx.json, console: true, env: { TERM: process.env.TERM ?? 'vt100' } };
        if (ctx.dryRun) return dryRun(ctx, 'console', (c) => execSteps(c, start, 'console'), { hosts: [host], container: name, action: 'console' });
        return runExecOn(ctx, host, start);
      }),
    );
}
