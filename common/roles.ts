/**
 * How a client certificate carries its role: the controller's PKI writes this
 * encoding (roleSubject, for controller/pki/ca.ts) and the agent reads it (roleOf,
 * for agent/server/auth.ts):
 *
 *   subject  O=qfleet, OU=<role>, CN=<who>
 *   extendedKeyUsage  clientAuth
 *
 * with exactly one OU, one of CLIENT_ROLES. The fleet CA signs only what the
 * controller builds (it never copies a CSR's subject or extensions), so the OU
 * is as trustworthy as the CA. Agent (server) certificates carry OU=agent and
 * serverAuth only, so an agent's key cannot be used to call another agent.
 */
export const ROLE_ORGANIZATION = 'qfleet';
export const CLIENT_ROLES = ['operator', 'read-only'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];
export const AGENT_ROLE = 'agent';

export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export function isClientRole(s: string): s is ClientRole {
  return (CLIENT_ROLES as readonly string[]).includes(s);
}

/** The subject a certificate of `role` for `cn` carries (cn is checked by the caller: it goes in unescaped). */
export function roleSubject(role: ClientRole | typeof AGENT_ROLE, cn: string): string {
  return `O=${ROLE_ORGANIZATION}, OU=${role}, CN=${cn}`;
}

/** A parsed distinguished name: its values of one attribute type (@peculiar/x509's Name is one). */
export interface SubjectFields {
  getField(type: string): string[];
}

/**
 * The role a subject carries as roleSubject writes it: exactly one O, qfleet,
 * and exactly one OU, a known role; anything else carries none (undefined).
 * Takes the parsed name, so this module loads no X.509 library.
 */
export function roleOf(subject: SubjectFields): ClientRole | typeof AGENT_ROLE | undefined {
  const orgs = subject.getField('O');
  const ous = subject.getField('OU');
  if (orgs.length !== 1 || orgs[0] !== ROLE_ORGANIZATION || ous.length !== 1) return undefined;
  const role = ous[0]!;
  return isClientRole(role) || role === AGENT_ROLE ? role : undefined;
}
