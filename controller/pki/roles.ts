/**
 * Role encoding in client certificates (the agent reads the same encoding,
 * agent/tls/roles.ts; a test checks the two agree):
 *
 *   subject  O=qfleet, OU=<role>, CN=<who>       role: operator | read-only
 *   extendedKeyUsage  clientAuth
 *
 * Exactly one OU. The CA signs only certificates the controller builds, never a
 * CSR's own subject or extensions. Agent certificates: O=qfleet, OU=agent,
 * serverAuth only, so they are refused as client certificates.
 */
export const ROLE_ORGANIZATION = 'qfleet';
export const CLIENT_ROLES = ['operator', 'read-only'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];
export const AGENT_ROLE = 'agent';
