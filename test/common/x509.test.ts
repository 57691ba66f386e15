import { strict as assert } from 'node:assert';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { EC_P256, generateKeyPair, isDnsName, toPem, x509 } from '../../common/x509.js';

describe('common/x509: the X.509 helpers agent and controller share', () => {
  it('toPem: base64 in lines of 64 between the labels, as openssl writes it', () => {
    const der = Buffer.alloc(100, 0xab);
    const pem = toPem(der, 'TEST');
    const lines = pem.trimEnd().split('\n');
    assert.equal(lines[0], '-----BEGIN TEST-----');
    assert.equal(lines.at(-1), '-----END TEST-----');
    assert.deepEqual(lines.slice(1, -1).map((l) => l.length), [64, 64, 8]);
    assert.equal(Buffer.from(lines.slice(1, -1).join(''), 'base64').equals(der), true);
    // Exactly 48 bytes make one full line: no empty line before END.
    assert.equal(toPem(Buffer.alloc(48), 'X').split('\n').length, 4);
  });

  it('generateKeyPair: an ECDSA P-256 key whose PEM node reads, and with which the library signs', async () => {
    const { keys, keyPem } = await generateKeyPair();
    const k = createPrivateKey(keyPem);
    assert.equal(k.asymmetricKeyType, 'ec');
    assert.equal(k.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=t', keys, signingAlgorithm: EC_P256 });
    assert.equal(new X509Certificate(cert.toString('pem')).subject, 'CN=t');
  });

  it('isDnsName: lower-case labels of letters, digits, - and _; no empty label, no label over 63', () => {
    for (const ok of ['web1', 'web-1.example.org', '_srv.example', 'a'.repeat(63)]) assert.equal(isDnsName(ok), true, ok);
    for (const bad of ['', 'Web1', '-web', 'web-', 'a..b', 'web1.', 'a'.repeat(64), 'x y', '192.0.2.1:22']) assert.equal(isDnsName(bad), false, bad);
  });
});
