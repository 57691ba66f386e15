import * as grpc from '@grpc/grpc-js';
import { isServiceError } from '../transport/call.js';
import { errorDetailOf } from '../agent-error.js';
import type { AgentServiceClient } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import { isIP } from 'node:net';
import type { Dial } from '../transport/factory.js';
import { systemClock, type Clock } from './clock.js';
import { unbracket, type HostTarget } from './host-target.js';
import { NameError, preferredAddress, type NameResolver } from './resolve.js';

/**
 * Fan-out: one client per host, every host in parallel up to `forks` at a
 * time, all under ONE deadline (--timeout) counted from the start of the
 * fan-out, so that the deadline bounds the command, not each host: a host
 * still resolving its name, connecting or waiting for an answer when it falls
 * is abandoned (its calls cancelled), and a host whose turn has not come by
 * then is not contacted. No host holds up another. Each host ends as exactly
 * one HostOutcome:
 *
 * - `ok`: the work resolved (it may still carry failed containers: see `failed`);
 * - `unreachable`: gRPC UNAVAILABLE (nothing listening, connection refused, TLS refused), or its name did not resolve;
 * - `timed out`: gRPC DEADLINE_EXCEEDED, or no answer when the deadline fell;
 * - `failed`: anything else (the agent's error, or no client could be made).
 */
export type HostStatus = 'ok' | 'failed' | 'unreachable' | 'timed out';

export interface HostOutcome<T> {
  readonly host: HostTarget;
  readonly status: HostStatus;
  /** The work's result when the agent answered. */
  readonly result?: T;
  /** Why the host is not ok, as one line. */
  readonly error?: string;
  /** The gRPC status name of the error (NOT_FOUND, INVALID_ARGUMENT, ...), when there was one. */
  readonly code?: string;
  /** The original error, for the single-host messages that existed before the fleet. */
  readonly cause?: unknown;
}

/** What the work for one host gets: its client is an agent's, or whatever the factory makes (bootstrap: an SSH connection). */
export interface HostCall<C = AgentServiceClient> {
  readonly host: HostTarget;
  readonly client: C;
  /** Milliseconds the host has left: pass as the gRPC deadline (Date.now() + timeoutMs). */
  readonly timeoutMs: number;
  /** Aborted when the host's deadline falls: cancel streams and calls on it. */
  readonly signal: AbortSignal;
}

/** What a fan-out closes when the host ends, early (its deadline fell) or not. */
export interface Closable {
  close(): void;
}

export interface FanoutOptions<C extends Closable = AgentServiceClient> {
  /** Makes the host's client (a ClientFactory for agents): closed when the host ends. */
  readonly factory: (host: HostTarget, dial?: Dial) => C;
  /** How many hosts at once (at least 1). */
  readonly forks: number;
  /** The deadline of the whole fan-out, from its start: every host has ended by then. */
  readonly timeoutMs: number;
  readonly clock?: Clock;
  /** Resolves the names of mutual-TLS hosts (fleet/resolve.ts); without it the factory gets the name as it is. */
  readonly resolver?: NameResolver;
  /** Called as each host settles, e.g. for progress lines. */
  readonly onSettled?: (o: HostOutcome<unknown>) => void;
}

export const DEFAULT_FORKS = 50;

/**
 * A host's failure that already knows its status: work that speaks no gRPC
 * (bootstrap over SSH) says so when a host cannot be reached or timed out.
 */
export class HostError extends Error {
  constructor(message: string, readonly status: Exclude<HostStatus, 'ok'>, options?: ErrorOptions) {
    super(message, options);
  }
}

