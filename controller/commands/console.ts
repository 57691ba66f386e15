import type { Command } from 'commander';
import { action } from '../context.js';
import { runExecOn } from '../exec-run.js';
import { oneContainer } from '../fleet/one-container.js';
import { dryRun, execPlan } from '../fleet/plan.js';

export function register(program: Command): void {
  program
    .command('console')
    .description('interactive shell in a stopped container (prompt shows its name and path); exit ends it. From a pipe, runs the input as a script')
    .argument('<[host/]name>', 'HOST/NAME with an inventory (NAME alone when -H selects one host)')
    .action(
      action(program, async (ctx, arg: string) => {
        const { host, name } = oneContainer(ctx, arg);
        if (ctx.dryRun) return dryRun(ctx, 'console', (cs) => execPlan(name, true, [], cs), [host]);
        return runExecOn(ctx, host, { name, argv: [], tty: Boolean(process.stdin.isTTY) && !ctx.json, console: true, env: { TERM: process.env.TERM ?? 'vt100' } });
      }),
    );
}
