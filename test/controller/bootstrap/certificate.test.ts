import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgentCsr } from '../../../agent/tls/csr.js';
import { CERT_RENEW_WITHIN_DAYS, certificateVerdict } from '../../../controller/bootstrap/certificate.js';
import { initPki, pkiPath, signAgentCsr } from '../../../controller/pki/index.js';

const DAY = 86_400_000;

describe('bootstrap: whether an agent certificate is re-issued', () => {
  let dir: string;
  let caPem: string;
  let otherCaPem: string;
  let certPem: string;
  let otherCaCertPem: string;
  const names = ['web1', '192.0.2.10'];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-cert-'));
    await initPki(join(dir, 'pki'));
    await initPki(join(dir, 'other-pki'));
    caPem = readFileSync(pkiPath(join(dir, 'pki'), 'caCert'), 'utf8');
    otherCaPem = readFileSync(pkiPath(join(dir, 'other-pki'), 'caCert'), 'utf8');
    const { csrPem } = await makeAgentCsr({ dir: join(dir, 'agent'), name: 'web1', ips: ['192.0.2.10'] });
    certPem = (await signAgentCsr(join(dir, 'pki'), csrPem, names)).certPem;
    otherCaCertPem = (await signAgentCsr(join(dir, 'other-pki'), csrPem, names)).certPem;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const installed = (over: Partial<{ cert: string; ca: string; keyMatches: boolean }> = {}) => ({ cert: certPem, ca: caPem, keyMatches: true, ...over });
  const why = (v: ReturnType<typeof certificateVerdict>) => (v.reissue ? v.why : `kept, ${v.expiresInDays} days left`);

  it('renews within 30 days of expiry (a named constant)', () => {
    assert.equal(CERT_RENEW_WITHIN_DAYS, 30);
  });

  it('a certificate from this CA, for these names, on the host key, far from expiry, is kept', () => {
    const v = certificateVerdict(installed(), { caPem, names, now: Date.now() });
    assert.equal(v.reissue, false, why(v));
    assert.ok(!v.reissue && v.expiresInDays >= 363 && v.expiresInDays <= 365, why(v));
  });

  it('none installed, or unreadable', () => {
    assert.equal(why(certificateVerdict({ keyMatches: false }, { caPem, names, now: Date.now() })), 'none installed');
    assert.equal(why(certificateVerdict(installed({ cert: 'garbage' }), { caPem, names, now: Date.now() })), 'the installed one cannot be read');
  });

  it('the fleet CA changed: a new CA here, or another CA on the host', () => {
    assert.equal(why(certificateVerdict(installed(), { caPem: otherCaPem, names, now: Date.now() })), 'the fleet CA changed');
    assert.equal(why(certificateVerdict(installed({ ca: otherCaPem }), { caPem, names, now: Date.now() })), 'the fleet CA changed');
    assert.equal(why(certificateVerdict(installed({ cert: otherCaCertPem }), { caPem, names, now: Date.now() })), 'the fleet CA changed');
    assert.equal(why(certificateVerdict(installed({ ca: undefined }), { caPem, names, now: Date.now() })), 'the fleet CA changed');
  });

  it("not the host's key (agent.key replaced)", () => {
    assert.equal(why(certificateVerdict(installed({ keyMatches: false }), { caPem, names, now: Date.now() })), "it is not for the host's key");
  });

  it('names: another name, another address, one more or one fewer', () => {
    for (const want of [['web2', '192.0.2.10'], ['web1', '192.0.2.11'], ['web1', '192.0.2.10', 'web1.example'], ['web1']]) {
      assert.match(why(certificateVerdict(installed(), { caPem, names: want, now: Date.now() })), /^its names changed \(DNS:web1, IP Address:192\.0\.2\.10; now /, want.join());
    }
    assert.equal(certificateVerdict(installed(), { caPem, names: ['WEB1', '192.0.2.10'], now: Date.now() }).reissue, false, 'DNS names are case-insensitive');
  });

  it('near or past expiry', () => {
    const expires = Date.now() + 365 * DAY;
    assert.equal(certificateVerdict(installed(), { caPem, names, now: expires - 32 * DAY }).reissue, false);
    assert.match(why(certificateVerdict(installed(), { caPem, names, now: expires - 20 * DAY })), /^it expires in (19|20) days, within the 30-day renewal window$/);
    assert.match(why(certificateVerdict(installed(), { caPem, names, now: expires + 2 * DAY })), /^it expired on \d{4}-\d\d-\d\d$/);
  });
});
