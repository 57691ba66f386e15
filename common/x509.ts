// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs
// the Reflect metadata polyfill loaded before it: this module is the one place
// qfleet imports the library (agent and controller alike), so the order is fixed here.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** ECDSA P-256 with SHA-256: every qfleet key and signature. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** DER bytes as PEM: base64 in lines of 64, between BEGIN and END lines with `label`. */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})(?!$)/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A fresh ECDSA P-256 key pair (extractable, for signing) and its private key as PKCS#8 PEM. */
export async function generateKeyPair(): Promise<{ keys: webcrypto.CryptoKeyPair; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const der = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { keys, keyPem: toPem(der, 'PRIVATE KEY') };
}

/**
 * A DNS name a certificate may carry (lower case, no trailing dot): labels of
 * 1-63 letters, digits, '-' and '_' (not at either end), 253 bytes at most.
 */
export function isDnsName(name: string): boolean {
  return /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(name);
}
