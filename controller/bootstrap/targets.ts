import { DEFAULT_AGENT_PORT, unbracket, type HostTarget } from '../fleet/host-target.js';
import { resolveTargets } from '../fleet/targets.js';

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

/**
 * Positional targets: `[user@]address[:port]` when there is no inventory (or
 * when written with @ or :port); with an inventory (--inventory, else
 * $QFLEET_INVENTORY from `env`), a host pattern resolved through it (joined
 * with ':' as Ansible's union), else -H, else all. `socket` is the local
 * agent's (hosts with qfleet_connection: local).
 */
export function resolveBootstrapTargets(
  args: readonly string[],
  g: { inventory?: string; hosts?: string; socket: string },
  env: NodeJS.ProcessEnv,
): HostTarget[] {
  const inventory = g.inventory ?? (env.QFLEET_INVENTORY || undefined);
  if (!inventory) {
    if (!args.length) throw new Error('no hosts: give [user@]address[:port] arguments, or --inventory FILE');
    return args.map((a) => parseHostSpec(a));
  }
  const direct = args.filter((a) => a.includes('@'));
  const patterns = args.filter((a) => !a.includes('@'));
  const fromInv = patterns.length || !direct.length
    ? resolveTargets({ inventory, hosts: patterns.length ? patterns.join(':') : g.hosts, socket: g.socket }, env).hosts
    : [];
  return [...fromInv, ...direct.map((a) => parseHostSpec(a))];
}
