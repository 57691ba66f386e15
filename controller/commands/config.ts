import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { dryRun } from '../fleet/dry-run.js';
import { runChanging } from '../fleet/report.js';
import { containerJson, stateWord } from '../json-shape.js';

export function register(program: Command): void {
  program
    .command('config')
    .description("set a container's services (rc script names); no services clears them; takes effect at the next start")
    .argument('<name>')
    .argument('[services...]')
    .action(
      action(program, async (ctx, name: string, services: string[]) => {
        if (ctx.dryRun) {
          const what = services.length ? `config: services ${services.join(' ')}` : 'config: clear services';
          return dryRun(ctx, 'config', async ({ client, timeoutMs, signal }) => {
            const r = await call(client, 'Configure', { requestId: ctx.requestId, name, services, validateOnly: true }, timeoutMs, signal);
            return [{ container: name, state: r.container ? stateWord(r.container.state) : '-', action: what, problem: '' }];
          }, { container: name, action: what });
        }
        return runChanging(
          ctx,
          ({ client, timeoutMs, signal }) => call(client, 'Configure', { requestId: ctx.requestId, name, services }, timeoutMs, signal),
          {
            text: () => (services.length ? `${name}: services set to ${services.join(' ')}.` : `${name}: services cleared.`),
            json: (r) => ({ container: r.container ? containerJson(r.container) : null }),
          },
          { timeoutMs: ctx.timeoutMs },
        );
      }),
    );
}
