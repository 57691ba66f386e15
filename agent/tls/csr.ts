import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { AGENT_TLS_FILES } from '../../common/agent-layout.js';
import { writeFileAtomicSync } from '../../common/atomic-write.js';
import { EC_P256, generateKeyPair, isDnsName, x509 } from '../../common/x509.js';
import { InvalidArgumentError } from '../errors.js';


export interface TlsRequestOptions {
  readonly dir: string;
  /** The host's DNS name, the CSR's subject CN and first DNS SAN. */
  readonly name: string;
  readonly ips?: readonly string[];
  /** Make a new key even if DIR/agent.key exists. */
  readonly rotate?: boolean;
}

/**
 * `qfleetd tls-request`: makes (or reuses) the agent's private key in DIR,
 * mode 0600 in a 0700 directory, and returns a CSR for it. The key never leaves
 * the host; the controller signs the CSR and decides the certificate's names.
 */
export async function makeAgentCsr(opts: TlsRequestOptions): Promise<{ csrPem: string; keyPath: string; newKey: boolean }> {
  const name = opts.name.trim().toLowerCase();
  if (!isDnsName(name)) {
    throw new InvalidArgumentError(`--name ${JSON.stringify(opts.name)} is not a host name.`);
  }
  const ips = [...(opts.ips ?? [])];
  for (const ip of ips) if (!isIP(ip)) throw new InvalidArgumentError(`--ip ${JSON.stringify(ip)} is not an IP address.`);

  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  chmodSync(opts.dir, 0o700);
  const keyPath = join(opts.dir, AGENT_TLS_FILES.key);
  let keys: webcrypto.CryptoKeyPair;
  const newKey = opts.rotate || !existsSync(keyPath);
  if (newKey) {
    const made = await generateKeyPair();
    keys = made.keys;
    writeFileAtomicSync(keyPath, made.keyPem, { mode: 0o600 });
  } else {
    if ((statSync(keyPath).mode & 0o077) !== 0) chmodSync(keyPath, 0o600);
    keys = await importKeyPair(readFileSync(keyPath, 'utf8'));
  }
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }, ...ips.map((value) => ({ type: 'ip' as const, value }))]),
    ],
  });
  return { csrPem: csr.toString('pem'), keyPath, newKey };
}

/** A PKCS#8 EC P-256 private key PEM as a WebCrypto key pair. */
async function importKeyPair(pem: string): Promise<webcrypto.CryptoKeyPair> {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new InvalidArgumentError('the existing agent key is not an ECDSA P-256 key; rerun with --rotate to make a new one.');
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, EC_P256, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, EC_P256, true, ['verify']);
  return { privateKey, publicKey } as webcrypto.CryptoKeyPair;
}
