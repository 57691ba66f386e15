import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { isIP } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import { unbracket } from '../fleet/host-target.js';

/** How to reach one agent's health service over mutual TLS. */
export interface MtlsEndpoint {
  readonly address: string;
  readonly port: number;
  /** Names the agent's certificate must all carry: its inventory name and the address dialled. */
  readonly certNames: readonly string[];
  readonly caPem: string | Buffer;
  readonly clientCertPem: string | Buffer;
  readonly clientKeyPem: string | Buffer;
}

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

export function mtlsHealthClient(ep: MtlsEndpoint): grpc.Client {
  const creds = grpc.credentials.createSsl(Buffer.from(ep.caPem), Buffer.from(ep.clientKeyPem), Buffer.from(ep.clientCertPem), {
    checkServerIdentity: (_dialled, cert) => {
      for (const n of ep.certNames) {
        const e = checkServerIdentity(n, cert);
        if (e) return new Error(`the agent's certificate does not name ${n}: ${e.message}`);
      }
      return undefined;
    },
  });
  const a = unbracket(ep.address);
  // SNI carries a name (an IP there is not allowed, RFC 6066); the check above covers every name.
  const sni = ep.certNames.find((n) => isIP(n) === 0);
  return new HealthClient(isIP(a) === 6 ? `[${a}]:${ep.port}` : `${a}:${ep.port}`, creds, sni ? { 'grpc.ssl_target_name_override': sni } : {});
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
