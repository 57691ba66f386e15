import * as grpc from '@grpc/grpc-js';
import sinon from 'sinon';
import { strict as assert } from 'node:assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isReadOnlyMethod, READ_ONLY_METHODS } from '../../../agent/server/auth.js';
import { caFromPem, createCaCertificate, loadCa, makeClientCertificate } from '../../../controller/pki/ca.js';
import { loadAgentProto } from '../../../proto/loader.js';
import { unary } from '../../support/grpc.js';
import { invoke, knownMethodDefinitions, servedPaths, startTlsAgent, type Outcome, type TlsAgentFixture } from '../../support/mtls.js';

const DAY = 86_400_000;

/** Credentials a client of the agent might present. */
interface Identity {
  readonly key?: Buffer;
  readonly cert?: Buffer;
}

/** Requests that would change the host if the call got through; everything else gets `{}`. */
const HARMFUL: Record<string, object> = {
  '/qfleet.agent.v1.AgentService/Create': { name: 'made-by-intruder' },
  '/qfleet.agent.v1.AgentService/Delete': { names: ['keep'] },
  '/qfleet.agent.v1.AgentService/Configure': { name: 'keep', services: ['httpd'] },
  '/qfleet.agent.v1.AgentService/Start': { names: ['keep'] },
  '/qfleet.agent.v1.AgentService/Stop': { names: ['keep'] },
  '/qfleet.agent.v1.AgentService/Exec': { start: { name: 'keep', argv: ['true'] } },
  '/grpc.health.v1.Health/Check': { service: '' },
  '/grpc.health.v1.Health/Watch': { service: '' },
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': { list_services: '' },
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': { list_services: '' },
};

