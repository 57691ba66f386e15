import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { addConfigOptions, parseConfigOptions, type ConfigOptionValues } from '../container-options.js';
import { configNeed, requireApi } from '../fleet/api-revision.js';
import { dryRun } from '../fleet/dry-run.js';
import { runChanging } from '../fleet/report.js';
import { containerJson, stateWord } from '../json-shape.js';

export function register(program: Command): void {
  const cmd = program
    .command('config')
    .description(
      "set a container's services (rc script names; with no services and no option, clears them) and, with options, only the fields they name; " +
        'takes effect at the next start (isolation, hostname, network, maps, mounts and securelevel change only while it is stopped)',
    )
    .argument('<name>')
    .argument('[services...]');
  addConfigOptions(cmd, true).action(
    action(program, async (ctx, name: string, services: string[], opts: ConfigOptionValues) => {
      const change = parseConfigOptions(opts);
      const need = configNeed(change?.flags);
      // Without options: qchroot's config, no mask (services replaced; none clears them), as every agent reads it.
      // With options: the mask names exactly the fields given, and "services" only when services were given.
      const req = change
        ? { requestId: ctx.requestId, name, services, updateMask: { paths: [...change.mask, ...(services.length ? ['services'] : [])] }, config: change.config }
        : { requestId: ctx.requestId, name, services };
      const servicesPhrase = services.length ? `services set to ${services.join(' ')}` : change ? undefined : 'services cleared';
      const phrases = [...(change?.phrases ?? []), ...(servicesPhrase ? [servicesPhrase] : [])];
      if (ctx.dryRun) {
        const what = change
          ? `config: ${phrases.join('; ')}`
          : services.length ? `config: services ${services.join(' ')}` : 'config: clear services';
        return dryRun(ctx, 'config', async ({ client, timeoutMs, signal }) => {
          const r = await call(client, 'Configure', { ...req, validateOnly: true }, timeoutMs, signal);
          return [{ container: name, state: r.container ? stateWord(r.container.state) : '-', action: what, problem: '' }];
        }, { container: name, action: what, need });
      }
      return runChanging(
        ctx,
        async (c) => {
          await requireApi(c, need);
          return call(c.client, 'Configure', req, c.timeoutMs, c.signal);
        },
        {
          text: () => `${name}: ${phrases.join('; ')}.`,
          json: (r) => ({ container: r.container ? containerJson(r.container) : null }),
        },
        { timeoutMs: ctx.timeoutMs },
      );
    }),
  );
}
