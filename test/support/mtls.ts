import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { Engine } from '../../agent/engine/engine.js';
import { StateStore } from '../../agent/engine/state-store.js';
import { systemClock } from '../../agent/engine/clock.js';
import { silentLogger } from '../../agent/log.js';
import { authInterceptor, ClientAuthorizer } from '../../agent/server/auth.js';
import { createAgentServer, listenOnTcpTls } from '../../agent/server/server.js';
import { loadServerTls } from '../../agent/tls/credentials.js';
import { makeAgentCsr } from '../../agent/tls/csr.js';
import { initPki, signAgentCsr } from '../../controller/pki/index.js';
import { loadAgentProto } from '../../proto/loader.js';
import { FakeRunner } from './fake-runner.js';
import { MemoryHost } from './memory-host.js';

/** Every method definition a qfleetd server can serve, by path: the agent service, health, reflection v1 and v1alpha. */
export function knownMethodDefinitions(): Map<string, grpc.MethodDefinition<object, object>> {
  const require = createRequire(import.meta.url);
  const reflectionDir = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto');
  const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
  const health = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, opts)) as any;
  const r1 = grpc.loadPackageDefinition(protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { ...opts, includeDirs: [reflectionDir] })) as any;
  const r1a = grpc.loadPackageDefinition(protoLoader.loadSync('grpc/reflection/v1alpha/reflection.proto', { ...opts, includeDirs: [reflectionDir] })) as any;
  const services: grpc.ServiceDefinition[] = [
    loadAgentProto().proto.qfleet.agent.v1.AgentService.service,
    health.grpc.health.v1.Health.service,
    r1.grpc.reflection.v1.ServerReflection.service,
    r1a.grpc.reflection.v1alpha.ServerReflection.service,
  ];
  const out = new Map<string, grpc.MethodDefinition<object, object>>();
  for (const s of services) for (const def of Object.values(s)) out.set(def.path, def as grpc.MethodDefinition<object, object>);
  return out;
}

/** The paths a grpc-js server actually registered (its private handler table, checked to exist). */
export function servedPaths(server: grpc.Server): string[] {
  const handlers = (server as unknown as { handlers?: unknown }).handlers;
  if (!(handlers instanceof Map)) throw new Error('grpc-js no longer keeps its handlers in server.handlers; update servedPaths');
  return [...handlers.keys()].sort();
}

export interface Outcome {
  readonly code: grpc.status;
  readonly details: string;
}

/**
 * Calls any method by its definition, whatever its streaming kind, and
 * resolves with how it ended: OK as soon as a response message arrives (a
 * server stream such as health Watch never ends by itself), else the status.
 */
export function invoke(client: grpc.Client, def: grpc.MethodDefinition<object, object>, req: object, timeoutMs = 5000): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (code: grpc.status, details = '') => {
      if (settled) return;
      settled = true;
      resolve({ code, details });
    };
    const meta = new grpc.Metadata();
    const opts = { deadline: Date.now() + timeoutMs };
    const cb = (err: grpc.ServiceError | null) => (err ? done(err.code, err.details) : done(grpc.status.OK));
    const { path, requestSerialize: ser, responseDeserialize: de } = def;
    if (!def.requestStream && !def.responseStream) {
      client.makeUnaryRequest(path, ser, de, req, meta, opts, cb);
      return;
    }
    if (def.requestStream && !def.responseStream) {
      const call = client.makeClientStreamRequest(path, ser, de, meta, opts, cb);
      call.write(req);
      call.end();
      return;
    }
    const call = def.requestStream ? client.makeBidiStreamRequest(path, ser, de, meta, opts) : client.makeServerStreamRequest(path, ser, de, req, meta, opts);
    call.on('data', () => {
      done(grpc.status.OK);
      call.cancel();
    });
    call.on('error', (e: grpc.ServiceError) => done(e.code, e.details));
    call.on('status', (s: grpc.StatusObject) => done(s.code, s.details));
    if (def.requestStream) {
      const duplex = call as grpc.ClientDuplexStream<object, object>;
      duplex.write(req);
      duplex.end();
    }
  });
}

export interface TlsAgentFixture {
  readonly dir: string;
  readonly pkiDir: string;
  readonly tlsDir: string;
  readonly server: grpc.Server;
  readonly port: number;
  readonly host: MemoryHost;
  readonly caPem: string;
  close(): void;
}

/**
 * A real agent gRPC server in process on 127.0.0.1 (a free port) with mutual
 * TLS, set up as bootstrap would: `pki init` on the controller side, the
 * agent's key and CSR made in its own directory, the CSR signed for
 * [agentName, 127.0.0.1].
 */
export async function startTlsAgent(agentName = 'agent1', opts: { requireClientCert?: boolean } = {}): Promise<TlsAgentFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'qf-mtls-'));
  const pkiDir = join(dir, 'controller', 'pki');
  await initPki(pkiDir);
  const tlsDir = join(dir, 'agent', 'tls');
  const { csrPem } = await makeAgentCsr({ dir: tlsDir, name: agentName, ips: ['127.0.0.1'] });
  const signed = await signAgentCsr(pkiDir, csrPem, [agentName, '127.0.0.1']);
  writeFileSync(join(tlsDir, 'agent.crt'), signed.certPem);
  writeFileSync(join(tlsDir, 'ca.crt'), signed.caPem);
  const tls = loadServerTls({ cert: join(tlsDir, 'agent.crt'), key: join(tlsDir, 'agent.key'), ca: join(tlsDir, 'ca.crt') });
  const host = new MemoryHost(join(dir, 'root'));
  mkdirSync(join(dir, 'state'), { recursive: true });
  const engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 10, runner: new FakeRunner() });
  const { server } = createAgentServer(
    { engine, log: silentLogger, agentVersion: '9.9.9' },
    { interceptors: [authInterceptor(new ClientAuthorizer(tls.caPem), silentLogger)] },
  );
  // requireClientCert: false is a deliberately misconfigured listener, to prove the interceptor checks on its own.
  const credentials =
    opts.requireClientCert === false
      ? grpc.ServerCredentials.createSsl(Buffer.from(tls.caPem), [{ private_key: readFileSync(join(tlsDir, 'agent.key')), cert_chain: Buffer.from(signed.certPem) }], false)
      : tls.credentials;
  const port = await listenOnTcpTls(server, '127.0.0.1:0', credentials);
  return { dir, pkiDir, tlsDir, server, port, host, caPem: tls.caPem, close: () => server.forceShutdown() };
}
