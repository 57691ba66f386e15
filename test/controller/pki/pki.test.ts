import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgentCsr } from '../../../agent/tls/csr.js';
import { initPki, issueClientFiles, PkiError, signAgentCsr } from '../../../controller/pki/ca.js';
import { configDir, defaultPkiDir } from '../../../controller/pki/paths.js';
import { generateKeyPair, x509 } from '../../../common/x509.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('controller PKI', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-pki-'));
    pki = join(dir, 'pki');
    await initPki(pki);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lives in $QFLEET_HOME/pki, else ~/.config/qfleet/pki', () => {
    assert.equal(defaultPkiDir({ QFLEET_HOME: '/srv/qf' }), '/srv/qf/pki');
    assert.match(configDir({}), /\/\.config\/qfleet$/);
  });

  it('pki init makes an ECDSA P-256 CA for 10 years, keys 0600 in a 0700 directory', () => {
    assert.equal(mode(pki), 0o700);
    for (const f of ['ca.key', 'client.key']) assert.equal(mode(join(pki, f)), 0o600, f);
    const ca = new X509Certificate(readFileSync(join(pki, 'ca.crt')));
    assert.ok(ca.ca);
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (Date.parse(ca.validTo) - Date.now()) / (365.25 * 86_400_000);
    assert.ok(years > 9.9 && years < 10.1, String(years));
  });

  it('pki init makes the controller an operator client certificate signed by the CA', () => {
    const ca = new X509Certificate(readFileSync(join(pki, 'ca.crt')));
    const client = new X509Certificate(readFileSync(join(pki, 'client.crt')));
    assert.ok(client.checkIssued(ca) && client.verify(ca.publicKey));
    assert.match(client.subject, /^O=qfleet\nOU=operator\nCN=/);
    assert.deepEqual(client.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  });

  it('pki init refuses to replace an existing CA, and replaces it with force', async () => {
    const before = readFileSync(join(pki, 'ca.crt'), 'utf8');
    await assert.rejects(initPki(pki), (e: Error) => e instanceof PkiError && /already exists.*--force/s.test(e.message));
    assert.equal(readFileSync(join(pki, 'ca.crt'), 'utf8'), before);
    const other = join(dir, 'forced');
    await initPki(other);
    const first = readFileSync(join(other, 'ca.crt'), 'utf8');
    await initPki(other, { force: true });
    assert.notEqual(readFileSync(join(other, 'ca.crt'), 'utf8'), first);
    assert.equal(mode(join(other, 'ca.key')), 0o600);
  });

  it('pki issue writes NAME.crt, NAME.key (0600) and ca.crt, with the role in the subject, and refuses to overwrite', async () => {
    const out = join(dir, 'grafana');
    const files = await issueClientFiles(pki, 'grafana', { role: 'read-only', days: 30, outDir: out });
    assert.equal(mode(files.key), 0o600);
    assert.equal(mode(out), 0o700);
    const cert = new X509Certificate(readFileSync(files.cert));
    assert.equal(cert.subject, 'O=qfleet\nOU=read-only\nCN=grafana');
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days < 30.1);
    assert.equal(readFileSync(files.ca, 'utf8'), readFileSync(join(pki, 'ca.crt'), 'utf8'));
    await assert.rejects(issueClientFiles(pki, 'grafana', { role: 'read-only', outDir: out }), /already exist/);
    await assert.rejects(issueClientFiles(pki, 'bad name', { role: 'operator', outDir: out }), /client name/);
  });

  describe('signAgentCsr', () => {
    let csrPem: string;
    before(async () => {
      ({ csrPem } = await makeAgentCsr({ dir: join(dir, 'agent-tls'), name: 'web1', ips: ['10.9.9.9'] }));
    });

    it('puts the given names in the SAN (DNS names and IPs told apart), serverAuth only, about a year', async () => {
      const { certPem, caPem } = await signAgentCsr(pki, csrPem, ['web1.example.org', '192.0.2.7', 'WEB1', '2001:db8::1']);
      const cert = new X509Certificate(certPem);
      assert.ok(cert.checkIssued(new X509Certificate(caPem)));
      assert.equal(cert.subjectAltName, 'DNS:web1.example.org, IP Address:192.0.2.7, DNS:web1, IP Address:2001:DB8:0:0:0:0:0:1');
      assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
      assert.equal(cert.ca, false);
      assert.equal(cert.subject, 'O=qfleet\nOU=agent\nCN=web1.example.org');
      const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
      assert.ok(days > 364 && days < 366, String(days));
      assert.equal(cert.checkHost('web1.example.org'), 'web1.example.org');
      assert.equal(cert.checkIP('192.0.2.7'), '192.0.2.7');
    });

    it('keeps the key of the CSR and nothing else from it (its own names are not in the certificate)', async () => {
      const { certPem } = await signAgentCsr(pki, csrPem, ['other'], { days: 10 });
      const cert = new x509.X509Certificate(certPem);
      const csr = new x509.Pkcs10CertificateRequest(csrPem);
      assert.equal(Buffer.from(cert.publicKey.rawData).toString('hex'), Buffer.from(csr.publicKey.rawData).toString('hex'));
      assert.equal(new X509Certificate(certPem).subjectAltName, 'DNS:other');
    });

    it('ignores a CSR that asks for a client role: the subject is the controller\'s, never the CSR\'s', async () => {
      const { keys } = await generateKeyPair();
      const evil = await x509.Pkcs10CertificateRequestGenerator.create({
        name: 'O=qfleet, OU=operator, CN=evil',
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
      });
      const cert = new X509Certificate((await signAgentCsr(pki, evil.toString('pem'), ['evil'])).certPem);
      assert.equal(cert.subject, 'O=qfleet\nOU=agent\nCN=evil');
      assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    });

    it('rejects a tampered CSR (its signature no longer matches)', async () => {
      const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
      const i = der.indexOf(Buffer.from('web1'));
      assert.ok(i > 0);
      der.write('webX', i);
      const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      await assert.rejects(signAgentCsr(pki, tampered, ['web1']), /does not verify/);
    });

    it('rejects garbage, an empty name list and a name that is neither DNS nor IP', async () => {
      await assert.rejects(signAgentCsr(pki, 'not a csr', ['web1']), PkiError);
      await assert.rejects(signAgentCsr(pki, csrPem, []), /at least one name/);
      await assert.rejects(signAgentCsr(pki, csrPem, ['web 1']), /neither a DNS name nor an IP/);
    });

    it('needs pki init first', async () => {
      await assert.rejects(signAgentCsr(join(dir, 'none'), csrPem, ['web1']), /qfleet pki init/);
    });
  });

  describe('qfleetd tls-request (the agent side of the CSR)', () => {
    it('keeps the key on the host, mode 0600 in a 0700 directory, and reuses it unless --rotate', async () => {
      const d = join(dir, 'tls-req');
      const a = await makeAgentCsr({ dir: d, name: 'Host-1', ips: ['127.0.0.1'] });
      assert.equal(mode(d), 0o700);
      assert.equal(mode(a.keyPath), 0o600);
      const key = readFileSync(a.keyPath, 'utf8');
      const csr = new x509.Pkcs10CertificateRequest(a.csrPem);
      assert.ok(await csr.verify());
      assert.equal(csr.subject, 'CN=host-1');
      const b = await makeAgentCsr({ dir: d, name: 'host-1' });
      assert.equal(b.newKey, false);
      assert.equal(readFileSync(a.keyPath, 'utf8'), key);
      const c = await makeAgentCsr({ dir: d, name: 'host-1', rotate: true });
      assert.equal(c.newKey, true);
      assert.notEqual(readFileSync(a.keyPath, 'utf8'), key);
      assert.equal(mode(a.keyPath), 0o600);
      assert.equal(a.csrPem.includes('PRIVATE'), false);
    });

    it('refuses a bad name or address', async () => {
      await assert.rejects(makeAgentCsr({ dir: join(dir, 'x'), name: 'a b' }), /not a host name/);
      await assert.rejects(makeAgentCsr({ dir: join(dir, 'x'), name: 'a', ips: ['300.1.1.1'] }), /not an IP/);
    });
  });
});
