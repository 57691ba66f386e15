import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { systemClock } from '../../../agent/engine/clock.js';
import { silentLogger } from '../../../agent/log.js';
import { createAgentServer, listenOnUnixSocket } from '../../../agent/server/server.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { MemoryHost } from '../../support/memory-host.js';
import { agentClient, codeOf, healthClient, listServicesByReflection, unary } from '../../support/grpc.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';

describe('agent gRPC server (in process, on a temporary unix socket)', () => {
  let dir: string;
  let socket: string;
  let server: grpc.Server;
  let client: AgentServiceClient;
  let host: MemoryHost;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-server-'));
    socket = join(dir, 'run', 'qfleetd.sock');
    host = new MemoryHost(join(dir, 'root'));
    const engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 10 });
    ({ server } = createAgentServer({ engine, runner: new FakeRunner(), log: silentLogger, agentVersion: '9.9.9' }));
    await listenOnUnixSocket(server, socket);
    client = agentClient(socket);
  });
  after(() => {
    client?.close();
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on a socket only root can use (mode 0600)', () => {
    const st = statSync(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('binds several sockets at once without touching the process umask, each 0600', async () => {
    const before = process.umask();
    const servers = [new grpc.Server(), new grpc.Server(), new grpc.Server()];
    const paths = servers.map((_, i) => join(dir, `many/s${i}.sock`));
    await Promise.all(servers.map((s, i) => listenOnUnixSocket(s, paths[i]!)));
    assert.equal(process.umask(), before);
    for (const p of paths) assert.equal(statSync(p).mode & 0o777, 0o600);
    servers.forEach((s) => s.forceShutdown());
  });

  it('refuses to start a second agent on a live socket', async () => {
    const other = new grpc.Server();
    await assert.rejects(listenOnUnixSocket(other, socket), /already listening/);
    other.forceShutdown();
  });

  it('answers health checks with SERVING, for the server and for the agent service', async () => {
    const h = healthClient(`unix:${socket}`);
    for (const service of ['', 'qfleet.agent.v1.AgentService']) {
      const res = await unary<{ status: string }>(h, 'check', { service });
      assert.equal(res.status, 'SERVING');
    }
    h.close();
  });

  it('serves reflection describing the services it serves: the agent service and health', async () => {
    const names = await listServicesByReflection(`unix:${socket}`);
    for (const n of ['qfleet.agent.v1.AgentService', 'grpc.health.v1.Health']) {
      assert.ok(names.includes(n), `${n} missing from ${names.join(',')}`);
    }
  });

  it('reports version, driver and capabilities', async () => {
    const v = await unary(client, 'Version', {});
    assert.equal(v.agentVersion, '9.9.9');
    assert.equal(v.driver, 'linux');
    assert.equal(v.apiRevision, 1);
    assert.deepEqual(v.capabilities.installMethods, ['INSTALL_METHOD_DIRECTORY', 'INSTALL_METHOD_TARBALL']);
  });

  it('streams install progress, then the result', async () => {
    const events: any[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.Install({ source: dir, method: 'INSTALL_METHOD_DIRECTORY' });
      s.on('data', (m: any) => events.push(m));
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    assert.equal(events.at(-1).result.baseRelease, 'debian 12');
    assert.ok(events.slice(0, -1).every((e) => e.progress));
  });

  it('answers an install from a missing path with INVALID_ARGUMENT', async () => {
    const code = await new Promise<number>((resolve) => {
      const s = client.Install({ source: '/nonexistent/base', method: 'INSTALL_METHOD_DIRECTORY' });
      s.on('data', () => undefined);
      s.on('error', (e: grpc.ServiceError) => resolve(e.code));
      s.on('end', () => resolve(-1));
    });
    assert.equal(code, grpc.status.INVALID_ARGUMENT);
  });

  for (const name of ['../x', 'a/b', '123', '', 'x'.repeat(300)]) {
    it(`refuses to create ${JSON.stringify(name.slice(0, 12))} with INVALID_ARGUMENT and a readable message`, async () => {
      const err = await unary(client, 'Create', { name }).catch((e: grpc.ServiceError) => e);
      assert.equal((err as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
      assert.match((err as grpc.ServiceError).details, /^Error; /);
    });
  }

  it('maps the error taxonomy to status codes', async () => {
    await unary(client, 'Create', { name: 'web1' });
    assert.equal(await codeOf(unary(client, 'Create', { name: 'web1' })), grpc.status.ALREADY_EXISTS);
    assert.equal(await codeOf(unary(client, 'Get', { name: 'nope' })), grpc.status.NOT_FOUND);
    assert.equal(await codeOf(unary(client, 'Start', { names: ['nope'] })), grpc.status.NOT_FOUND);
    assert.equal(await codeOf(unary(client, 'Start', { names: [] })), grpc.status.INVALID_ARGUMENT);
    assert.equal(await codeOf(unary(client, 'Configure', { name: 'web1', services: ['nginx'] })), grpc.status.FAILED_PRECONDITION);
    assert.equal(await codeOf(unary(client, 'Configure', { name: 'web1', services: ['a b'] })), grpc.status.INVALID_ARGUMENT);
  });

  it('carries qchroot lines and outcomes in start/stop results', async () => {
    await unary(client, 'Configure', { name: 'web1', services: ['httpd'] });
    const started = await unary(client, 'Start', { names: ['web1'] });
    assert.deepEqual(started.results, [{ name: 'web1', outcome: 'OUTCOME_STARTED', message: 'Start chroot completed.' }]);
    const list = await unary(client, 'List', {});
    assert.equal(list.containers[0].state, 'STATE_RUNNING');
    assert.deepEqual(list.containers[0].services, [{ name: 'httpd', state: 'STATE_RUNNING' }]);
    const stopped = await unary(client, 'Stop', { names: ['web1'] });
    assert.equal(stopped.results[0].message, 'Chroot is stopped.');
  });

  it('refuses an Exec stream whose first message is not start', async () => {
    const code = await new Promise<number>((resolve) => {
      const s = client.Exec();
      s.on('data', () => undefined);
      s.on('error', (e: grpc.ServiceError) => resolve(e.code));
      s.write({ stdin: Buffer.from('x') });
    });
    assert.equal(code, grpc.status.INVALID_ARGUMENT);
  });

  it('refuses exec in a stopped container with FAILED_PRECONDITION', async () => {
    const code = await new Promise<number>((resolve) => {
      const s = client.Exec();
      s.on('data', () => undefined);
      s.on('error', (e: grpc.ServiceError) => resolve(e.code));
      s.write({ start: { name: 'web1', argv: ['true'] } });
    });
    assert.equal(code, grpc.status.FAILED_PRECONDITION);
  });
});
