import { Inventory, InventoryError } from '../inventory/inventory.js';
import { loadInventory } from '../inventory/load.js';
import { PatternError, selectHosts, splitPattern } from '../inventory/pattern.js';
import { AGENT_SOCKET_PATH_VAR, DEFAULT_AGENT_PORT, LOCAL_HOST_NAME, type HostTarget } from './host-target.js';
import { byCodePoint } from './selection.js';

/** A usage error in choosing hosts: unknown host or group, bad inventory, -H without one. */
export class TargetError extends Error {}

export interface Targets {
  /** An inventory is in use: output names hosts (HOST column, `host:` prefixes, per-host JSON). */
  readonly fleet: boolean;
  /** The targeted hosts, sorted by name. */
  readonly hosts: readonly HostTarget[];
  readonly inventory: Inventory | undefined;
}

/** The local agent, reached over its socket: the explicit choice of running without an inventory. */
export function localTarget(socket: string): HostTarget {
  return {
    name: LOCAL_HOST_NAME, address: LOCAL_HOST_NAME, sshPort: 22, sshUser: undefined, agentPort: DEFAULT_AGENT_PORT,
    connection: 'local', vars: { [AGENT_SOCKET_PATH_VAR]: socket },
  };
}

/**
 * --inventory FILE (else $QFLEET_INVENTORY) and -H PATTERN (default `all`).
 * With no inventory the target is the local agent over its unix socket, and
 * -H may only name it (`localhost` or `all`).
 */
export function resolveTargets(opts: { inventory?: string | undefined; hosts?: string | undefined; socket: string }, env: NodeJS.ProcessEnv = process.env): Targets {
  const file = opts.inventory ?? (env.QFLEET_INVENTORY || undefined);
  if (!file) {
    if (opts.hosts !== undefined) {
      const bad = splitPattern(opts.hosts).filter((t) => t !== LOCAL_HOST_NAME && t !== 'all');
      if (bad.length) throw new TargetError(`no inventory, so there is no host ${bad.join(', ')}: give --inventory FILE or set QFLEET_INVENTORY (without one, the target is the local agent).`);
    }
    return { fleet: false, hosts: [localTarget(opts.socket)], inventory: undefined };
  }
  let inventory: Inventory;
  let names: string[];
  try {
    inventory = loadInventory(file);
    names = selectHosts(inventory, opts.hosts ?? 'all');
  } catch (e) {
    if (e instanceof InventoryError || e instanceof PatternError) throw new TargetError(e.message);
    throw e;
  }
  if (names.length === 0) throw new TargetError(`the host pattern ${JSON.stringify(opts.hosts ?? 'all')} selects no host in ${file}`);
  let hosts: HostTarget[];
  try {
    hosts = names.sort(byCodePoint).map((n) => inventory.target(n));
  } catch (e) {
    if (e instanceof InventoryError) throw new TargetError(e.message);
    throw e;
  }
  return { fleet: true, hosts, inventory };
}
