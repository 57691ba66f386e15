import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { AGENT_ROLE, isClientRole, roleSubject, ROLE_ORGANIZATION, type ClientRole } from '../../common/roles.js';
import { EC_P256, generateKeyPair, isDnsName, x509 } from '../../common/x509.js';
import { anyExists, ensurePrivateDir, writePublicFile, writeSecretFile } from './files.js';
import { clientNameProblem } from './client-name.js';
import { PKI_FILES, pkiPath } from './paths.js';

import { PkiError } from './errors.js';
import { unbracket } from '../fleet/host-target.js';
// Kept in its own module so that connecting to agents never loads the X.509 code.
export { PkiError };

const DAY_MS = 86_400_000;
/** Certificates start this far in the past, so a host whose clock is a little behind accepts them. */
const BACKDATE_MS = 5 * 60_000;
export const CA_DAYS = 3650;
export const AGENT_DAYS = 365;
export const CLIENT_DAYS = 365;
export const OPERATOR_NAME = 'qfleet-controller';

export interface LoadedCa {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  readonly privateKey: webcrypto.CryptoKey;
}

export interface IssuedPem {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A positive 128-bit serial number (hex), as RFC 5280 asks: unique and unpredictable. */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

function validity(days: number, now = Date.now()): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0 || days > 3650 * 3) throw new PkiError(`days must be between 1 and ${3650 * 3}, not ${days}.`);
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** Makes a self-signed ECDSA P-256 CA certificate (path length 0: it signs only leaf certificates). */
export async function createCaCertificate(opts: { days?: number; commonName?: string } = {}): Promise<IssuedPem> {
  const { keys, keyPem } = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `O=${ROLE_ORGANIZATION}, CN=${opts.commonName ?? 'qfleet fleet CA'}`,
    ...validity(opts.days ?? CA_DAYS),
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem };
}

/** Reads the CA of a PKI directory; a clear error when `qfleet pki init` has not run. */
export async function loadCa(pkiDir: string): Promise<LoadedCa> {
  const certPath = pkiPath(pkiDir, 'caCert');
  const keyPath = pkiPath(pkiDir, 'caKey');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    throw new PkiError(`no CA in ${pkiDir}: run \`qfleet pki init\` first.`);
  }
  return caFromPem(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8'));
}

export async function caFromPem(certPem: string, keyPem: string): Promise<LoadedCa> {
  const cert = new x509.X509Certificate(certPem);
  const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
  return { cert, certPem: cert.toString('pem'), privateKey };
}

