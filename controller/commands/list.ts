import type { Command } from 'commander';
import { call } from '../client.js';
import { action, EXIT } from '../context.js';
import { renderContainers } from '../render.js';
import type { ListResponse__Output } from '../../proto/gen/qfleet/agent/v1/ListResponse.js';

export function register(program: Command): void {
  program
    .command('list')
    .description('list every chroot container, ascending by name')
    .action(
      action(program, async (ctx) => {
        const c = ctx.client();
        const res = await call<object, ListResponse__Output>(c, c.List, {}, ctx.timeoutMs);
        ctx.out(ctx.json ? JSON.stringify(res.containers) : renderContainers(res.containers));
        return EXIT.ok;
      }),
    );
}
