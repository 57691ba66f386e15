import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { makeAgentCsr } from '../../../agent/tls/csr.js';
import { signClientCsrFiles } from '../../../controller/pki/ca.js';
import { x509 } from '../../../common/x509.js';
import { agentService } from '../../../proto/agent-service.js';
import { codeOf, unary } from '../../support/grpc.js';
import { startTlsAgent, type TlsAgentFixture } from '../../support/mtls.js';

describe('pki issue --csr: a client certificate for a key that never leaves the tool\'s host', function () {
  this.timeout(60_000);
  let agent: TlsAgentFixture;
  let toolDir: string;
  let csrPem: string;
  before(async () => {
    agent = await startTlsAgent('agent1');
    // The monitoring host makes its own key and CSR (the same P-256 request qfleetd tls-request makes).
    toolDir = join(agent.dir, 'grafana-host');
    ({ csrPem } = await makeAgentCsr({ dir: toolDir, name: 'grafana' }));
    writeFileSync(join(toolDir, 'grafana.csr'), csrPem);
  });
  after(() => {
    agent?.close();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it('signs the request with the role and name the CA chooses, writes no key, and the tool can then call what its role allows', async () => {
    const out = join(agent.dir, 'issued');
    const files = await signClientCsrFiles(agent.pkiDir, 'grafana', csrPem, { role: 'read-only', outDir: out });
    assert.deepEqual(Object.keys(files).sort(), ['ca', 'cert']);
    assert.equal(existsSync(join(out, 'grafana.key')), false, 'no key is made on the controller');
    const cert = new X509Certificate(readFileSync(files.cert));
    assert.match(cert.subject, /CN=grafana/);
    assert.match(cert.subject, /OU=read-only/);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    const csrKey = new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData;
    assert.ok(Buffer.from(new x509.X509Certificate(readFileSync(files.cert, 'utf8')).publicKey.rawData).equals(Buffer.from(csrKey)), 'the CSR\'s key');

    const creds = grpc.credentials.createSsl(readFileSync(files.ca), readFileSync(join(toolDir, 'agent.key')), readFileSync(files.cert));
    const c = new (agentService().Client)(`127.0.0.1:${agent.port}`, creds, { 'grpc.ssl_target_name_override': 'agent1' });
    try {
      const listed = await unary<{ containers: unknown[] }>(c as unknown as grpc.Client, 'List', {}, 10_000);
      assert.ok(Array.isArray(listed.containers));
      assert.equal(await codeOf(unary(c as unknown as grpc.Client, 'Create', { name: 'nope' }, 10_000)), grpc.status.PERMISSION_DENIED);
    } finally {
      c.close();
    }
  });

  it('refuses a request whose key is not ECDSA P-256, saying how to make one', async () => {
    const keys = await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
    const rsa = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=grafana', keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } });
    await assert.rejects(signClientCsrFiles(agent.pkiDir, 'grafana', rsa.toString('pem'), { role: 'read-only', outDir: join(agent.dir, 'rsa') }), /ECDSA P-256.*openssl req/);
    assert.equal(existsSync(join(agent.dir, 'rsa')), false);
  });

  it('refuses what is not a certificate request, naming what it is; takes a DER request', async () => {
    const out = join(agent.dir, 'kinds');
    await assert.rejects(signClientCsrFiles(agent.pkiDir, 'grafana', readFileSync(join(toolDir, 'agent.key')), { role: 'read-only', outDir: out }), /holds a PEM PRIVATE KEY, not a certificate request/);
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    const files = await signClientCsrFiles(agent.pkiDir, 'grafana-der', der, { role: 'read-only', outDir: out });
    assert.match(new X509Certificate(readFileSync(files.cert)).subject, /CN=grafana-der/);
  });

  it('never writes into the PKI directory, nor as "ca"; keeps an existing directory\'s mode; removes a key left from before only with --force', async () => {
    await assert.rejects(signClientCsrFiles(agent.pkiDir, 'grafana', csrPem, { role: 'read-only', outDir: agent.pkiDir }), /is the PKI directory/);
    await assert.rejects(signClientCsrFiles(agent.pkiDir, 'CA', csrPem, { role: 'read-only', outDir: join(agent.dir, 'x') }), /"ca" is taken/);
    const shared = join(agent.dir, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    chmodSync(shared, 0o755);
    writeFileSync(join(shared, 'old.key'), 'a key made here before', { mode: 0o600 });
    await assert.rejects(signClientCsrFiles(agent.pkiDir, 'old', csrPem, { role: 'read-only', outDir: shared }), /old\.key already exists; use --force/);
    await signClientCsrFiles(agent.pkiDir, 'old', csrPem, { role: 'read-only', outDir: shared, force: true });
    assert.equal(existsSync(join(shared, 'old.key')), false, 'a key that no longer matches is gone');
    assert.equal(statSync(shared).mode & 0o777, 0o755, 'public files only: the directory keeps its mode');
    writeFileSync(join(shared, 'ca.crt'), 'another CA');
    await assert.rejects(signClientCsrFiles(agent.pkiDir, 'other', csrPem, { role: 'read-only', outDir: shared }), /holds another CA's certificate/);
  });

  it('the CLI: a bad name and a CSR it cannot read are usage errors (exit 2); an existing certificate is not replaced without --force', async () => {
    const cli = fileURLToPath(new URL('../../../controller/main.js', import.meta.url));
    const env = { ...process.env, QFLEET_HOME: join(agent.pkiDir, '..') };
    for (const bad of ['bad/name', 'ca']) {
      const r = await execa('node', [cli, 'pki', 'issue', bad, '--csr', join(toolDir, 'grafana.csr')], { env, reject: false });
      assert.equal(r.exitCode, 2, `${bad}: ${r.stderr}`);
    }
    const missing = await execa('node', [cli, 'pki', 'issue', 'grafana', '--csr', join(toolDir, 'nope.csr')], { env, reject: false });
    assert.equal(missing.exitCode, 2, missing.stderr);
    assert.match(missing.stderr, /cannot read the certificate request/);
    const out = join(agent.dir, 'cli-out');
    const args = [cli, 'pki', 'issue', 'grafana', '--read-only', '--csr', join(toolDir, 'grafana.csr'), '--out', out];
    const first = await execa('node', args, { env, reject: false });
    assert.equal(first.exitCode, 0, first.stderr);
    assert.match(first.stdout, /read-only certificate .*grafana\.crt/);
    const again = await execa('node', args, { env, reject: false });
    assert.notEqual(again.exitCode, 0);
    assert.match(again.stderr, /already exists; use --force/);
  });
});