export interface IssueParams {
  readonly publicKey: webcrypto.CryptoKey | x509.PublicKey;
  /** Distinguished name, e.g. `O=qfleet, OU=operator, CN=grafana`. */
  readonly subject: string;
  readonly extendedKeyUsages: readonly string[];
  readonly subjectAltNames?: readonly { type: 'dns' | 'ip'; value: string }[];
  readonly days?: number;
  /** Explicit validity (tests make expired certificates with it). */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

/** Signs one leaf certificate with the CA. Everything in it is chosen here; nothing is copied from a request. */
export async function issueCertificate(ca: LoadedCa, p: IssueParams): Promise<string> {
  const v = validity(p.days ?? 365);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([...p.extendedKeyUsages], false),
    await x509.SubjectKeyIdentifierExtension.create(p.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
  ];
  if (p.subjectAltNames?.length) extensions.push(new x509.SubjectAlternativeNameExtension([...p.subjectAltNames], false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: p.subject,
    issuer: ca.cert.subject,
    notBefore: p.notBefore ?? v.notBefore,
    notAfter: p.notAfter ?? v.notAfter,
    publicKey: p.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: EC_P256,
    extensions,
  });
  return cert.toString('pem');
}

/** Client names: what a CN may hold without any escaping. */
export function checkClientName(name: string): void {
  const problem = clientNameProblem(name);
  if (problem) throw new PkiError(`client name ${JSON.stringify(name)}: ${problem}`);
}

/** Where pki issue writes; never the PKI directory itself (its client.* and ca.* are the controller's own). */
function clientOutDir(pkiDir: string, outDir: string | undefined): string {
  const out = outDir ?? join(pkiDir, 'clients');
  if (resolve(out) === resolve(pkiDir)) throw new PkiError(`--out ${out} is the PKI directory: the controller's own certificate and the CA live there; choose another directory.`);
  return out;
}

/** A new key and a client certificate with a role, in memory (qfleet pki issue writes them out). */
export async function makeClientCertificate(
  ca: LoadedCa,
  name: string,
  opts: { role: ClientRole; days?: number; notBefore?: Date; notAfter?: Date },
): Promise<IssuedPem> {
  checkClientName(name);
  if (!isClientRole(opts.role)) throw new PkiError(`unknown role ${opts.role}.`);
  const { keys, keyPem } = await generateKeyPair();
  const certPem = await issueCertificate(ca, {
    publicKey: keys.publicKey,
    subject: roleSubject(opts.role, name),
    extendedKeyUsages: [x509.ExtendedKeyUsage.clientAuth],
    days: opts.days ?? CLIENT_DAYS,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
  });
  return { certPem, keyPem };
}

export interface InitResult {
  readonly pkiDir: string;
  readonly caCert: string;
  readonly clientCert: string;
}

/**
 * `qfleet pki init`: a CA (ECDSA P-256, 10 years) and the controller's own
 * operator certificate, in a 0700 directory, keys 0600. An existing CA is
 * never replaced without `force` (every agent's certificate depends on it).
 */
export async function initPki(pkiDir: string, opts: { force?: boolean; caDays?: number } = {}): Promise<InitResult> {
  const all = (Object.keys(PKI_FILES) as (keyof typeof PKI_FILES)[]).map((k) => pkiPath(pkiDir, k));
  const present = anyExists(all);
  if (present.length && !opts.force) {
    throw new PkiError(
      `a CA already exists in ${pkiDir} (${present.join(', ')}); refusing to replace it: every agent trusts it. ` +
        'Use --force to make a new CA (then re-run bootstrap on every host).',
    );
  }
  ensurePrivateDir(pkiDir);
  const ca = await createCaCertificate({ days: opts.caDays });
  const loaded = await caFromPem(ca.certPem, ca.keyPem);
  const operator = await makeClientCertificate(loaded, OPERATOR_NAME, { role: 'operator', days: CA_DAYS });
  // Key first, certificate last: a half-written PKI has no ca.crt to be trusted.
  writeSecretFile(pkiPath(pkiDir, 'caKey'), ca.keyPem);
  writeSecretFile(pkiPath(pkiDir, 'clientKey'), operator.keyPem);
  writePublicFile(pkiPath(pkiDir, 'clientCert'), operator.certPem);
  writePublicFile(pkiPath(pkiDir, 'caCert'), ca.certPem);
  return { pkiDir, caCert: pkiPath(pkiDir, 'caCert'), clientCert: pkiPath(pkiDir, 'clientCert') };
}

export interface IssuedFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/**
 * `qfleet pki issue NAME`: a key and a client certificate for other tooling
 * (role operator, or read-only for monitoring), written to outDir as NAME.crt,
 * NAME.key (0600) and ca.crt. Refuses to overwrite unless `force`.
 */
export async function issueClientFiles(
  pkiDir: string,
  name: string,
  opts: { role: ClientRole; days?: number; outDir?: string; force?: boolean },
): Promise<IssuedFiles> {
  checkClientName(name);
  const ca = await loadCa(pkiDir);
  const outDir = clientOutDir(pkiDir, opts.outDir);
  const files = { cert: join(outDir, `${name}.crt`), key: join(outDir, `${name}.key`), ca: join(outDir, PKI_FILES.caCert) };
  const present = anyExists([files.cert, files.key]);
  if (present.length && !opts.force) throw new PkiError(`${present.join(', ')} already exist; use --force to replace them.`);
  const issued = await makeClientCertificate(ca, name, { role: opts.role, days: opts.days });
  ensurePrivateDir(outDir);
  writeSecretFile(files.key, issued.keyPem);
  writePublicFile(files.cert, issued.certPem);
  writePublicFile(files.ca, ca.certPem);
  return files;
}

/** An agent certificate's names: IPs go in as IP SANs, the rest as lower-case DNS names. */
export function agentSubjectAltNames(names: readonly string[]): { type: 'dns' | 'ip'; value: string }[] {
  const out: { type: 'dns' | 'ip'; value: string }[] = [];
  for (const raw of names) {
    const n = unbracket(raw.trim());
    if (isIP(n)) {
      if (!out.some((s) => s.type === 'ip' && s.value === n)) out.push({ type: 'ip', value: n });
      continue;
    }
    const dns = n.toLowerCase().replace(/\.$/, '');
    if (!isDnsName(dns)) {
      throw new PkiError(`${JSON.stringify(raw)} is neither a DNS name nor an IP address.`);
    }
    if (!out.some((s) => s.type === 'dns' && s.value === dns)) out.push({ type: 'dns', value: dns });
  }
  if (!out.length) throw new PkiError('an agent certificate needs at least one name or address.');
  return out;
}

/**
 * A CSR's public key, once its signature verifies (the requester holds the
 * key) and the key is ECDSA P-256, as everything in a qfleet fleet is.
 * Nothing else of the request is used. PEM or DER.
 */
async function verifiedCsrKey(csr: string | Buffer, whose: string, hint = ''): Promise<x509.PublicKey> {
  const text = typeof csr === 'string' ? csr : csr.subarray(0, 64).toString('latin1').startsWith('-----BEGIN') ? csr.toString('utf8') : undefined;
  const label = text && /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (label && label !== 'CERTIFICATE REQUEST' && label !== 'NEW CERTIFICATE REQUEST') {
    throw new PkiError(`that file holds a PEM ${label}, not a certificate request (BEGIN CERTIFICATE REQUEST).`);
  }
  let req: x509.Pkcs10CertificateRequest;
  try {
    req = new x509.Pkcs10CertificateRequest(text ?? new Uint8Array(csr as Buffer));
  } catch (e) {
    throw new PkiError(`not a certificate request (PEM or DER): ${(e as Error).message}`);
  }
  const alg = req.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
    throw new PkiError(`the certificate request's key is ${[alg.name ?? '?', alg.namedCurve].filter(Boolean).join(' ')}; ${whose} use ECDSA P-256${hint}.`);
  }
  let ok = false;
  try {
    ok = await req.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError('the certificate request does not verify: its signature does not match its key.');
  return req.publicKey;
}

/**
 * Signs an agent's CSR (made on its host by `qfleetd tls-request`; the key
 * never leaves it). The CSR's signature must verify (it proves the agent holds
 * the key) and its key must be ECDSA P-256. Its subject and requested
 * extensions are ignored: `names` (the host's inventory name and address, as
 * bootstrap knows them) go in the SAN, EKU serverAuth only, ~1 year.
 */
export async function signAgentCsr(
  pkiDir: string,
  csrPem: string,
  names: readonly string[],
  opts: { days?: number } = {},
): Promise<{ certPem: string; caPem: string }> {
  const publicKey = await verifiedCsrKey(csrPem, 'qfleet agents');
  const sans = agentSubjectAltNames(names);
  const ca = await loadCa(pkiDir);
  const certPem = await issueCertificate(ca, {
    publicKey,
    subject: roleSubject(AGENT_ROLE, sans[0]!.value),
    extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth],
    subjectAltNames: sans,
    days: opts.days ?? AGENT_DAYS,
  });
  return { certPem, caPem: ca.certPem };
}

