import * as grpc from '@grpc/grpc-js';
import type { AgentServiceClient } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ClientFactory } from './client-factory.js';
import { systemClock, type Clock } from './clock.js';
import type { HostTarget } from './host-target.js';

/**
 * Fan-out: one client per host, every host in parallel up to `forks` at a
 * time, each with its own deadline, so no host holds up another. Each host
 * ends as exactly one HostOutcome:
 *
 * - `ok`: the work resolved (it may still carry failed containers: see `failed`);
 * - `unreachable`: gRPC UNAVAILABLE (nothing listening, connection refused, TLS refused);
 * - `timed out`: gRPC DEADLINE_EXCEEDED, or no answer when the host's deadline fell;
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

/** What the work for one host gets. */
export interface HostCall {
  readonly host: HostTarget;
  readonly client: AgentServiceClient;
  /** Milliseconds the host has left: pass as the gRPC deadline (Date.now() + timeoutMs). */
  readonly timeoutMs: number;
  /** Aborted when the host's deadline falls: cancel streams and calls on it. */
  readonly signal: AbortSignal;
}

export interface FanoutOptions {
  readonly factory: ClientFactory;
  /** How many hosts at once (at least 1). */
  readonly forks: number;
  /** Per-host deadline, from the moment the host's turn begins. */
  readonly timeoutMs: number;
  readonly clock?: Clock;
  /** Called as each host settles, e.g. for progress lines. */
  readonly onSettled?: (o: HostOutcome<unknown>) => void;
}

export const DEFAULT_FORKS = 50;

export class HostTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${formatSeconds(timeoutMs)}`);
  }
}

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}

function isServiceError(e: unknown): e is grpc.ServiceError {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number' && 'details' in e;
}

/** Classifies an error the work threw into the host's status and reason. */
export function classify(e: unknown, timeoutMs: number): Pick<HostOutcome<never>, 'status' | 'error' | 'code'> {
  if (e instanceof HostTimeoutError) return { status: 'timed out', error: e.message };
  if (isServiceError(e)) {
    const code = grpc.status[e.code] ?? String(e.code);
    // grpc-js ends its connection errors with an empty "Resolution note: ".
    if (e.code === grpc.status.UNAVAILABLE) return { status: 'unreachable', error: e.details.replace(/\s*Resolution note:\s*$/, '').trim() || 'unavailable', code };
    if (e.code === grpc.status.DEADLINE_EXCEEDED) return { status: 'timed out', error: `no answer within ${formatSeconds(timeoutMs)}`, code };
    return { status: 'failed', error: e.details || code, code };
  }
  return { status: 'failed', error: e instanceof Error ? e.message : String(e) };
}

/** Runs `work` on every host; resolves with one outcome per host, in the hosts' order. Never rejects for a host's failure. */
export async function fanOut<T>(hosts: readonly HostTarget[], work: (call: HostCall) => Promise<T>, opts: FanoutOptions): Promise<HostOutcome<T>[]> {
  const clock = opts.clock ?? systemClock;
  const forks = Math.max(1, Math.floor(opts.forks));
  const outcomes: HostOutcome<T>[] = new Array(hosts.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= hosts.length) return;
      const host = hosts[i]!;
      outcomes[i] = await runOne(host, work, opts.factory, opts.timeoutMs, clock);
      opts.onSettled?.(outcomes[i] as HostOutcome<unknown>);
    }
  };
  await Promise.all(Array.from({ length: Math.min(forks, hosts.length) }, worker));
  return outcomes;
}

async function runOne<T>(host: HostTarget, work: (call: HostCall) => Promise<T>, factory: ClientFactory, timeoutMs: number, clock: Clock): Promise<HostOutcome<T>> {
  let client: AgentServiceClient;
  try {
    client = factory(host);
  } catch (e) {
    return { host, status: 'failed', error: `cannot connect: ${e instanceof Error ? e.message : String(e)}`, cause: e };
  }
  const abort = new AbortController();
  let timer: unknown;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new HostTimeoutError(timeoutMs)), timeoutMs);
  });
  try {
    const result = await Promise.race([work({ host, client, timeoutMs, signal: abort.signal }), deadline]);
    return { host, status: 'ok', result };
  } catch (e) {
    // Only a host that did not finish can have calls or streams left to cancel
    // (aborting costs a DOMException with a stack: measurable at hundreds of hosts).
    abort.abort();
    return { host, ...classify(e, timeoutMs), cause: e };
  } finally {
    clock.clearTimeout(timer);
    try {
      client.close();
    } catch { /* already closed */ }
  }
}
