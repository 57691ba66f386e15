import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { addConfigOptions, parseConfigOptions, type ConfigOptionValues } from '../container-options.js';
import { configNeed, requireApi } from '../fleet/api-revision.js';
import { dryRun } from '../fleet/dry-run.js';
import { runChanging } from '../fleet/report.js';
import { containerJson, isolationWord } from '../json-shape.js';

export function register(program: Command): void {
  const cmd = program
    .command('create')
    .description("create a container from the template (letters, digits, - and _; not all digits), on every targeted host; options not given take their defaults (isolation: the host's, see qfleet version)")
    .argument('<name>');
  addConfigOptions(cmd, false).action(
    action(program, async (ctx, name: string, opts: ConfigOptionValues) => {
      // Checked before any host is asked: a bad value is a usage error.
      const change = parseConfigOptions(opts);
      const need = configNeed(change?.flags);
      // No option: no config in the request, exactly as before isolation (any agent takes it).
      const req = { requestId: ctx.requestId, name, ...(change ? { config: change.config } : {}) };
      if (ctx.dryRun) {
        return dryRun(ctx, 'create', async ({ client, timeoutMs, signal }) => {
          const r = await call(client, 'Create', { ...req, validateOnly: true }, timeoutMs, signal);
          // The agent's answer says which mode the host would give it (its default when none was asked).
          const mode = r.container?.config ? ` (${isolationWord(r.container.config.isolation)})` : '';
          const rest = (change?.phrases ?? []).filter((p) => !p.startsWith('isolation '));
          return [{ container: name, state: '-', action: `create${mode}${rest.length ? `; ${rest.join('; ')}` : ''}`, problem: '' }];
        }, { container: name, need });
      }
      return runChanging(
        ctx,
        async (c) => {
          await requireApi(c, need);
          return call(c.client, 'Create', req, c.timeoutMs, c.signal);
        },
        {
          text: (r) => {
            const mode = r.container?.config ? ` (isolation ${isolationWord(r.container.config.isolation)})` : '';
            return `Chroot container ${name} created at ${r.container?.path ?? '?'}${mode}.`;
          },
          json: (r) => ({ container: r.container ? containerJson(r.container) : null }),
        },
        { timeoutMs: ctx.longTimeoutMs(10 * 60_000) },
      );
    }),
  );
}
