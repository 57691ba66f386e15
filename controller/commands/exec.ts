import type { Command } from 'commander';
import { action, reportError } from '../context.js';
import { runExecStream } from '../exec-stream.js';
import { oneContainer } from '../fleet/one-container.js';
import { dryRun, execPlan } from '../fleet/plan.js';

export function register(program: Command): void {
  program
    .command('exec')
    .description('run a command inside a started container; its exit code becomes ours')
    .argument('<[host/]name>', 'HOST/NAME with an inventory (NAME alone when -H selects one host)')
    .argument('<command...>', 'the command and its arguments (put -- before them)')
    .option('-t, --tty', 'run on a pseudo-terminal')
    .option('-e, --env <NAME=value...>', 'environment for the command')
    .action(
      action(program, async (ctx, arg: string, argv: string[], opts: { tty?: boolean; env?: string[] }) => {
        const { host, name } = oneContainer(ctx, arg);
        if (ctx.dryRun) return dryRun(ctx, 'exec', (cs) => execPlan(name, false, argv, cs), [host]);
        const env: Record<string, string> = {};
        for (const kv of opts.env ?? []) {
          const i = kv.indexOf('=');
          if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        if (opts.tty && process.env.TERM) env.TERM ??= process.env.TERM;
        const client = await ctx.connect(host);
        try {
          return await runExecStream(client, { name, argv, tty: Boolean(opts.tty), console: false, env });
        } catch (e) {
          return reportError(ctx, e, ctx.where(host));
        } finally {
          client.close();
        }
      }),
    );
}
