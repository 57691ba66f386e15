import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { mtlsClientFactory, unaryTransportOf, type UnaryTransport } from '../../controller/transport/mtls.js';
import { UsageError } from '../../controller/context.js';
import type { HostTarget } from '../../controller/fleet/host-target.js';
import { grpcTimeout, MAX_RESPONSE_BYTES } from '../../controller/h2-unary-client.js';
import { loadServerTls } from '../../agent/tls/credentials.js';
import { listenOnTcpTls } from '../../agent/server/server.js';
import { loadAgentProto } from '../../proto/loader.js';
import { unary } from '../support/grpc.js';
import { startTlsAgent, type TlsAgentFixture } from '../support/mtls.js';

const host = (name: string, address: string, agentPort: number): HostTarget => ({ name, address, agentPort, sshPort: 22, sshUser: undefined, vars: {} });

interface Failure {
  code: grpc.status;
  details: string;
  message: string;
  metadata: grpc.Metadata;
}

const failureOf = (p: Promise<unknown>): Promise<Failure> =>
  p.then(
    () => assert.fail('expected the call to fail'),
    (e: Failure) => e,
  );

describe('controller: unary calls over one HTTP/2 connection (h2UnaryClient), as grpc-js would make them', function () {
  this.timeout(60_000);
  let agent: TlsAgentFixture;
  /** A second server with the agent's TLS identity whose handlers misbehave on purpose. */
  let odd: grpc.Server;
  let oddPort: number;
  const peersSeen: string[] = [];
  const open: grpc.Client[] = [];
  const client = (unaryTransport: UnaryTransport, port: number, name = 'agent1', address = '127.0.0.1'): grpc.Client => {
    const c = mtlsClientFactory(agent.pkiDir, { unary: unaryTransport })(host(name, address, port)) as unknown as grpc.Client;
    open.push(c);
    return c;
  };

  before(async () => {
    agent = await startTlsAgent('agent1');
    const tls = loadServerTls({ cert: join(agent.tlsDir, 'agent.crt'), key: join(agent.tlsDir, 'agent.key'), ca: join(agent.tlsDir, 'ca.crt') });
    const Service = loadAgentProto().proto.qfleet.agent.v1.AgentService;
    odd = new grpc.Server();
    const notImplemented: grpc.handleUnaryCall<unknown, unknown> = (_c, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not here' });
    const impl: Record<string, grpc.UntypedHandleCall> = {};
    for (const name of Object.keys(Service.service)) impl[name] = notImplemented;
    // Version fails with a message that needs percent-encoding, and trailing metadata.
    impl.Version = ((_c, cb) => {
      const md = new grpc.Metadata();
      md.set('x-why', 'because');
      cb({ code: grpc.status.FAILED_PRECONDITION, details: 'ünïcode: 100% done\nsecond line', metadata: md });
    }) as grpc.handleUnaryCall<unknown, unknown>;
    // List never answers (deadlines, cancel).
    impl.List = (() => undefined) as grpc.handleUnaryCall<unknown, unknown>;
    // Get answers, and records which connection asked.
    impl.Get = ((call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      peersSeen.push(call.getPeer());
      cb(null, { container: { name: 'x' } });
    }) as grpc.handleUnaryCall<unknown, unknown>;
    odd.addService(Service.service, impl);
    oddPort = await listenOnTcpTls(odd, '127.0.0.1:0', tls.credentials);
  });
  after(() => {
    for (const c of open) c.close();
    odd?.forceShutdown();
    agent?.close();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it('answers a call as grpc-js does', async () => {
    const [viaH2, viaGrpcJs] = await Promise.all([unary(client('h2', agent.port), 'Version', {}), unary(client('grpc-js', agent.port), 'Version', {})]);
    assert.equal(viaH2.agentVersion, '9.9.9');
    assert.deepEqual(viaH2, viaGrpcJs);
  });

  it("fails with the agent's own code and message, the same through both", async () => {
    const [a, b] = await Promise.all([
      failureOf(unary(client('h2', agent.port), 'Get', { name: 'nosuch' })),
      failureOf(unary(client('grpc-js', agent.port), 'Get', { name: 'nosuch' })),
    ]);
    assert.equal(a.code, grpc.status.NOT_FOUND);
    assert.deepEqual([a.code, a.details, a.message], [b.code, b.details, b.message]);
    const [c, d] = await Promise.all([
      failureOf(unary(client('h2', agent.port), 'Create', { name: '../etc' })),
      failureOf(unary(client('grpc-js', agent.port), 'Create', { name: '../etc' })),
    ]);
    assert.equal(c.code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual([c.code, c.details], [d.code, d.details]);
  });

  it('decodes a percent-encoded status message and keeps trailing metadata', async () => {
    const [a, b] = await Promise.all([failureOf(unary(client('h2', oddPort), 'Version', {})), failureOf(unary(client('grpc-js', oddPort), 'Version', {}))]);
    assert.equal(a.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(a.details, 'ünïcode: 100% done\nsecond line');
    assert.equal(a.details, b.details);
    assert.deepEqual(a.metadata.get('x-why'), ['because']);
  });

  it('ends a call the agent never answers with DEADLINE_EXCEEDED at its deadline', async () => {
    const t0 = Date.now();
    const e = await failureOf(unary(client('h2', oddPort), 'List', {}, 300));
    assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 >= 250, 'not before the deadline');
  });

  it('cancels a call: CANCELLED, as grpc-js reports it', async () => {
    const c = client('h2', oddPort) as unknown as Record<string, Function>;
    const done = new Promise<Failure>((resolve) => {
      const call = c.List!.call(c, {}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: Failure) => resolve(err));
      setTimeout(() => call.cancel(), 50);
    });
    assert.equal((await done).code, grpc.status.CANCELLED);
  });

  it('finds nothing listening UNAVAILABLE, with the reason', async () => {
    const port = await closedPort();
    const e = await failureOf(unary(client('h2', port), 'Version', {}, 10_000));
    assert.equal(e.code, grpc.status.UNAVAILABLE);
    assert.match(e.details, /ECONNREFUSED/);
  });

  it('refuses an agent whose certificate is for another host (UNAVAILABLE, naming the host), before sending anything', async () => {
    const before = peersSeen.length;
    const e = await failureOf(unary(client('h2', oddPort, 'agent2'), 'Get', { name: 'x' }, 10_000));
    assert.equal(e.code, grpc.status.UNAVAILABLE);
    assert.match(e.details, /not for host agent2/);
    assert.equal(peersSeen.length, before, 'the handler never ran');
  });

  it('makes every call to one host over one connection', async () => {
    const c = client('h2', oddPort);
    const start = peersSeen.length;
    await unary(c, 'Get', { name: 'x' });
    await unary(c, 'Get', { name: 'x' });
    await Promise.all([unary(c, 'Get', { name: 'x' }), unary(c, 'Get', { name: 'x' })]);
    const peers = peersSeen.slice(start);
    assert.equal(peers.length, 4);
    assert.equal(new Set(peers).size, 1, `one client port: ${peers.join(', ')}`);
  });

  it('hands everything that is not a unary call to a real grpc-js client (streams, channel)', async () => {
    const c = client('h2', agent.port) as unknown as { getChannel(): grpc.Channel; Install(req: object, md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientReadableStream<unknown> };
    assert.equal(typeof c.getChannel().getTarget(), 'string');
    const stream = c.Install({ method: 'directory', source: '/nonexistent/qfleet-test' }, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      stream.on('data', () => undefined);
      stream.on('error', () => undefined);
      stream.on('status', resolve);
    });
    assert.ok(typeof status.code === 'number', 'the stream ended with a gRPC status');
  });

  it('drops a connection still in its handshake at close: a host that accepts and never answers holds nothing up', async () => {
    // Reads (so it sees the client go) but never answers the TLS ClientHello.
    const silent = createServer((sock) => sock.resume());
    const closed = new Promise<void>((resolve) => silent.on('connection', (sock) => sock.on('close', () => resolve())));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const c = client('h2', (silent.address() as { port: number }).port);
      const e = await failureOf(unary(c, 'Version', {}, 300));
      assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
      c.close();
      await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the connection was left open after close')), 5000))]);
    } finally {
      silent.close();
    }
  });

  it('refuses calls after close', async () => {
    const c = client('h2', agent.port);
    c.close();
    const e = await failureOf(unary(c, 'Version', {}));
    assert.equal(e.code, grpc.status.UNAVAILABLE);
  });

  describe('a peer that breaks the protocol or the connection (a raw HTTP/2 server with the agent\'s identity)', () => {
    let raw: http2.Http2SecureServer;
    let rawPort: number;
    let behave: (s: http2.ServerHttp2Stream) => void = () => undefined;
    let lastTls: { destroy(): void } | undefined;
    const ok = { ':status': 200, 'content-type': 'application/grpc' };
    before(async () => {
      const f = (n: string) => readFileSync(join(agent.tlsDir, n));
      raw = http2.createSecureServer({ key: f('agent.key'), cert: f('agent.crt'), ca: f('ca.crt'), requestCert: true, rejectUnauthorized: true });
      raw.on('sessionError', () => undefined);
      raw.on('secureConnection', (t) => (lastTls = t));
      raw.on('stream', (s) => {
        s.on('error', () => undefined);
        s.resume();
        s.on('end', () => behave(s));
      });
      await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
      rawPort = (raw.address() as { port: number }).port;
    });
    after(() => raw?.close());
    const callRaw = (how: (s: http2.ServerHttp2Stream) => void) => {
      behave = how;
      return failureOf(unary(client('h2', rawPort), 'Version', {}, 10_000));
    };

    it('a connection dropped before or after the answer began: UNAVAILABLE (the host is unreachable, not "cancelled")', async () => {
      const before = await callRaw(() => lastTls!.destroy());
      assert.equal(before.code, grpc.status.UNAVAILABLE, before.details);
      const after = await callRaw((s) => {
        s.respond(ok);
        s.write(Buffer.from([0, 0, 0, 0, 9, 1]));
        setTimeout(() => lastTls!.destroy(), 20);
      });
      assert.equal(after.code, grpc.status.UNAVAILABLE, after.details);
    });

    it('maps RST_STREAM codes as grpc-js does', async () => {
      const c = http2.constants;
      const cases: [number, grpc.status][] = [
        [c.NGHTTP2_REFUSED_STREAM, grpc.status.UNAVAILABLE],
        [c.NGHTTP2_ENHANCE_YOUR_CALM, grpc.status.RESOURCE_EXHAUSTED],
        [c.NGHTTP2_INADEQUATE_SECURITY, grpc.status.PERMISSION_DENIED],
        [c.NGHTTP2_INTERNAL_ERROR, grpc.status.INTERNAL],
        [c.NGHTTP2_CANCEL, grpc.status.CANCELLED],
      ];
      for (const [rst, code] of cases) {
        const e = await callRaw((s) => s.close(rst));
        assert.equal(e.code, code, `RST_STREAM ${rst}: ${e.details}`);
      }
    });

    it('a trailers-only answer without grpc-status is UNKNOWN, a non-200 answer is mapped from its HTTP status', async () => {
      assert.equal((await callRaw((s) => s.respond(ok, { endStream: true }))).code, grpc.status.UNKNOWN);
      assert.equal((await callRaw((s) => s.respond({ ':status': 503 }, { endStream: true }))).code, grpc.status.UNAVAILABLE);
    });

    it(`refuses an answer larger than ${MAX_RESPONSE_BYTES} bytes, as grpc-js does (RESOURCE_EXHAUSTED)`, async () => {
      const e = await callRaw((s) => {
        const body = Buffer.alloc(5 + MAX_RESPONSE_BYTES + 1);
        body.writeUInt32BE(MAX_RESPONSE_BYTES + 1, 1);
        s.respond(ok, { waitForTrailers: true });
        s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
        s.end(body);
      });
      assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED, e.details);
    });
  });

  it('a deadline weeks away is a deadline, not an instant timeout', async () => {
    const c = client('h2', agent.port) as unknown as Record<string, Function>;
    const v = await new Promise<{ agentVersion: string }>((resolve, reject) =>
      c.Version!.call(c, {}, new grpc.Metadata(), { deadline: Date.now() + 40 * 24 * 3600 * 1000 }, (err: Error | null, res: { agentVersion: string }) => (err ? reject(err) : resolve(res))),
    );
    assert.equal(v.agentVersion, '9.9.9');
  });

  it('an idle client left open does not keep the process alive (as grpc-js unrefs an idle connection)', async () => {
    const connect = fileURLToPath(new URL('../../controller/transport/mtls.js', import.meta.url));
    const script = `
      const { mtlsClientFactory } = await import(${JSON.stringify(connect)});
      const c = mtlsClientFactory(${JSON.stringify(agent.pkiDir)})({ name: 'agent1', address: '127.0.0.1', agentPort: ${agent.port}, sshPort: 22, vars: {} });
      c.Version({}, (err, res) => console.log(err ? 'error ' + err.code : 'ok ' + res.agentVersion));`;
    const r = await execa('node', ['--input-type=module', '-e', script], { timeout: 10_000, reject: false });
    assert.equal(r.stdout.trim(), 'ok 9.9.9', r.stderr);
    assert.equal(r.timedOut, false, 'the process ended by itself');
  });

  it('is not a thenable, and after close hands out no new grpc-js client', async () => {
    const c = client('h2', agent.port) as unknown as Record<string, unknown>;
    assert.equal(c.then, undefined);
    assert.equal(await Promise.resolve(c), c);
    (c.close as () => void)();
    assert.throws(() => c.getChannel, /Channel has been shut down/);
  });

  it('QFLEET_UNARY_TRANSPORT chooses h2 (the default) or grpc-js; anything else is a usage error', () => {
    assert.equal(unaryTransportOf({}), 'h2');
    assert.equal(unaryTransportOf({ QFLEET_UNARY_TRANSPORT: 'grpc-js' }), 'grpc-js');
    assert.throws(() => unaryTransportOf({ QFLEET_UNARY_TRANSPORT: 'grpcjs' }), (e: Error) => e instanceof UsageError && /must be h2 or grpc-js/.test(e.message));
  });

  it('writes grpc-timeout in at most eight digits', () => {
    assert.equal(grpcTimeout(1500), '1500m');
    assert.equal(grpcTimeout(0.2), '1m');
    assert.equal(grpcTimeout(99_999_999), '99999999m');
    assert.equal(grpcTimeout(100_000_000), '100000S');
    assert.equal(grpcTimeout(1e12), '277778H');
  });
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
