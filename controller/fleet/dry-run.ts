import type { ContainerResult__Output } from '../../proto/gen/qfleet/agent/v1/ContainerResult.js';
import type { ExecResponse__Output } from '../../proto/gen/qfleet/agent/v1/ExecResponse.js';
import type { ExecStart } from '../../proto/gen/qfleet/agent/v1/ExecStart.js';
import { errorDetailOf, reasonWord } from '../agent-error.js';
import { EXIT, type CliContext } from '../context.js';
import { renderPlan, stateWord, type PlanRow } from '../render.js';
import { call } from '../transport/call.js';
import type { HostCall } from './fanout.js';
import type { HostTarget } from './host-target.js';
import { problem, runFleet } from './report.js';
import { tooOld, type ApiNeed } from './api-revision.js';

export type Step = Omit<PlanRow, 'host'>;

/** The first API revision whose agents answer validate_only; an older agent ignores the field and would act. */
export const VALIDATE_ONLY_API = 2;

/**
 * --dry-run: every targeted host's agent is sent the command's real request
 * with validate_only, and answers with the same checks the call makes (names,
 * lookups, busy containers, states) without changing anything (agent.proto).
 * qfleet keeps no copy of those rules: `ask` sends the request and turns the
 * answer into steps; a refusal (an error the agent explains with its
 * ErrorDetail) becomes a step that would fail. Before that, a Version call
 * makes sure the agent knows validate_only.
 *
 * Text: a table HOST CONTAINER STATE ACTION PROBLEM and a closing `Dry run: …`
 * line. --json: the fleet array, each host's result {action, steps: [{container,
 * state, action, problem, reason}]}. Exit 0 when every step would go ahead, 1 when a
 * host did not answer or a step would fail. `container` and `action`: the one
 * container a command is about and what it would do (create, config, exec),
 * for the step of a refusal that names no container, or of an old agent.
 * `need`: what else the request needs of the agent (container config: API 3);
 * an agent too old for it is a step that would fail, and is asked nothing more.
 */
export async function dryRun(
  ctx: CliContext,
  verb: string,
  ask: (c: HostCall) => Promise<Step[]>,
  opts: { hosts?: readonly HostTarget[]; container?: string; action?: string; need?: ApiNeed | undefined } = {},
): Promise<number> {
  const outcomes = await runFleet(
    ctx,
    async (c) => {
      const v = await call(c.client, 'Version', {}, c.timeoutMs, c.signal);
      if (v.apiRevision < VALIDATE_ONLY_API) {
        return [{
          container: opts.container ?? '-', state: '-', action: opts.action ?? verb,
          problem: `qfleetd ${v.agentVersion} (API ${v.apiRevision}) cannot answer --dry-run (API ${VALIDATE_ONLY_API}); nothing was asked of it`,
        }];
      }
      const old = opts.need && tooOld(v, opts.need);
      if (old) return [{ container: opts.container ?? '-', state: '-', action: opts.action ?? verb, problem: old }];
      try {
        return await ask(c);
      } catch (e) {
        const refused = refusalSteps(opts.action ?? verb, e, opts.container);
        if (refused) return refused;
        throw e;
      }
    },
    { timeoutMs: ctx.timeoutMs, ...(opts.hosts ? { hosts: opts.hosts } : {}) },
  );
  const rows: PlanRow[] = [];
  const perHost = outcomes.map((o) => {
    if (!o.result) {
      rows.push({ host: o.host.name, container: '-', state: '-', action: verb, problem: problem(o) });
      return { host: o.host.name, status: o.status, error: o.error ?? o.status };
    }
    const steps = o.result.length ? o.result : [{ container: '-', state: '-', action: 'none (no container matches)', problem: '' }];
    rows.push(...steps.map((s) => ({ host: o.host.name, ...s })));
    // --json: every step says its reason, null when none was given (a step that would go ahead).
    return { host: o.host.name, status: o.status, result: { action: verb, steps: steps.map((s) => ({ ...s, reason: s.reason ?? null })) } };
  });
  if (ctx.json) ctx.out(JSON.stringify(perHost));
  else ctx.out(renderPlan(rows, verb));
  return rows.some((r) => r.problem) ? EXIT.failed : EXIT.ok;
}

/**
 * The steps of a request the agent refused as a whole: one per container its
 * detail names (`containers`, or `container`), else one for `container` or the
 * host; the problem is the agent's message, the state what the detail says.
 * Undefined for an error without a detail (the host failed: no connection, ...).
 */
function refusalSteps(action: string, e: unknown, container: string | undefined): Step[] | undefined {
  const d = errorDetailOf(e);
  if (!d) return undefined;
  const message = (e as { details: string }).details;
  const named = d.fields.containers ? d.fields.containers.split(',') : [d.fields.container ?? container ?? '-'];
  return named.map((n) => ({ container: n, state: d.fields.state ?? '-', action, problem: message, reason: d.reason }));
}

/** What the agent's results say a start, stop or delete would do to each container. */
export function resultSteps(verb: string, results: readonly ContainerResult__Output[]): Step[] {
  return results.map((r) => ({
    container: r.name,
    state: r.state && r.state !== 'STATE_UNSPECIFIED' ? stateWord(r.state) : (r.error?.fields.state ?? '-'),
    action: actionOf(verb, r),
    problem: r.outcome === 'OUTCOME_FAILED' ? r.message : '',
    ...(r.outcome === 'OUTCOME_FAILED' && r.error ? { reason: reasonWord(r.error.reason) } : {}),
  }));
}

/** The ACTION column, from the outcome: the agent's own words for a change, `none (…)` for a no-op. */
function actionOf(verb: string, r: ContainerResult__Output): string {
  switch (r.outcome) {
    case 'OUTCOME_WOULD_CHANGE': return r.message;
    case 'OUTCOME_BYPASSED': return 'none (no service configured)';
    case 'OUTCOME_ALREADY_STARTED': return 'none (already started)';
    case 'OUTCOME_ALREADY_STOPPED': return 'none (already stopped)';
    default: return verb;
  }
}

/** exec and console: the Exec stream's start with validate_only; the step of the container the agent says the command would run in. */
export function execSteps({ client, timeoutMs, signal }: HostCall, start: ExecStart, action: string): Promise<Step[]> {
  return new Promise((resolve, reject) => {
    const stream = client.Exec({ deadline: Date.now() + timeoutMs });
    signal.addEventListener('abort', () => stream.cancel(), { once: true });
    let state = '-';
    stream.on('data', (m: ExecResponse__Output) => {
      if (m.validated) state = stateWord(m.validated.state);
    });
    stream.on('error', reject);
    stream.on('end', () => resolve([{ container: start.name ?? '-', state, action, problem: '' }]));
    stream.write({ start: { ...start, validateOnly: true } });
    stream.end();
  });
}
