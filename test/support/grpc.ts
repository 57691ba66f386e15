import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { loadAgentProto } from '../../proto/loader.js';
import type { AgentServiceClient } from '../../proto/gen/qfleet/agent/v1/AgentService.js';

export function agentClient(socket: string): AgentServiceClient {
  const { proto } = loadAgentProto();
  return new proto.qfleet.agent.v1.AgentService(`unix:${socket}`, grpc.credentials.createInsecure());
}

/** Calls a unary method by name and resolves with its response (rejects with the ServiceError). */
export function unary<Res = any>(client: grpc.Client, method: string, req: object, timeoutMs = 60_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Function>)[method]!;
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: Res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** Resolves with the status code a call failed with (fails the test if it succeeded). */
export async function codeOf(p: Promise<unknown>): Promise<grpc.status> {
  try {
    await p;
  } catch (e) {
    return (e as grpc.ServiceError).code;
  }
  throw new Error('expected the call to fail');
}

export function healthClient(target: string, creds = grpc.credentials.createInsecure()): grpc.Client {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.grpc.health.v1.Health(target, creds);
}

/** The reflection service's list of services, through a real reflection stream. */
export function listServicesByReflection(target: string, creds = grpc.credentials.createInsecure()): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [dir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(target, creds);
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (m: any) => {
      resolve((m.list_services_response?.service ?? []).map((s: any) => s.name));
      call.end();
    });
    call.on('error', reject);
    call.write({ list_services: '' });
  });
}
