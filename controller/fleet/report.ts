import { errorDetailOf } from '../agent-error.js';
import { EXIT, exitCodeOf, reportError, type CliContext } from '../context.js';
import { fanOut, type HostCall, type HostOutcome } from './fanout.js';
import type { HostTarget } from './host-target.js';
import { byCodePoint } from './selection.js';

/** Runs work on every targeted host (ctx.forks at a time, each with timeoutMs); outcomes sorted by host name. */
export async function runFleet<T>(
  ctx: CliContext,
  work: (call: HostCall) => Promise<T>,
  opts: { timeoutMs: number; onSettled?: (o: HostOutcome<unknown>) => void; hosts?: readonly HostTarget[] },
): Promise<HostOutcome<T>[]> {
  const hosts = opts.hosts ?? ctx.hosts();
  const factory = await ctx.factory(hosts);
  const outcomes = await fanOut(hosts, work, {
    factory, forks: ctx.forks, timeoutMs: opts.timeoutMs, clock: ctx.clock, resolver: ctx.resolver(), ...(opts.onSettled ? { onSettled: opts.onSettled } : {}),
  });
  return outcomes.sort((a, b) => byCodePoint(a.host.name, b.host.name));
}

/** One host's problem as one line: `unreachable: …`, `timed out: …`, or the agent's own error. */
export function problem(o: { status: string; error?: string | undefined }): string {
  return o.status === 'failed' ? (o.error ?? 'failed') : `${o.status}: ${o.error ?? ''}`.trimEnd();
}

/** Every line of text prefixed with the host, as `host: line`. */
export function prefixLines(host: string, text: string): string {
  return text.split('\n').map((l) => `${host}: ${l}`).join('\n');
}

export interface FleetPrint<T> {
  /** The host's output when its agent answered (no prefix: it is added). */
  text(result: T): string | undefined;
  /** What goes in the JSON's `result` (default: the result itself). */
  json?(result: T): unknown;
  /** Why an answered host still failed (failed containers), or undefined when it did not. */
  failedInside?(result: T): string | undefined;
  /** Print the summary line of hosts that did not answer (list), in place of a stderr line per host. */
  summary?: boolean;
}

/** A host's final status once its containers are counted: ok only if they all are. */
export function finalOutcome<T>(o: HostOutcome<T>, p: Pick<FleetPrint<T>, 'failedInside'>): HostOutcome<T> {
  if (o.status !== 'ok' || o.result === undefined) return o;
  const inside = p.failedInside?.(o.result);
  return inside ? { ...o, status: 'failed', error: inside } : o;
}

/**
 * --json: ONE JSON document, an array with one object per host, sorted by
 * host: {"host", "status": "ok"|"failed"|"unreachable"|"timed out", "result"
 * (qfleet's own shape of the answer, docs/json.md), "error" and "code" (why
 * not ok, and the gRPC status name when the agent gave one), "reason" and
 * "fields" (the agent's ErrorDetail, null and {} without one)}. The same with
 * or without an inventory.
 */
export function fleetJson<T>(outcomes: readonly HostOutcome<T>[], p: Pick<FleetPrint<T>, 'json' | 'failedInside'> = {}): string {
  return JSON.stringify(
    outcomes.map((raw) => {
      const o = finalOutcome(raw, p);
      return {
        host: o.host.name,
        status: o.status,
        ...(o.result !== undefined ? { result: p.json ? p.json(o.result) : o.result } : {}),
        ...(o.status !== 'ok' ? { error: o.error ?? o.status, code: o.code ?? null, ...reasonJson(o.cause) } : {}),
      };
    }),
  );
}

/** The agent's reason and fields for a host's error, for tools: null and {} when it gave none. */
export function reasonJson(cause: unknown): { reason: string | null; fields: Record<string, string> } {
  const d = errorDetailOf(cause);
  return d ? { reason: d.reason, fields: { ...d.fields } } : { reason: null, fields: {} };
}

/** Did the host's agent answer (with a result, or with an error of its own such as NOT_FOUND)? */
export function answered(o: Pick<HostOutcome<unknown>, 'status' | 'code'>): boolean {
  return o.status === 'ok' || (o.status === 'failed' && o.code !== undefined);
}

/**
 * `3 of 3 hosts answered.`, `2 of 3 hosts answered; not answering: db1 (unreachable: …).`,
 * or, when none did, `No host answered (0 of 2); not answering: …` (never a word about
 * containers: nobody said what is there).
 */
