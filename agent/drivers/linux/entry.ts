import { CD_SCRIPT } from '../../runner/ns-scripts.js';
import type { ContainerRef } from '../container-config.js';
import type { ContainerCgroups } from './cgroups.js';
import { resolveRunAs } from './container-ids.js';
import { CONTAINER_PATH } from './host-paths.js';
import { INNER_BUSYBOX, type LinuxNamespaces } from './namespaces.js';

/** How a command gets into a container: the argv before it, its environment, the cgroups it joins. */
export interface Entry {
  /** Prepended to the command inside (chroot ROOT …, or nsenter … --). */
  readonly prefix: readonly string[];
  /** PATH, HOME, then the container's configured environment. */
  readonly env: Readonly<Record<string, string>>;
  readonly joinCgroups: readonly string[];
}

/**
 * The way into a container for services, exec and console. chroot: chroot(8)
 * (with --userspec for a configured user). namespaces: nsenter into the
 * init's namespaces, user namespace included, so what runs has capabilities
 * only inside; the user as numbers (-S/-G) looked up in the container's own
 * /etc/passwd and /etc/group by the driver, since a base need not have su.
 * A working directory is entered by a one-line script after entering
 * (nsenter's --wd=DIR would open DIR on the host): the container's /bin/sh
 * for chroot, the init's static busybox for namespaces.
 */
export function entryFor(ref: ContainerRef, root: string, ns: LinuxNamespaces, cgroups: ContainerCgroups): Entry {
  const { config } = ref;
  const runAs = resolveRunAs(root, ref.name, config.user, config.group);
  const env = { PATH: CONTAINER_PATH, HOME: runAs.home, ...config.env };
  const asUser = runAs.uid !== 0 || runAs.gid !== 0;
  const cd = config.workdir && config.workdir !== '/' ? [config.workdir] : [];
  const prefix = config.isolation === 'namespaces'
    ? [...ns.enterArgv(ref, runAs.uid, runAs.gid), ...(cd.length ? [INNER_BUSYBOX, 'sh', '-c', CD_SCRIPT, 'qfleet-cd', ...cd] : [])]
    : ['chroot', ...(asUser ? [`--userspec=${runAs.uid}:${runAs.gid}`] : []), root, ...(cd.length ? ['/bin/sh', '-c', CD_SCRIPT, 'qfleet-cd', ...cd] : [])];
  return { prefix, env, joinCgroups: cgroups.procsFiles(ref.name) };
}
