import * as grpc from '@grpc/grpc-js';
import { agentService } from '../proto/agent-service.js';
import type { AgentServiceClient } from '../proto/gen/qfleet/agent/v1/AgentService.js';

export type { AgentServiceClient };

/** The local agent's socket: --socket, $QFLEET_SOCKET, else the OS default. */
export function defaultSocket(): string {
  return process.env.QFLEET_SOCKET || (process.platform === 'freebsd' ? '/var/run/qfleetd.sock' : '/run/qfleetd.sock');
}

export function connectUnix(socket: string): AgentServiceClient {
  return new (agentService().Client)(`unix:${socket}`, grpc.credentials.createInsecure());
}

/** Promise form of a unary call with a deadline; an abort signal cancels it. */
export function call<Req, Res>(
  client: AgentServiceClient,
  method: (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown,
  req: Req,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const c = method.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as Res))) as
      | grpc.ClientUnaryCall
      | undefined;
    signal?.addEventListener('abort', () => c?.cancel(), { once: true });
  });
}

export function isServiceError(e: unknown): e is grpc.ServiceError {
  return typeof e === 'object' && e !== null && 'code' in e && 'details' in e;
}

/** A request id for the agent's log, so an operator can match a command to its log lines. */
export function requestId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
