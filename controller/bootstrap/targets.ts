import { DEFAULT_AGENT_PORT, unbracket, type HostTarget } from '../fleet/host-target.js';

/**
 * A host given on the command line without an inventory: `[user@]address[:port]`
 * (IPv6 as `[addr]:port`). The name is the address.
 */
export function parseHostSpec(spec: string): HostTarget {
  const m = /^(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s[\]]+)(?::(\d{1,5}))?$/.exec(spec);
  if (!m) throw new Error(`cannot read host ${JSON.stringify(spec)}: expected [user@]address[:port]`);
  const port = m[3] ? Number(m[3]) : 22;
  if (port < 1 || port > 65535) throw new Error(`bad port in ${JSON.stringify(spec)}`);
  const address = unbracket(m[2]!);
  return { name: address, address, sshPort: port, sshUser: m[1], agentPort: DEFAULT_AGENT_PORT, vars: {} };
}
