import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { createPlan, dryRun } from '../fleet/plan.js';
import { runChanging } from '../fleet/report.js';
import { containerJson } from '../json-shape.js';

export function register(program: Command): void {
  program
    .command('create')
    .description('create a chroot container from the template (letters, digits, - and _; not all digits), on every targeted host')
    .argument('<name>')
    .action(
      action(program, async (ctx, name: string) => {
        if (ctx.dryRun) return dryRun(ctx, 'create', (cs) => createPlan(name, cs));
        return runChanging(
          ctx,
          ({ client, timeoutMs, signal }) => call(client, 'Create', { requestId: ctx.requestId, name }, timeoutMs, signal),
          {
            text: (r) => `Chroot container ${name} created at ${r.container?.path ?? '?'}.`,
            json: (r) => ({ container: r.container ? containerJson(r.container) : null }),
          },
          { timeoutMs: ctx.longTimeoutMs(10 * 60_000) },
        );
      }),
    );
}
