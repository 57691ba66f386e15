import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import type { HostTarget } from '../fleet/host-target.js';
import { fleetTlsContext, mtlsChannel } from './mtls.js';

const HealthClient = grpc.makeGenericClientConstructor(healthService, 'Health');

type CheckFn = (req: { service: string }, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { status: string | number }) => void) => void;

/** One grpc.health.v1 Check; resolves with the status name (SERVING, NOT_SERVING, ...). */
export function healthCheck(client: grpc.Client, service = '', timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as { check: CheckFn }).check({ service }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) => {
      if (e) return reject(e);
      const s = r?.status;
      resolve(typeof s === 'number' ? (['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'][s] ?? String(s)) : String(s));
    });
  });
}

/** The bootstrap probe's client: the same mutual TLS and identity rule as every fleet command (mtls.ts). */
export function mtlsHealthClient(host: Pick<HostTarget, 'name' | 'address' | 'agentPort'>, pkiDir: string): grpc.Client {
  const ch = mtlsChannel(fleetTlsContext(pkiDir)(), host);
  return new HealthClient(ch.target, ch.credentials, ch.options);
}

export function unixHealthClient(socket: string): grpc.Client {
  return new HealthClient(`unix:${socket}`, grpc.credentials.createInsecure());
}

/**
 * Polls health until SERVING, bounded by `deadlineMs`; rejects with the last
 * error (a TLS or connection error names what went wrong).
 */
export async function waitServing(client: grpc.Client, deadlineMs: number, intervalMs = 250): Promise<void> {
  const end = Date.now() + deadlineMs;
  let last = 'no answer';
  for (let i = 0; i < 10_000 && Date.now() < end; i++) {
    try {
      const s = await healthCheck(client, '', Math.max(500, Math.min(3000, end - Date.now())));
      if (s === 'SERVING') return;
      last = `health answered ${s}`;
    } catch (e) {
      last = (e as grpc.ServiceError).details || (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`agent not SERVING after ${Math.round(deadlineMs / 1000)} s: ${last}`);
}
