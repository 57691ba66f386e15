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
  const outcomes = await fanOut(hosts, work, { factory, forks: ctx.forks, timeoutMs: opts.timeoutMs, clock: ctx.clock, ...(opts.onSettled ? { onSettled: opts.onSettled } : {}) });
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
 * --json in fleet form: ONE JSON document, an array with one object per host,
 * sorted by host: {"host", "status": "ok"|"failed"|"unreachable"|"timed out",
 * "result" (the agent's answer, when it answered), "error" (why not ok)}.
 */
export function fleetJson<T>(outcomes: readonly HostOutcome<T>[], p: Pick<FleetPrint<T>, 'json' | 'failedInside'> = {}): string {
  return JSON.stringify(
    outcomes.map((raw) => {
      const o = finalOutcome(raw, p);
      return {
        host: o.host.name,
        status: o.status,
        ...(o.result !== undefined ? { result: p.json ? p.json(o.result) : o.result } : {}),
        ...(o.status !== 'ok' ? { error: o.error ?? o.status } : {}),
      };
    }),
  );
}

/** `3 of 3 hosts answered.` or `2 of 3 hosts answered; not answering: db1 (unreachable: …).` */
export function hostSummary(outcomes: readonly HostOutcome<unknown>[]): string {
  const silent = outcomes.filter((o) => o.status !== 'ok');
  const n = outcomes.length;
  const head = `${n - silent.length} of ${n} host${n === 1 ? '' : 's'} answered`;
  if (!silent.length) return `${head}.`;
  return `${head}; not answering: ${silent.map((o) => `${o.host.name} (${problem(o).replace(/\.$/, '')})`).join(', ')}.`;
}

/**
 * Prints a fan-out's outcomes and returns the exit code. Fleet form (an
 * inventory is in use): each host's lines prefixed with the host on stdout,
 * each host's problem on stderr, or the per-host JSON array. Local form (no
 * inventory, the one local agent): exactly what qfleet printed before the fleet.
 */
export function printOutcomes<T>(ctx: CliContext, outcomes: readonly HostOutcome<T>[], p: FleetPrint<T>): number {
  if (!ctx.fleet()) {
    const o = outcomes[0];
    if (!o) return EXIT.ok;
    if (o.status !== 'ok' || o.result === undefined) return reportError(ctx, o.cause ?? new Error(o.error), ctx.where(o.host));
    if (ctx.json) ctx.out(JSON.stringify(p.json ? p.json(o.result) : o.result));
    else {
      const t = p.text(o.result);
      if (t !== undefined) ctx.out(t);
    }
    return p.failedInside?.(o.result) ? EXIT.failed : EXIT.ok;
  }
  if (ctx.json) ctx.out(fleetJson(outcomes, p));
  else {
    for (const o of outcomes) {
      if (o.result !== undefined) {
        const t = p.text(o.result);
        if (t !== undefined) ctx.out(prefixLines(o.host.name, t));
      } else if (!p.summary) ctx.err(`${o.host.name}: ${problem(o)}`);
    }
    if (p.summary) ctx.out(hostSummary(outcomes));
  }
  return exitCodeOf(outcomes, (r) => Boolean(p.failedInside?.(r)));
}
