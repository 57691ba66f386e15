import type { Container__Output } from '../../proto/gen/qfleet/agent/v1/Container.js';
import { call } from '../transport/call.js';
import { EXIT, type CliContext } from '../context.js';
import { renderPlan, stateWord, type PlanRow } from '../render.js';
import type { HostTarget } from './host-target.js';
import { problem, runFleet } from './report.js';
import { resolveSelection, type Selection } from './selection.js';

export type Step = Omit<PlanRow, 'host'>;

/**
 * --dry-run: lists every targeted host's containers (read-only List calls),
 * then prints which containers on which hosts the command would touch, and
 * why a step would fail; changes nothing. Exit 0 when every step would go
 * ahead, 1 when a host did not answer or a step would fail.
 *
 * Text: a table HOST CONTAINER STATE ACTION PROBLEM and a closing `Dry run: …`
 * line. --json: the fleet array, each host's result {action, steps: [{container,
 * state, action, problem}]}.
 */
export async function dryRun(ctx: CliContext, verb: string, plan: (containers: readonly Container__Output[]) => Step[], hosts?: readonly HostTarget[]): Promise<number> {
  const outcomes = await runFleet(ctx, ({ client, timeoutMs, signal }) => call(client, 'List', {}, timeoutMs, signal), {
    timeoutMs: ctx.timeoutMs,
    ...(hosts ? { hosts } : {}),
  });
  const rows: PlanRow[] = [];
  const perHost = outcomes.map((o) => {
    if (!o.result) {
      const row = { host: o.host.name, container: '-', state: '-', action: verb, problem: problem(o) };
      rows.push(row);
      return { host: o.host.name, status: o.status, error: o.error ?? o.status };
    }
    let steps = plan(o.result.containers);
    if (!steps.length) steps = [{ container: '-', state: '-', action: 'none (no container matches)', problem: '' }];
    rows.push(...steps.map((s) => ({ host: o.host.name, ...s })));
    return { host: o.host.name, status: o.status, result: { action: verb, steps } };
  });
  if (ctx.json) ctx.out(JSON.stringify(perHost));
  else ctx.out(renderPlan(rows, verb));
  return rows.some((r) => r.problem) ? EXIT.failed : EXIT.ok;
}

function byName(containers: readonly Container__Output[]): Map<string, Container__Output> {
  return new Map(containers.map((c) => [c.name, c]));
}

/** What start, stop or delete would do to the selected containers of one host. */
export function lifecyclePlan(verb: 'start' | 'stop' | 'delete', sel: Selection, containers: readonly Container__Output[]): Step[] {
  const have = byName(containers);
  const { names, missing } = resolveSelection(sel, [...have.keys()]);
  const running = names.filter((n) => have.get(n)!.state === 'STATE_RUNNING');
  const steps: Step[] = names.map((n) => {
    const c = have.get(n)!;
    const state = stateWord(c.state);
    if (verb === 'start') {
      if (c.state === 'STATE_RUNNING') return { container: n, state, action: 'none (already started)', problem: '' };
      if (!c.services.length) return { container: n, state, action: 'none (no service configured)', problem: '' };
      return { container: n, state, action: `start ${c.services.map((s) => s.name).join(' ')}`, problem: '' };
    }
    if (verb === 'stop') {
      if (c.state === 'STATE_STOPPED') return { container: n, state, action: 'none (already stopped)', problem: '' };
      return { container: n, state, action: 'stop', problem: '' };
    }
    if (c.state === 'STATE_RUNNING') return { container: n, state, action: 'delete', problem: 'running: stop it first' };
    if (running.length) return { container: n, state, action: 'delete', problem: `not deleted while ${running.join(', ')} runs` };
    return { container: n, state, action: 'delete', problem: '' };
  });
  for (const n of missing) steps.push({ container: n, state: '-', action: verb, problem: 'no such container' });
  return steps;
}

export function createPlan(name: string, containers: readonly Container__Output[]): Step[] {
  const c = byName(containers).get(name);
  return [c ? { container: name, state: stateWord(c.state), action: 'create', problem: 'already exists' } : { container: name, state: '-', action: 'create', problem: '' }];
}

export function configPlan(name: string, services: readonly string[], containers: readonly Container__Output[]): Step[] {
  const c = byName(containers).get(name);
  const action = services.length ? `config: services ${services.join(' ')}` : 'config: clear services';
  if (!c) return [{ container: name, state: '-', action, problem: 'no such container' }];
  return [{ container: name, state: stateWord(c.state), action, problem: '' }];
}

/** exec needs a started container, console a stopped one. */
export function execPlan(name: string, console: boolean, argv: readonly string[], containers: readonly Container__Output[]): Step[] {
  const c = byName(containers).get(name);
  const action = console ? 'console' : `exec ${argv.join(' ')}`;
  if (!c) return [{ container: name, state: '-', action, problem: 'no such container' }];
  const state = stateWord(c.state);
  if (console && c.state !== 'STATE_STOPPED') return [{ container: name, state, action, problem: 'console needs a stopped container' }];
  if (!console && c.state !== 'STATE_RUNNING') return [{ container: name, state, action, problem: 'exec needs a started container' }];
  return [{ container: name, state, action, problem: '' }];
}
