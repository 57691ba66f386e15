import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { agentService } from '../../proto/agent-service.js';
import { AGENT_SERVICE_NAME, loadAgentProto, loadHealthDefinition as healthDefinition } from '../../proto/loader.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import { makeHandlers, type HandlerDeps } from './handlers.js';

export interface AgentServer {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
}

export interface AgentServerOptions {
  /**
   * Run before every call on this server (agent service, health, reflection).
   * The TCP server gets authInterceptor (agent/server/auth.ts); the root-only
   * unix socket gets none: whoever can open it is root, an operator.
   */
  readonly interceptors?: readonly grpc.ServerInterceptor[];
}

/** The agent service plus grpc.health.v1 and reflection, on one grpc-js server. */
export function createAgentServer(deps: HandlerDeps, opts: AgentServerOptions = {}): AgentServer {
  const { definition } = loadAgentProto();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, interceptors: [...(opts.interceptors ?? [])] });
  // protobufjs's (de)serializers, as clients use them (proto/agent-service.ts): they encode wire-ready answers without a copy.
  server.addService(agentService().definition as unknown as grpc.ServiceDefinition, makeHandlers(deps));
  const health = new HealthImplementation({ '': 'SERVING', [AGENT_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  // Reflection describes every service served here, health included, so grpcurl and friends see them all.
  new ReflectionService({ ...healthDefinition(), ...definition }).addToServer(server);
  return { server, health };
}

/**
 * Listens on a unix socket only root can use: bound in a private directory,
 * made 0600 and renamed into place. A stale socket (nothing answering) is
 * replaced; a live one is refused.
 */
export async function listenOnUnixSocket(server: grpc.Server, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new FailedPreconditionError(`${path} exists and is not a socket; refusing to replace it.`);
    if (await socketAnswers(path)) throw new FailedPreconditionError(`another agent is already listening on ${path}.`);
    unlinkSync(path);
  }
  // Bound inside a fresh 0700 directory, made 0600, then renamed into place: at no moment can anyone
  // but root reach it, and the process-wide umask is never touched (concurrent binds would race on it).
  const privateDir = mkdtempSync(join(dirname(path), '.qfleetd-bind-'));
  const bound = join(privateDir, 'sock');
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${bound}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    chmodSync(bound, 0o600);
    renameSync(bound, path);
  } finally {
    rmSync(privateDir, { recursive: true, force: true });
  }
}

/** `host:port` or `[v6]:port` of the `listen` setting, checked. */
export function parseListenAddress(listen: string): { host: string; port: number; target: string } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`listen must be HOST:PORT (e.g. 0.0.0.0:7443 or [::]:7443), not ${JSON.stringify(listen)}.`);
  }
  const host = (m[1] ?? m[2])!;
  return { host, port, target: m[1] ? `[${host}]:${port}` : `${host}:${port}` };
}

/**
 * Listens on TCP. Only with TLS credentials that require a client certificate
 * (agent/tls/credentials.ts): there is no plaintext TCP listener. Resolves with
 * the bound port (useful with port 0 in tests).
 */
export async function listenOnTcpTls(server: grpc.Server, listen: string, credentials: grpc.ServerCredentials): Promise<number> {
  if (!credentials._isSecure()) throw new FailedPreconditionError('refusing to listen on TCP without TLS.');
  const { target } = parseListenAddress(listen);
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(target, credentials, (err, port) => (err ? reject(new FailedPreconditionError(`cannot listen on ${listen}: ${err.message}`)) : resolve(port))),
  );
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(false), 1000).unref();
  });
}
