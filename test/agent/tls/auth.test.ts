import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientAuthorizer, type AuthContext } from '../../../agent/server/auth.js';
import { PermissionDeniedError, UnauthenticatedError } from '../../../agent/errors.js';
import { caFromPem, createCaCertificate, initPki, issueCertificate, loadCa, makeClientCertificate, type LoadedCa } from '../../../controller/pki/ca.js';
import { generateKeyPair, x509 } from '../../../common/x509.js';

const DAY = 86_400_000;
const LIST = '/qfleet.agent.v1.AgentService/List';
const DELETE = '/qfleet.agent.v1.AgentService/Delete';

/** What grpc-js reports for a TLS peer that presented this certificate. */
function peer(certPem: string): AuthContext {
  const c = new X509Certificate(certPem);
  return { transportSecurityType: 'ssl', sslPeerCertificate: { raw: c.raw, fingerprint256: c.fingerprint256 } as never };
}

describe('ClientAuthorizer (the per-call check behind the TLS handshake)', function () {
  this.timeout(30_000);
  let dir: string;
  let ca: LoadedCa;
  let auth: ClientAuthorizer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-auth-'));
    await initPki(dir);
    ca = await loadCa(dir);
    auth = new ClientAuthorizer(readFileSync(join(dir, 'ca.crt')));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a call with no TLS peer certificate (the unix-socket server has no interceptor; TCP always does)', () => {
    assert.throws(() => auth.authorize(LIST, {}), UnauthenticatedError);
    assert.throws(() => auth.authorize(LIST, null), UnauthenticatedError);
  });

  it('lets an operator call anything, and a read-only certificate only the allow-list', async () => {
    const op = peer((await makeClientCertificate(ca, 'ops', { role: 'operator' })).certPem);
    const ro = peer((await makeClientCertificate(ca, 'mon', { role: 'read-only' })).certPem);
    assert.equal(auth.authorize(DELETE, op).role, 'operator');
    assert.equal(auth.authorize(LIST, ro).role, 'read-only');
    assert.throws(() => auth.authorize(DELETE, ro), PermissionDeniedError);
    assert.throws(() => auth.authorize('/qfleet.agent.v1.AgentService/NewRpc', ro), PermissionDeniedError);
  });

  it('refuses a certificate that expires while its connection is open', async () => {
    const soon = peer((await makeClientCertificate(ca, 'short', { role: 'operator', notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 60_000) })).certPem);
    assert.equal(auth.authorize(LIST, soon).role, 'operator');
    assert.throws(() => auth.authorize(LIST, soon, Date.now() + 120_000), /expired/);
  });

  it("refuses another CA's certificate even if TLS let it through", async () => {
    const foreign = await createCaCertificate();
    const c = peer((await makeClientCertificate(await caFromPem(foreign.certPem, foreign.keyPem), 'x', { role: 'operator' })).certPem);
    assert.throws(() => auth.authorize(LIST, c), /not issued by this fleet's CA/);
  });

  let agentCert: AuthContext;
  before(async () => {
    const { keys } = await generateKeyPair();
    agentCert = peer(await issueCertificate(ca, { publicKey: keys.publicKey, subject: 'O=qfleet, OU=agent, CN=web1', extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth] }));
  });
  it('refuses a certificate without clientAuth (an agent certificate) and one with no role, a foreign role or two roles', async () => {
    const { keys } = await generateKeyPair();
    const make = async (subject: string, eku: string) => peer(await issueCertificate(ca, { publicKey: keys.publicKey, subject, extendedKeyUsages: [eku] }));
    const clientAuth = x509.ExtendedKeyUsage.clientAuth;
    assert.throws(() => auth.authorize(LIST, agentCert), /not a client certificate/);
    // OU=agent is a role (roleOf reads it) but no client role, even with clientAuth.
    for (const subject of ['O=qfleet, CN=norole', 'O=qfleet, OU=admin, CN=x', 'O=qfleet, OU=read-only, OU=operator, CN=x', 'O=other, OU=operator, CN=x',
      'O=qfleet, OU=agent, CN=web1', 'O=qfleet, O=qfleet, OU=operator, CN=x']) {
      const c = await make(subject, clientAuth);
      assert.throws(() => auth.authorize(LIST, c), (e: Error) => e instanceof PermissionDeniedError && /no qfleet client role/.test(e.message), subject);
    }
  });

});
