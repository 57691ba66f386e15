import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { dryRun } from '../fleet/dry-run.js';
import { runChanging } from '../fleet/report.js';
import { containerJson } from '../json-shape.js';

export function register(program: Command): void {
  program
    .command('create')
    .description('create a chroot container from the template (letters, digits, - and _; not all digits), on every targeted host')
    .argument('<name>')
    .action(
      action(program, async (ctx, name: string) => {
        if (ctx.dryRun) {
          return dryRun(ctx, 'create', async ({ client, timeoutMs, signal }) => {
            await call(client, 'Create', { requestId: ctx.requestId, name, validateOnly: true }, timeoutMs, signal);
            return [{ container: name, state: '-', action: 'create', problem: '' }];
          }, { container: name });
        }
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
