import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { HostTarget } from '../fleet/host-target.js';

/**
 * The names an agent's certificate must hold for the controller to accept it:
 * the host's inventory name and the address the controller dials
 * (ansible_host). Bootstrap passes these to signAgentCsr.
 */
export function agentCertNames(host: Pick<HostTarget, 'name' | 'address'>): string[] {
  return [...new Set([host.name, host.address])];
}

/**
 * The one identity rule, for every client that reaches an agent over TLS:
 * the agent's certificate (already verified against the fleet CA by TLS) must
 * be for the host it was meant to be: its SAN covers both the address dialled
 * and the inventory name. A certificate the CA signed for any other host
 * fails, even one presented from the right address.
 */
export function checkAgentIdentity(host: Pick<HostTarget, 'name' | 'address'>, cert: PeerCertificate): Error | undefined {
  for (const name of agentCertNames(host)) {
    const err = checkServerIdentity(name, cert);
    if (err) return new Error(`the agent's certificate is not for host ${host.name} (${name}): ${err.message}`);
  }
  return undefined;
}
