import type { Command } from 'commander';
import { call, requestId } from '../client.js';
import { action, EXIT } from '../context.js';
import type { ConfigureResponse__Output } from '../../proto/gen/qfleet/agent/v1/ConfigureResponse.js';

export function register(program: Command): void {
  program
    .command('config')
    .description("set a container's services (rc script names); no services clears them; takes effect at the next start")
    .argument('<name>')
    .argument('[services...]')
    .action(
      action(program, async (ctx, name: string, services: string[]) => {
        const c = ctx.client();
        const res = await call<object, ConfigureResponse__Output>(c, c.Configure, { requestId: requestId(), name, services }, ctx.timeoutMs);
        if (ctx.json) ctx.out(JSON.stringify(res.container));
        else ctx.out(services.length ? `${name}: services set to ${services.join(' ')}.` : `${name}: services cleared.`);
        return EXIT.ok;
      }),
    );
}
