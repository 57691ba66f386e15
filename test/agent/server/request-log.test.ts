import type * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../agent/engine/clock.js';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { jsonLogger } from '../../../agent/log.js';
import { createAgentServer, listenOnUnixSocket } from '../../../agent/server/server.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { agentClient, unary } from '../../support/grpc.js';
import { MemoryHost } from '../../support/memory-host.js';

describe('agent server: every call logs as one request', () => {
  let dir: string;
  let server: grpc.Server;
  let client: AgentServiceClient;
  const log = () => readFileSync(join(dir, 'agent.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  let logger: ReturnType<typeof jsonLogger>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-reqlog-'));
    logger = jsonLogger({ file: join(dir, 'agent.log'), stderr: false });
    const host = new MemoryHost(join(dir, 'root'));
    const engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: logger, runner: new FakeRunner() });
    await engine.install({ method: 'directory', source: '/base', mirror: '' }, false, () => undefined);
    ({ server } = createAgentServer({ engine, log: logger, agentVersion: '9.9.9' }));
    await listenOnUnixSocket(server, join(dir, 'agent.sock'));
    client = agentClient(join(dir, 'agent.sock'));
  });
  after(() => {
    client?.close();
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the engine\'s lines the caller\'s request id and the RPC', async () => {
    await unary(client, 'Create', { name: 'web1', requestId: 'req-from-cli' });
    await logger.flushed?.();
    const line = log().find((l) => l.msg === 'created container' && l.container === 'web1');
    assert.equal(line?.requestId, 'req-from-cli');
    assert.equal(line?.rpc, 'Create');
  });

  it('makes up a request id for a call without one, distinct per call', async () => {
    await unary(client, 'Create', { name: 'web2' });
    await unary(client, 'Create', { name: 'web3' });
    await logger.flushed?.();
    const ids = ['web2', 'web3'].map((n) => log().find((l) => l.msg === 'created container' && l.container === n)?.requestId);
    for (const id of ids) assert.match(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-/);
    assert.notEqual(ids[0], ids[1]);
  });
});