export class HostTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${formatSeconds(timeoutMs)}`);
  }
}

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}

/** Classifies an error the work threw into the host's status and reason. */
export function classify(e: unknown, timeoutMs: number): Pick<HostOutcome<never>, 'status' | 'error' | 'code'> {
  if (e instanceof HostTimeoutError) return { status: 'timed out', error: e.message };
  if (e instanceof HostError) return { status: e.status, error: e.message };
  if (isServiceError(e)) {
    const code = grpc.status[e.code] ?? String(e.code);
    // An agent that answered UNAVAILABLE in its own words (shutting down) was reached: its
    // detail says so, and that host failed; without one, the connection did not get through.
    // grpc-js ends its connection errors with an empty "Resolution note: ".
    if (e.code === grpc.status.UNAVAILABLE && !errorDetailOf(e)) return { status: 'unreachable', error: e.details.replace(/\s*Resolution note:\s*$/, '').trim() || 'unavailable', code };
    if (e.code === grpc.status.DEADLINE_EXCEEDED) return { status: 'timed out', error: `no answer within ${formatSeconds(timeoutMs)}`, code };
    return { status: 'failed', error: e.details || code, code };
  }
  return { status: 'failed', error: e instanceof Error ? e.message : String(e) };
}

/** Runs `work` on every host; resolves with one outcome per host, in the hosts' order. Never rejects for a host's failure. */
export async function fanOut<T, C extends Closable = AgentServiceClient>(
  hosts: readonly HostTarget[],
  work: (call: HostCall<C>) => Promise<T>,
  opts: FanoutOptions<C>,
): Promise<HostOutcome<T>[]> {
  const clock = opts.clock ?? systemClock;
  const forks = Math.max(1, Math.floor(opts.forks));
  const outcomes: HostOutcome<T>[] = new Array(hosts.length);
  const deadlineAt = clock.now() + opts.timeoutMs;
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= hosts.length) return;
      const host = hosts[i]!;
      outcomes[i] = await runOne(host, work, opts, deadlineAt, clock);
      opts.onSettled?.(outcomes[i] as HostOutcome<unknown>);
    }
  };
  await Promise.all(Array.from({ length: Math.min(forks, hosts.length) }, worker));
  return outcomes;
}

/** A client could not be made for the host (no PKI, ...): the host fails with this reason. */
class ClientError extends Error {}

/** Does this host's name need resolving before it is dialled? */
export function needsResolving(host: HostTarget): boolean {
  return host.connection !== 'local' && isIP(unbracket(host.address)) === 0;
}

async function runOne<T, C extends Closable>(host: HostTarget, work: (call: HostCall<C>) => Promise<T>, opts: FanoutOptions<C>, deadlineAt: number, clock: Clock): Promise<HostOutcome<T>> {
  const total = opts.timeoutMs;
  const timeoutMs = deadlineAt - clock.now();
  if (timeoutMs <= 0) {
    return { host, status: 'timed out', error: `not contacted: the ${formatSeconds(total)} deadline fell before its turn (--forks ${opts.forks})` };
  }
  let client: C | undefined;
  const abort = new AbortController();
  let timer: unknown;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new HostTimeoutError(total)), timeoutMs);
  });
  let resolving = false;
  const connectAndWork = async (): Promise<T> => {
    let dial: Dial | undefined;
    if (opts.resolver && needsResolving(host)) {
      try {
        resolving = true;
        dial = { ip: preferredAddress(await opts.resolver.lookup(host.address, abort.signal)) };
        resolving = false;
      } catch (e) {
        if (e instanceof NameError && abort.signal.aborted) throw e;
        throw Object.assign(new Error(`cannot resolve ${host.address}: ${(e as Error).message}`), { code: grpc.status.UNAVAILABLE, details: `cannot resolve ${host.address}: ${(e as Error).message}` });
      }
    }
    // Answered just as the deadline fell: make no client that nobody would close.
    if (abort.signal.aborted) throw new HostTimeoutError(total);
    try {
      client = opts.factory(host, dial);
    } catch (e) {
      throw new ClientError(`cannot connect: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return work({ host, client, timeoutMs: deadlineAt - clock.now(), signal: abort.signal });
  };
  try {
    const result = await Promise.race([connectAndWork(), deadline]);
    return { host, status: 'ok', result };
  } catch (e) {
    // Only a host that did not finish can have calls or streams left to cancel
    // (aborting costs a DOMException with a stack: measurable at hundreds of hosts).
    abort.abort();
    if (e instanceof ClientError) return { host, status: 'failed', error: e.message, cause: e.cause };
    if (e instanceof HostTimeoutError && resolving) return { host, status: 'timed out', error: `${host.address} did not resolve within ${formatSeconds(total)}`, cause: e };
    return { host, ...classify(e, total), cause: e };
  } finally {
    clock.clearTimeout(timer);
    try {
      (client as C | undefined)?.close();
    } catch { /* already closed */ }
  }
}
