import * as grpc from '@grpc/grpc-js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';

export interface TlsFiles {
  /** The agent's certificate, signed by the fleet CA (tls_cert). */
  readonly cert: string;
  /** The agent's private key, made on this host by `qfleetd tls-request` (tls_key). */
  readonly key: string;
  /** The fleet CA: the only issuer whose client certificates are accepted (tls_ca). */
  readonly ca: string;
}

export interface ServerTlsIdentity {
  readonly credentials: grpc.ServerCredentials;
  readonly caPem: string;
  readonly subject: string;
  readonly validTo: string;
}

function read(kind: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new FailedPreconditionError(`cannot read the TLS ${kind} ${path}: ${(e as Error).message}`);
  }
}

/**
 * Server credentials for the TCP listener: the agent's key and certificate,
 * the fleet CA as the only trusted root, and a client certificate required
 * (checkClientCertificate: the TLS handshake fails without one from the CA,
 * or with an expired one). Refuses files that do not fit together.
 */
export function loadServerTls(files: TlsFiles): ServerTlsIdentity {
  const certPem = read('certificate (tls_cert)', files.cert);
  const keyPem = read('key (tls_key)', files.key);
  const caPem = read('CA certificate (tls_ca)', files.ca);
  // Refused, not tightened: a key the operator placed is theirs to fix (tls-request tightens only the key it made).
  if ((statSync(files.key).mode & 0o077) !== 0) {
    throw new FailedPreconditionError(`the TLS key ${files.key} is readable by others; chmod 600 it.`);
  }
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    ca = new X509Certificate(caPem);
    createPrivateKey(keyPem);
  } catch (e) {
    throw new InvalidArgumentError(`the TLS files are not PEM certificates and key: ${(e as Error).message}`);
  }
  if (!ca.ca) throw new InvalidArgumentError(`${files.ca} is not a CA certificate.`);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    throw new FailedPreconditionError(`${files.cert} was not issued by the CA in ${files.ca}.`);
  }
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new FailedPreconditionError(`${files.key} is not the key of ${files.cert}; request a new certificate (qfleetd tls-request).`);
  }
  if (Date.parse(cert.validTo) <= Date.now()) {
    throw new FailedPreconditionError(`${files.cert} expired on ${cert.validTo}; re-run qfleet bootstrap to renew it.`);
  }
  return {
    credentials: grpc.ServerCredentials.createSsl(caPem, [{ private_key: keyPem, cert_chain: certPem }], true),
    caPem: caPem.toString('utf8'),
    subject: cert.subject.replace(/\n/g, ', '),
    validTo: cert.validTo,
  };
}
