import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { printOutcomes, runFleet } from '../fleet/report.js';
import { renderContainers } from '../render.js';
import { containerJson } from '../json-shape.js';

export function register(program: Command): void {
  program
    .command('list')
    .description('list every chroot container, ascending by name (over an inventory: one table with a HOST column, then which hosts did not answer)')
    .action(
      action(program, async (ctx) => {
        const outcomes = await runFleet(
          ctx,
          ({ client, timeoutMs, signal }) => call(client, 'List', {}, timeoutMs, signal),
          { timeoutMs: ctx.timeoutMs },
        );
        if (!ctx.fleet() || ctx.json) {
          return printOutcomes(ctx, outcomes, { text: (r) => renderContainers(r.containers.map((container) => ({ container }))), json: (r) => ({ containers: r.containers.map(containerJson) }) });
        }
        // One table for the whole fleet, then the summary of hosts that did not answer;
        // when none did, only the summary: "No chroot containers." would claim what nobody said.
        const rows = outcomes.flatMap((o) => (o.result ? o.result.containers.map((container) => ({ host: o.host.name, container })) : []));
        if (outcomes.some((o) => o.result !== undefined)) ctx.out(renderContainers(rows));
        return printOutcomes(ctx, outcomes, { text: () => undefined, summary: true });
      }),
    );
}
