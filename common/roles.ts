/**
 * How a client certificate carries its role: the controller's PKI writes this
 * encoding (controller/pki/ca.ts) and the agent reads it (agent/server/auth.ts):
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
