import type { Command } from 'commander';
import { call, requestId } from '../client.js';
import { action, EXIT } from '../context.js';
import type { CreateResponse__Output } from '../../proto/gen/qfleet/agent/v1/CreateResponse.js';

export function register(program: Command): void {
  program
    .command('create')
    .description('create a chroot container from the template (letters, digits, - and _; not all digits)')
    .argument('<name>')
    .action(
      action(program, async (ctx, name: string) => {
        const c = ctx.client();
        const res = await call<object, CreateResponse__Output>(c, c.Create, { requestId: requestId(), name }, 10 * 60_000);
        if (ctx.json) ctx.out(JSON.stringify(res.container));
        else ctx.out(`Chroot container ${name} created at ${res.container?.path ?? '?'}.`);
        return EXIT.ok;
      }),
    );
}
