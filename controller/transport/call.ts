import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { AgentServiceClient, AgentServiceDefinition } from '../../proto/gen/qfleet/agent/v1/AgentService.js';

export type { AgentServiceClient };

/**
 * The agent's unary methods, by name. Install and Exec stream and are opened
 * on the client directly; naming them here would make `call` accept a method
 * it cannot make.
 */
export type UnaryMethod = Exclude<DeclaredMethod, 'Install' | 'Exec'>;

/** The methods the service declares (grpc.ServiceDefinition's string index signature left out: it would admit any name). */
type DeclaredMethod = keyof { [K in keyof AgentServiceDefinition as string extends K ? never : K]: true } & string;

/* eslint-disable @typescript-eslint/no-explicit-any -- `any` in an infer pattern only: MethodDefinition's (de)serializers make it invariant. */

/** What a unary method takes (the generated input type: every field optional, none unknown). */
export type RequestOf<M extends UnaryMethod> = AgentServiceDefinition[M] extends MethodDefinition<infer Req, any, any, any> ? Req : never;

/** What a unary method answers (the generated output type: defaults filled in, enums as names). */
export type ResponseOf<M extends UnaryMethod> = AgentServiceDefinition[M] extends MethodDefinition<any, any, any, infer Res> ? Res : never;

type Callback<Res> = (err: grpc.ServiceError | null, res?: Res) => void;
type UnaryFn<Req, Res> = (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<Res>) => grpc.ClientUnaryCall;

/**
 * One unary call by method name, with a deadline; an abort signal cancels it.
 * Request and response types come from the service definition, so a request
 * with a misspelled or unknown field does not compile
 * (test/types/call-rejects-unknown-field.ts holds that).
 */
export function call<M extends UnaryMethod>(
  client: AgentServiceClient,
  method: M,
  req: RequestOf<M>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ResponseOf<M>> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<UnaryMethod, unknown>)[method] as UnaryFn<RequestOf<M>, ResponseOf<M>>;
    const c = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as ResponseOf<M>)));
    signal?.addEventListener('abort', () => c?.cancel(), { once: true });
  });
}

/** A failed call's error as grpc-js (and every transport here) reports it: a code and the agent's words. */
export function isServiceError(e: unknown): e is grpc.ServiceError {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number' && 'details' in e;
}