/**
 * `qfleet pki issue NAME --csr FILE`: a client certificate for a key made
 * where the tool runs (so the private key never travels). Only the CSR's key
 * is used; the subject (CN=NAME, the role as OU) and clientAuth are the CA's.
 * Writes NAME.crt and ca.crt to outDir; refuses to overwrite unless `force`.
 */
export async function signClientCsrFiles(
  pkiDir: string,
  name: string,
  csr: string | Buffer,
  opts: { role: ClientRole; days?: number; outDir?: string; force?: boolean },
): Promise<Omit<IssuedFiles, 'key'>> {
  checkClientName(name);
  if (!isClientRole(opts.role)) throw new PkiError(`unknown role ${opts.role}.`);
  const publicKey = await verifiedCsrKey(
    csr,
    'qfleet client certificates',
    ` (make one with: openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=${name})`,
  );
  const ca = await loadCa(pkiDir);
  const outDir = clientOutDir(pkiDir, opts.outDir);
  const files = { cert: join(outDir, `${name}.crt`), ca: join(outDir, PKI_FILES.caCert) };
  const staleKey = join(outDir, `${name}.key`);
  const present = anyExists([files.cert, staleKey]);
  if (present.length && !opts.force) {
    throw new PkiError(`${present.join(', ')} already exist${present.length > 1 ? '' : 's'}; use --force to replace ${present.length > 1 ? 'them' : 'it'} (a key made here before is removed: it would not match).`);
  }
  if (existsSync(files.ca) && readFileSync(files.ca, 'utf8') !== ca.certPem && !opts.force) {
    throw new PkiError(`${files.ca} holds another CA's certificate; use --force to replace it.`);
  }
  const certPem = await issueCertificate(ca, {
    publicKey,
    subject: roleSubject(opts.role, name),
    extendedKeyUsages: [x509.ExtendedKeyUsage.clientAuth],
    days: opts.days ?? CLIENT_DAYS,
  });
  // Only public files: an existing directory keeps its mode (a tool's group may read it); a new one is 0755.
  mkdirSync(outDir, { recursive: true, mode: 0o755 });
  rmSync(staleKey, { force: true });
  writePublicFile(files.cert, certPem);
  writePublicFile(files.ca, ca.certPem);
  return files;
}