export function hostSummary(outcomes: readonly HostOutcome<unknown>[]): string {
  const silent = outcomes.filter((o) => !answered(o));
  const refused = outcomes.filter((o) => answered(o) && o.status !== 'ok');
  const n = outcomes.length;
  const hosts = `host${n === 1 ? '' : 's'}`;
  const head = silent.length === n && n > 0 ? `No host answered (0 of ${n})` : `${n - silent.length} of ${n} ${hosts} answered`;
  const why = (os: readonly HostOutcome<unknown>[]) => os.map((o) => `${o.host.name} (${problem(o).replace(/\.$/, '')})`).join(', ');
  return `${head}${silent.length ? `; not answering: ${why(silent)}` : ''}${refused.length ? `; failed: ${why(refused)}` : ''}.`;
}

/** The progress line: `2 of 5 hosts done; waiting for host3, host4, host5`. */
export function progressLine(done: number, total: number, waiting: readonly string[]): string {
  const names = waiting.length > 3 ? `${waiting.slice(0, 3).join(', ')} and ${waiting.length - 3} more` : waiting.join(', ');
  return `${done} of ${total} host${total === 1 ? '' : 's'} done${waiting.length ? `; waiting for ${names}` : ''}`;
}

/** One host's lines in the fleet text form: its output (prefixed) on stdout, or its problem on stderr. */
function printHost<T>(ctx: CliContext, o: HostOutcome<T>, p: FleetPrint<T>): void {
  if (o.result !== undefined) {
    const t = p.text(o.result);
    if (t !== undefined) ctx.out(prefixLines(o.host.name, t));
  } else if (!p.summary) ctx.err(`${o.host.name}: ${problem(o)}`);
}

/**
 * Runs a changing command (install, create, config, start, stop, delete) on
 * every targeted host and prints each host's result as it arrives, so a
 * person or a script sees every host that is done even while others are
 * still pending; on a terminal, a progress line on stderr says how many are
 * done and which are awaited. Then one summary line: how many hosts
 * answered. --json stays one document at the end (and quiet); without an
 * inventory, the single-host output is as it always was.
 */
export async function runChanging<T>(
  ctx: CliContext,
  work: (call: HostCall) => Promise<T>,
  p: FleetPrint<T>,
  opts: { timeoutMs: number; hosts?: readonly HostTarget[]; onSettled?: (o: HostOutcome<unknown>) => void },
): Promise<number> {
  const live = ctx.fleet() && !ctx.json;
  const hosts = opts.hosts ?? ctx.hosts();
  const waiting = hosts.map((h) => h.name);
  let done = 0;
  const draw = () => ctx.status(progressLine(done, hosts.length, waiting));
  if (live) draw();
  const outcomes = await runFleet(ctx, work, {
    timeoutMs: opts.timeoutMs,
    hosts,
    onSettled: (o) => {
      opts.onSettled?.(o);
      if (!live) return;
      done++;
      waiting.splice(waiting.indexOf(o.host.name), 1);
      ctx.status('');
      printHost(ctx, o as HostOutcome<T>, p);
      draw();
    },
  });
  if (!live) return printOutcomes(ctx, outcomes, p);
  ctx.status('');
  ctx.out(hostSummary(outcomes));
  return exitCodeOf(outcomes, (r) => Boolean(p.failedInside?.(r)));
}

/**
 * Prints a fan-out's outcomes and returns the exit code. Fleet form (an
 * inventory is in use): each host's lines prefixed with the host on stdout,
 * each host's problem on stderr, or the per-host JSON array. Local form (no
 * inventory, the one local agent): exactly what qfleet printed before the fleet.
 */
export function printOutcomes<T>(ctx: CliContext, outcomes: readonly HostOutcome<T>[], p: FleetPrint<T>): number {
  if (!ctx.fleet() && !ctx.json) {
    const o = outcomes[0];
    if (!o) return EXIT.ok;
    if (o.status !== 'ok' || o.result === undefined) return reportError(ctx, o.cause ?? new Error(o.error), ctx.where(o.host));
    const t = p.text(o.result);
    if (t !== undefined) ctx.out(t);
    return p.failedInside?.(o.result) ? EXIT.failed : EXIT.ok;
  }
  // --json has one shape with or without an inventory (docs/json.md): the local agent is one host among none other.
  if (ctx.json) ctx.out(fleetJson(outcomes, p));
  else {
    for (const o of outcomes) printHost(ctx, o, p);
    if (p.summary) ctx.out(hostSummary(outcomes));
  }
  return exitCodeOf(outcomes, (r) => Boolean(p.failedInside?.(r)));
}