describe('agent over TCP: mutual TLS and roles, checked on every RPC', function () {
  this.timeout(120_000);
  let agent: TlsAgentFixture;
  let defs: ReturnType<typeof knownMethodDefinitions>;
  let paths: string[];
  let caPem: Buffer;
  let operator: Identity;
  let readOnly: Identity;
  let otherCa: Identity;
  let expired: Identity;
  let agentAsClient: Identity;
  const clients: grpc.Client[] = [];

  function client(id: Identity | 'plaintext'): grpc.Client {
    const creds = id === 'plaintext' ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(caPem, id.key ?? null, id.cert ?? null);
    // The agent's certificate is for agent1 and 127.0.0.1: dial the address.
    const c = new grpc.Client(`127.0.0.1:${agent.port}`, creds);
    clients.push(c);
    return c;
  }
  const call = (id: Identity | 'plaintext', path: string, req?: object): Promise<Outcome> =>
    invoke(client(id), defs.get(path)!, req ?? HARMFUL[path] ?? {});

  let callsAfterSetup = 0;
  let prepareBase: sinon.SinonSpy;
  /** No host operation since set-up, no install, and an operator still sees only `keep`, stopped, with no services. */
  async function hostUnchanged(): Promise<void> {
    assert.deepEqual(agent.host.calls.slice(callsAfterSetup), []);
    assert.equal(prepareBase.callCount, 0, 'an install got through');
    const { proto } = loadAgentProto();
    const c = new proto.qfleet.agent.v1.AgentService(`127.0.0.1:${agent.port}`, grpc.credentials.createSsl(caPem, operator.key!, operator.cert!));
    clients.push(c);
    const list = await unary(c, 'List', {});
    assert.deepEqual(
      list.containers.map((x: any) => [x.name, x.state, x.services.length]),
      [['keep', 'STATE_STOPPED', 0]],
    );
  }

  before(async () => {
    agent = await startTlsAgent('agent1');
    defs = knownMethodDefinitions();
    paths = servedPaths(agent.server);
    caPem = Buffer.from(agent.caPem);
    const ca = await loadCa(agent.pkiDir);
    const pem = (p: { certPem: string; keyPem: string }): Identity => ({ cert: Buffer.from(p.certPem), key: Buffer.from(p.keyPem) });
    operator = { cert: readFileSync(join(agent.pkiDir, 'client.crt')), key: readFileSync(join(agent.pkiDir, 'client.key')) };
    readOnly = pem(await makeClientCertificate(ca, 'monitor', { role: 'read-only' }));
    const foreign = await createCaCertificate();
    otherCa = pem(await makeClientCertificate(await caFromPem(foreign.certPem, foreign.keyPem), 'intruder', { role: 'operator' }));
    expired = pem(
      await makeClientCertificate(ca, 'old', { role: 'operator', notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) }),
    );
    agentAsClient = { cert: readFileSync(join(agent.tlsDir, 'agent.crt')), key: readFileSync(join(agent.tlsDir, 'agent.key')) };
    const installed = await call(operator, '/qfleet.agent.v1.AgentService/Install', { source: agent.dir, method: 'INSTALL_METHOD_DIRECTORY' });
    assert.equal(installed.code, grpc.status.OK, installed.details);
    const created = await call(operator, '/qfleet.agent.v1.AgentService/Create', { name: 'keep' });
    assert.equal(created.code, grpc.status.OK, created.details);
    prepareBase = sinon.spy(agent.host, 'prepareBase');
    callsAfterSetup = agent.host.calls.length;
  });
  after(() => {
    for (const c of clients) c.close();
    agent?.close();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it('serves exactly the known methods (agent service, health, reflection), so none escapes the checks below', () => {
    assert.ok(paths.length >= 14, paths.join(' '));
    assert.deepEqual(paths, [...defs.keys()].sort());
    for (const p of READ_ONLY_METHODS) assert.ok(paths.includes(p), `read-only allow-list names ${p}, which is not served`);
  });

  it('treats every agent RPC as mutating unless it is on the read-only allow-list (List, Get, Version, Capabilities)', () => {
    const agentPaths = paths.filter((p) => p.startsWith('/qfleet.agent.v1.AgentService/'));
    assert.deepEqual(agentPaths.filter(isReadOnlyMethod).map((p) => p.split('/')[2]).sort(), ['Capabilities', 'Get', 'List', 'Version']);
    for (const m of ['Install', 'Create', 'Start', 'Stop', 'Delete', 'Configure', 'Exec']) {
      assert.equal(isReadOnlyMethod(`/qfleet.agent.v1.AgentService/${m}`), false, m);
    }
    assert.equal(isReadOnlyMethod('/qfleet.agent.v1.AgentService/SomethingNew'), false);
  });

  const refusedOutright: [string, () => Identity | 'plaintext'][] = [
    ['plaintext (no TLS)', () => 'plaintext'],
    ['TLS without a client certificate', () => ({})],
    ['a client certificate from another CA', () => otherCa],
    ['an expired client certificate from the fleet CA', () => expired],
  ];
  for (const [what, id] of refusedOutright) {
    it(`refuses ${what} on every method, and the host is untouched`, async () => {
      for (const p of paths) {
        const out = await call(id(), p);
        assert.ok([grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED].includes(out.code), `${p}: ${grpc.status[out.code]} ${out.details}`);
      }
      await hostUnchanged();
    });
  }

  it("refuses an agent's own (serverAuth) certificate as a client on every method", async () => {
    for (const p of paths) {
      const out = await call(agentAsClient, p);
      assert.ok([grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED].includes(out.code), `${p}: ${grpc.status[out.code]} ${out.details}`);
    }
    await hostUnchanged();
  });

  it('gives a read-only certificate PERMISSION_DENIED on every mutating method, and the host is untouched', async () => {
    const mutating = paths.filter((p) => !isReadOnlyMethod(p));
    assert.deepEqual(
      mutating.map((p) => p.split('/')[2]).sort(),
      ['Configure', 'Create', 'Delete', 'Exec', 'Install', 'Start', 'Stop'],
    );
    for (const p of mutating) {
      const out = await call(readOnly, p);
      assert.equal(out.code, grpc.status.PERMISSION_DENIED, `${p}: ${grpc.status[out.code]} ${out.details}`);
      assert.match(out.details, /read-only certificate .* may not call/);
    }
    await hostUnchanged();
  });

  it('lets a read-only certificate call List, Get, Version, health (Check, Watch, List) and reflection', async () => {
    for (const p of paths.filter(isReadOnlyMethod)) {
      const out = await call(readOnly, p, p.endsWith('/Get') ? { name: 'keep' } : undefined);
      assert.equal(out.code, grpc.status.OK, `${p}: ${grpc.status[out.code]} ${out.details}`);
    }
  });

  it('lets the operator certificate through on every method (the handler answers, not the interceptor)', async () => {
    for (const p of paths) {
      // Harmless requests: the handlers refuse them on their merits (INVALID_ARGUMENT, NOT_FOUND), which proves they ran.
      const req = p.endsWith('/Get') ? { name: 'keep' } : p.startsWith('/grpc.') ? HARMFUL[p] : p.endsWith('/Exec') ? { start: { name: 'nope', argv: ['true'] } } : {};
      const out = await call(operator, p, req);
      assert.ok(
        ![grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.UNAVAILABLE].includes(out.code),
        `${p}: ${grpc.status[out.code]} ${out.details}`,
      );
    }
    const made = await call(operator, '/qfleet.agent.v1.AgentService/Create', { name: 'by-operator' });
    assert.equal(made.code, grpc.status.OK, made.details);
    assert.equal((await call(operator, '/qfleet.agent.v1.AgentService/Delete', { names: ['by-operator'] })).code, grpc.status.OK);
  });
});

describe('agent auth interceptor on its own (a listener misconfigured to not require client certificates)', function () {
  this.timeout(60_000);
  let agent: TlsAgentFixture;
  let client: grpc.Client;
  before(async () => {
    agent = await startTlsAgent('agent1', { requireClientCert: false });
    client = new grpc.Client(`127.0.0.1:${agent.port}`, grpc.credentials.createSsl(Buffer.from(agent.caPem)));
  });
  after(() => {
    client?.close();
    agent?.close();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it('still answers UNAUTHENTICATED on every method when TLS lets a client in without a certificate', async () => {
    const defs = knownMethodDefinitions();
    for (const p of servedPaths(agent.server)) {
      const out = await invoke(client, defs.get(p)!, HARMFUL[p] ?? {});
      assert.equal(out.code, grpc.status.UNAUTHENTICATED, `${p}: ${grpc.status[out.code]} ${out.details}`);
      assert.match(out.details, /client certificate from the fleet CA is required/);
    }
  });
});
