import { UsageError, type CliContext } from '../context.js';
import type { HostTarget } from './host-target.js';

/**
 * console and exec work on one container of one host: `HOST/NAME`. Without an
 * inventory, NAME alone (or localhost/NAME) is the local agent's; with one, NAME
 * alone is allowed when -H selects exactly one host.
 */
export function oneContainer(ctx: CliContext, arg: string): { host: HostTarget; name: string } {
  const slash = arg.indexOf('/');
  const hostName = slash >= 0 ? arg.slice(0, slash) : undefined;
  const name = slash >= 0 ? arg.slice(slash + 1) : arg;
  if (!name) throw new UsageError(`name a container: HOST/NAME or NAME, not ${JSON.stringify(arg)}.`);
  const { inventory, hosts } = ctx.targets();
  if (hostName === undefined) {
    if (hosts.length !== 1) throw new UsageError(`${hosts.length} hosts are targeted: write HOST/${name}.`);
    return { host: hosts[0]!, name };
  }
  if (!inventory) {
    if (hostName !== hosts[0]!.name) throw new UsageError(`no inventory, so there is no host ${hostName}: give --inventory FILE or set QFLEET_INVENTORY.`);
    return { host: hosts[0]!, name };
  }
  if (!inventory.hasHost(hostName)) throw new UsageError(`no host ${JSON.stringify(hostName)} in ${inventory.source}.`);
  return { host: inventory.target(hostName), name };
}
