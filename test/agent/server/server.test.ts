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
import protobuf from 'protobufjs';
import { agentClient, codeOf, healthClient, listServicesByReflection, unary } from '../../support/grpc.js';
import { decodeStatusDetails, ERROR_DETAIL_TYPE_URL, STATUS_DETAILS_KEY } from '../../../proto/error-detail.js';
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
    const engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 10, runner: new FakeRunner() });
    ({ server } = createAgentServer({ engine, log: silentLogger, agentVersion: '9.9.9' }));
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

  it("a forced shutdown (the agent's SIGTERM path, 5 s on) ends the connections it has open", async () => {
    // grpc-js's forceShutdown destroys only the sessions its channelz map holds: with channelz off
    // (grpc.enable_channelz: 0) it left them up, so clients stayed connected to a server that had
    // shut down, and an in-process server (these tests') kept its process alive.
    const engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, runner: new FakeRunner() });
    const { server: own } = createAgentServer({ engine, log: silentLogger, agentVersion: '9.9.9' });
    const path = join(dir, 'forced/qfleetd.sock');
    await listenOnUnixSocket(own, path);
    const h = healthClient(`unix:${path}`);
    try {
      assert.equal((await unary<{ status: string }>(h, 'check', { service: '' })).status, 'SERVING');
      const channel = h.getChannel();
      assert.equal(channel.getConnectivityState(false), grpc.connectivityState.READY);
      own.forceShutdown();
      const left = await new Promise<boolean>((resolve) => {
        channel.watchConnectivityState(grpc.connectivityState.READY, Date.now() + 5000, (err) => resolve(!err));
      });
      assert.ok(left, 'the client was still connected 5 s after the forced shutdown');
    } finally {
      h.close();
      own.forceShutdown();
    }
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
    assert.equal(v.apiRevision, 3, 'API 3: isolation and container config');
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
    assert.deepEqual(started.results, [{ name: 'web1', outcome: 'OUTCOME_STARTED', message: 'Start chroot completed.', state: 'STATE_STOPPED', error: null }]);
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

  /** The call's error and the ErrorDetail in its grpc-status-details-bin trailer. */
  async function refusal(p: Promise<unknown>) {
    const err = (await p.then(() => assert.fail('expected the call to fail'), (e: grpc.ServiceError) => e)) as grpc.ServiceError;
    const [bytes] = err.metadata.get(STATUS_DETAILS_KEY) as Buffer[];
    assert.ok(bytes, `no ${STATUS_DETAILS_KEY} trailer`);
    return { err, bytes, detail: decodeStatusDetails(bytes) };
  }

  describe('errors are data: every error status carries an ErrorDetail', () => {
    it('round-trips reason and fields with the code and the message as they were', async () => {
      const { err, detail } = await refusal(unary(client, 'Start', { names: ['web1', 'nope', 'nada'] }));
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, 'Error; no such chroot container: nope, nada.', 'the words stay qchroot\'s');
      assert.deepEqual(detail, { reason: 'REASON_NOT_FOUND', fields: { containers: 'nope,nada' } });
      assert.deepEqual(err.metadata.get('qfleet-error-kind'), [], 'the header nobody read is gone');
    });

    it('names the reason of each refusal', async () => {
      const reasonOf = async (p: Promise<unknown>) => (await refusal(p)).detail?.reason;
      assert.equal(await reasonOf(unary(client, 'Create', { name: '../x' })), 'REASON_NAME_INVALID');
      assert.equal(await reasonOf(unary(client, 'Create', { name: 'web1' })), 'REASON_ALREADY_EXISTS');
      assert.equal(await reasonOf(unary(client, 'Configure', { name: 'web1', services: ['nginx'] })), 'REASON_NO_SERVICE_SCRIPT');
      assert.equal(await reasonOf(unary(client, 'Start', { names: [] })), 'REASON_INVALID_ARGUMENT');
    });

    it('is a google.rpc.Status on the wire: a decoder that knows only googleapis\' Status reads code, message and the Any', async () => {
      const { err, bytes } = await refusal(unary(client, 'Get', { name: 'nope' }));
      // googleapis' google/rpc/status.proto and google/protobuf/any.proto, their messages as published.
      const root = new protobuf.Root();
      protobuf.parse('syntax = "proto3"; package google.protobuf; message Any { string type_url = 1; bytes value = 2; }', root, { keepCase: true });
      protobuf.parse('syntax = "proto3"; package google.rpc; message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }', root, { keepCase: true });
      const status = root.lookupType('google.rpc.Status').decode(bytes) as unknown as { code: number; message: string; details: Array<{ type_url: string }> };
      assert.equal(status.code, err.code);
      assert.equal(status.message, err.details);
      assert.deepEqual(status.details.map((d) => d.type_url), [ERROR_DETAIL_TYPE_URL]);
    });

    it('a failed container in a result carries the same detail', async () => {
      host.spawnStray('web1');
      const res = await unary(client, 'Start', { names: ['web1'] });
      assert.equal(res.results[0].outcome, 'OUTCOME_FAILED');
      assert.deepEqual(res.results[0].error, { reason: 'REASON_BROKEN', fields: { container: 'web1', state: 'broken' } });
      await unary(client, 'Stop', { names: ['web1'] });
    });
  });

  describe('validate_only', () => {
    const listed = async () => (await unary(client, 'List', {})).containers.map((c: any) => `${c.name}:${c.state}`);

    it('Create: the container as it would be, and none is made', async () => {
      const before = await listed();
      const res = await unary(client, 'Create', { name: 'planned', validateOnly: true });
      assert.equal(res.container.name, 'planned');
      assert.match(res.container.path, /containers\/planned$/);
      assert.deepEqual(await listed(), before);
    });

    it('Start: OUTCOME_WOULD_CHANGE with what it would do and the state now; nothing starts', async () => {
      const res = await unary(client, 'Start', { names: ['web1'], validateOnly: true });
      assert.deepEqual(res.results, [{ name: 'web1', outcome: 'OUTCOME_WOULD_CHANGE', message: 'start httpd', state: 'STATE_STOPPED', error: null }]);
      assert.deepEqual(await listed(), ['web1:STATE_STOPPED']);
    });

    it('refusals are the error statuses the real call gets, with their details', async () => {
      const { err, detail } = await refusal(unary(client, 'Delete', { names: ['nope'], validateOnly: true }));
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(detail?.reason, 'REASON_NOT_FOUND');
    });

    it('Install: a result without a release, no progress, nothing unpacked', async () => {
      const events: any[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = client.Install({ source: dir, method: 'INSTALL_METHOD_DIRECTORY', validateOnly: true });
        s.on('data', (m: any) => events.push(m));
        s.on('error', reject);
        s.on('end', () => resolve());
      });
      assert.deepEqual(events.map((e) => e.event), ['result']);
      assert.equal(events[0].result.baseRelease, '');
    });

    it('Exec and console: one `validated` message with the container, then the stream ends; nothing runs', async () => {
      const run = (start: object) => new Promise<any[]>((resolve, reject) => {
        const got: any[] = [];
        const s = client.Exec();
        s.on('data', (m: any) => got.push(m));
        s.on('error', reject);
        s.on('end', () => resolve(got));
        s.write({ start });
      });
      const msgs = await run({ name: 'web1', console: true, validateOnly: true });
      assert.deepEqual(msgs.map((m) => [m.event, m.validated?.name, m.validated?.state]), [['validated', 'web1', 'STATE_STOPPED']]);
      assert.ok(!host.calls.includes('mount web1') || host.calls.lastIndexOf('mount web1') < host.calls.lastIndexOf('unmount web1'), 'nothing left mounted');
      await assert.rejects(run({ name: 'web1', argv: ['true'], validateOnly: true }), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION);
    });
  });
});
