import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { printOutcomes, runFleet } from '../fleet/report.js';
import { renderContainer } from '../render.js';
import { containerJson } from '../json-shape.js';

export function register(program: Command): void {
  program
    .command('get')
    .description('show one container on every targeted host: its state, isolation and whole config, the pid of its init (namespaces) or its jid (jail) while it runs, services, release, path')
    .argument('<name>')
    .action(
      action(program, async (ctx, name: string) => {
        const outcomes = await runFleet(ctx, ({ client, timeoutMs, signal }) => call(client, 'Get', { name }, timeoutMs, signal), { timeoutMs: ctx.timeoutMs });
        return printOutcomes(ctx, outcomes, {
          text: (r) => (r.container ? renderContainer(r.container) : undefined),
          json: (r) => ({ container: r.container ? containerJson(r.container) : null }),
        });
      }),
    );
}
