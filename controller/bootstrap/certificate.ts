/**
 * Whether an agent's installed certificate can stay: bootstrap re-issues it
 * only when it is missing or unusable, its names differ from what the host
 * would get now, the fleet CA changed, its key is not the host's key, or it
 * expires within CERT_RENEW_WITHIN_DAYS.
 */
import { X509Certificate } from 'node:crypto';
import { agentSubjectAltNames } from '../pki/ca.js';
import { NO_CERTIFICATE } from './changes.js';

/** An agent certificate this close to its end is re-issued by the next bootstrap (agent certificates last about a year). */
export const CERT_RENEW_WITHIN_DAYS = 30;

const DAY_MS = 86_400_000;

/** What the host has, as the probe read it (the key itself never leaves the host; only whether it matches). */
export interface InstalledTls {
  /** agent.crt, PEM; undefined when missing. */
  readonly cert?: string;
  /** ca.crt, PEM; undefined when missing. */
  readonly ca?: string;
  /** agent.key is the private key of agent.crt. */
  readonly keyMatches: boolean;
}

export type CertificateVerdict =
  | { readonly reissue: false; readonly expiresInDays: number }
  | { readonly reissue: true; readonly why: string };

function parse(pem: string | undefined): X509Certificate | undefined {
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** The SAN entries of a certificate, in Node's form (`DNS:web1, IP Address:192.0.2.10`), as a count. */
function sanCount(x: X509Certificate): number {
  return (x.subjectAltName ?? '').split(', ').filter(Boolean).length;
}

/**
 * `names`: the host's inventory name and address, as bootstrap signs them
 * (agentSubjectAltNames); `caPem`: the controller's CA now.
 */
export function certificateVerdict(installed: InstalledTls, want: { readonly caPem: string; readonly names: readonly string[]; readonly now: number }): CertificateVerdict {
  const cert = parse(installed.cert);
  if (!installed.cert) return { reissue: true, why: NO_CERTIFICATE };
  if (!cert) return { reissue: true, why: 'the installed one cannot be read' };
  const ca = parse(want.caPem);
  if (!ca) throw new Error('the fleet CA certificate cannot be read');
  const hostCa = parse(installed.ca);
  if (!hostCa || !hostCa.raw.equals(ca.raw) || !cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return { reissue: true, why: 'the fleet CA changed' };
  if (!installed.keyMatches) return { reissue: true, why: "it is not for the host's key" };
  const sans = agentSubjectAltNames(want.names);
  const has = sans.every((s) => (s.type === 'ip' ? cert.checkIP(s.value) !== undefined : cert.checkHost(s.value, { subject: 'never', wildcards: false }) !== undefined));
  if (!has || sanCount(cert) !== sans.length) {
    return { reissue: true, why: `its names changed (${cert.subjectAltName ?? 'none'}; now ${sans.map((s) => `${s.type === 'ip' ? 'IP Address' : 'DNS'}:${s.value}`).join(', ')})` };
  }
  const left = (Date.parse(cert.validTo) - want.now) / DAY_MS;
  if (left <= 0) return { reissue: true, why: `it expired on ${new Date(cert.validTo).toISOString().slice(0, 10)}` };
  if (left <= CERT_RENEW_WITHIN_DAYS) return { reissue: true, why: `it expires in ${Math.floor(left)} days, within the ${CERT_RENEW_WITHIN_DAYS}-day renewal window` };
  if (Date.parse(cert.validFrom) > want.now + DAY_MS) return { reissue: true, why: 'it is not valid yet' };
  return { reissue: false, expiresInDays: Math.floor(left) };
}
