import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { AGENT_SERVICE_NAME, loadAgentProto } from '../../proto/loader.js';
import { FailedPreconditionError } from '../errors.js';
import { makeHandlers, type HandlerDeps } from './handlers.js';

export interface AgentServer {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
}

/** The agent service plus grpc.health.v1 and reflection, on one grpc-js server. */
export function createAgentServer(deps: HandlerDeps): AgentServer {
  const { definition, proto } = loadAgentProto();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  server.addService(proto.qfleet.agent.v1.AgentService.service, makeHandlers(deps));
  const health = new HealthImplementation({ '': 'SERVING', [AGENT_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(definition).addToServer(server);
  return { server, health };
}

/**
 * Listens on a unix socket only root can use: created under umask 077 and
 * chmod 0600 at once, in a directory that is not group/world writable. A stale
 * socket (nothing answering) is replaced; a live one is refused.
 */
export async function listenOnUnixSocket(server: grpc.Server, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new FailedPreconditionError(`${path} exists and is not a socket; refusing to replace it.`);
    if (await socketAnswers(path)) throw new FailedPreconditionError(`another agent is already listening on ${path}.`);
    unlinkSync(path);
  }
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    process.umask(previous);
  }
  chmodSync(path, 0o600);
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
