import type { Command } from 'commander';
import { call, requestId } from '../client.js';
import { action, EXIT, type CliContext } from '../context.js';
import { renderResults, resultsFailed } from '../render.js';
import type { ContainerResult__Output } from '../../proto/gen/qfleet/agent/v1/ContainerResult.js';

/** start, stop and delete share their shape: names or -A, one qchroot line per container. */
export async function runLifecycle(
  ctx: CliContext,
  verb: 'Start' | 'Stop' | 'Delete',
  names: string[],
  opts: { all?: boolean; grace?: string },
): Promise<number> {
  if (opts.all && names.length) {
    ctx.err(`qfleet: give container names or -A, not both.`);
    return EXIT.usage;
  }
  if (!opts.all && names.length === 0) {
    ctx.err(`qfleet: name at least one container, or use -A for all.`);
    return EXIT.usage;
  }
  const c = ctx.client();
  const req = { requestId: requestId(), names, all: Boolean(opts.all), ...(opts.grace ? { graceSeconds: Number(opts.grace) } : {}) };
  const res = await call<object, { results: ContainerResult__Output[] }>(c, c[verb], req, 30 * 60_000);
  if (ctx.json) ctx.out(JSON.stringify(res.results));
  else if (res.results.length) ctx.out(renderResults(res.results));
  else ctx.out('No chroot containers.');
  return resultsFailed(res.results) ? EXIT.failed : EXIT.ok;
}
