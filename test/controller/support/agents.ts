import * as grpc from '@grpc/grpc-js';
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { systemClock } from '../../../agent/engine/clock.js';
import { silentLogger } from '../../../agent/log.js';
import { createAgentServer, listenOnUnixSocket } from '../../../agent/server/server.js';
import { loadAgentProto } from '../../../proto/loader.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { MemoryHost } from '../../support/memory-host.js';
import { agentClient, unary } from '../../support/grpc.js';
import { CLI_MAIN } from '../../support/agent-process.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';

/** A real agent (server, engine) on a temporary unix socket, over a host modelled in memory. */
export class InProcessAgent {
  readonly socket: string;
  readonly host: MemoryHost;
  readonly client: AgentServiceClient;
  private constructor(readonly dir: string, private readonly server: grpc.Server) {
    this.socket = join(dir, 'run/qfleetd.sock');
    this.host = undefined as unknown as MemoryHost;
    this.client = undefined as unknown as AgentServiceClient;
  }

  static async start(dir: string): Promise<InProcessAgent> {
    mkdirSync(dir, { recursive: true });
    const host = new MemoryHost(join(dir, 'root'));
    const engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 10, runner: new FakeRunner() });
    const { server } = createAgentServer({ engine, log: silentLogger, agentVersion: '9.9.9' });
    const a = new InProcessAgent(dir, server);
    await listenOnUnixSocket(server, a.socket);
    Object.assign(a, { host, client: agentClient(a.socket) });
    await new Promise<void>((resolve, reject) => {
      const s = a.client.Install({ source: dir, method: 'INSTALL_METHOD_DIRECTORY' });
      s.on('data', () => undefined);
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    return a;
  }

  async create(...names: string[]): Promise<void> {
    for (const name of names) await unary(this.client, 'Create', { name });
  }

  stop(): void {
    this.client.close();
    this.server.forceShutdown();
  }
}

/** A server that speaks the agent API but never answers a unary call: a host that hangs. */
export async function startHangingAgent(socket: string): Promise<grpc.Server> {
  const { proto } = loadAgentProto();
  const server = new grpc.Server();
  const never = () => undefined;
  const handlers = Object.fromEntries(Object.keys(proto.qfleet.agent.v1.AgentService.service).map((m) => [m, never]));
  server.addService(proto.qfleet.agent.v1.AgentService.service, handlers);
  mkdirSync(join(socket, '..'), { recursive: true });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

/** Writes an inventory (test agents here are local connections: qfleet_connection: local and qfleet_agent_socket_path). */
export function writeInventory(file: string, text: string): string {
  writeFileSync(file, text);
  return file;
}

/** Runs the real qfleet CLI (a new process). */
export function qfleet(args: readonly string[], opts: { env?: Record<string, string>; input?: string } = {}) {
  return execa('node', [CLI_MAIN, ...args], {
    reject: false,
    timeout: 60_000,
    env: { QFLEET_INVENTORY: '', ...opts.env },
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}
