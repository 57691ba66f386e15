import { call } from '../transport/call.js';
import type { CliContext } from '../context.js';
import { boundedSeconds, LIMITS } from '../durations.js';
import { dryRun, resultSteps } from '../fleet/dry-run.js';
import type { HostCall } from '../fleet/fanout.js';
import { runChanging } from '../fleet/report.js';
import { needsList, parseSelection, resolveSelection } from '../fleet/selection.js';
import { renderResults } from '../render.js';
import type { ContainerResult__Output } from '../../proto/gen/qfleet/agent/v1/ContainerResult.js';
import { resultJson } from '../json-shape.js';

/** start, stop and delete may run long on a host (services, unmounts, removal). */
export const LIFECYCLE_TIMEOUT_MS = 30 * 60_000;

interface HostResults {
  results: ContainerResult__Output[];
  /** Group prefixes that matched nothing on this host (so nothing was asked of it). */
  unmatched?: string[];
}

/**
 * start, stop and delete share their shape: names (exact), qjail group
 * prefixes written `web=`, or -A; one qchroot line per container, prefixed with
 * the host when an inventory is in use.
 */
export async function runLifecycle(
  ctx: CliContext,
  verb: 'Start' | 'Stop' | 'Delete',
  args: string[],
  opts: { all?: boolean; grace?: string },
): Promise<number> {
  const sel = parseSelection(args, Boolean(opts.all));
  // At least 1: the API reads 0 as "the agent's default", which is not what --grace 0 would mean.
  const graceSeconds = opts.grace === undefined ? undefined : boundedSeconds(opts.grace, '--grace', LIMITS.graceSeconds, { min: 1, whole: true });
  ctx.targets();
  /** One host's request: the real one, or with validate_only for --dry-run (the same names, resolved the same way). */
  const ask = async ({ client, timeoutMs, signal }: HostCall, validateOnly: boolean): Promise<HostResults> => {
    let names: string[] = sel.kind === 'names' ? [...sel.exact] : [];
    if (needsList(sel)) {
      const listed = await call(client, 'List', {}, timeoutMs, signal);
      const r = resolveSelection(sel, listed.containers.map((c) => c.name));
      // Exact names the host lacks still go to the agent, which says so in its own words.
      names = [...r.names, ...r.missing];
      if (!names.length) return { results: [], unmatched: sel.prefixes.map((p) => `${p}=`) };
    }
    const req = { requestId: ctx.requestId, names, all: sel.kind === 'all', ...(graceSeconds ? { graceSeconds } : {}), ...(validateOnly ? { validateOnly } : {}) };
    const res = await call(client, verb, req, timeoutMs, signal);
    return { results: res.results };
  };
  if (ctx.dryRun) return dryRun(ctx, verb.toLowerCase(), async (c) => resultSteps(verb.toLowerCase(), (await ask(c, true)).results));
  return runChanging<HostResults>(
    ctx,
    (c) => ask(c, false),
    {
      text: (r) => (r.results.length ? renderResults(r.results) : r.unmatched ? `No chroot container matches ${r.unmatched.join(' ')}.` : 'No chroot containers.'),
      json: (r) => ({ results: r.results.map(resultJson), unmatched: r.unmatched ?? [] }),
      failedInside: (r) => {
        const failed = r.results.filter((x) => x.outcome === 'OUTCOME_FAILED');
        return failed.length ? `${failed.length} of ${r.results.length} containers failed: ${failed.map((x) => x.name).join(', ')}` : undefined;
      },
    },
    { timeoutMs: ctx.longTimeoutMs(LIFECYCLE_TIMEOUT_MS) },
  );
}
