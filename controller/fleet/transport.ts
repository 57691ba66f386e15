import { connectUnix } from '../client.js';
import type { ClientFactory } from './client-factory.js';
import type { HostTarget } from './host-target.js';

/**
 * Per-host transport. A host with the var `qfleet_socket` is reached over that
 * unix socket (the local agent; several agents on one machine; tests). Every
 * other host is reached over mutual TLS through the remote factory.
 */
export const UNIX_SOCKET_VAR = 'qfleet_socket';

export function socketOf(host: HostTarget): string | undefined {
  const s = host.vars[UNIX_SOCKET_VAR];
  return typeof s === 'string' && s ? s : undefined;
}

/** Reaches each host over the unix socket its qfleet_socket var names. */
export const unixSocketFactory: ClientFactory = (host) => {
  const socket = socketOf(host);
  if (!socket) throw new Error(`${host.name} has no ${UNIX_SOCKET_VAR}`);
  return connectUnix(socket);
};

export function perHostFactory(remote: ClientFactory, unix: ClientFactory = unixSocketFactory): ClientFactory {
  return (host) => (socketOf(host) ? unix(host) : remote(host));
}

/** Stands in for mutual TLS while controller/connect.ts is not there: every remote host fails with this reason. */
export function unavailableRemoteFactory(reason: string): ClientFactory {
  return () => {
    throw new Error(reason);
  };
}

/**
 * The mutual-TLS factory from controller/connect.ts (`mtlsClientFactory(defaultPkiDir(env))`:
 * $QFLEET_HOME/pki, else ~/.config/qfleet/pki), loaded only when some target needs it.
 * Loaded by a computed specifier so this file builds before connect.ts is committed.
 */
export async function loadRemoteFactory(env: NodeJS.ProcessEnv = process.env): Promise<ClientFactory> {
  const spec = ['..', 'connect.js'].join('/');
  let mod: { mtlsClientFactory?: (dir: string) => ClientFactory; defaultPkiDir?: (env: NodeJS.ProcessEnv) => string };
  try {
    mod = (await import(spec)) as typeof mod;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes('connect.js')) {
      return unavailableRemoteFactory('mutual TLS is not available in this build of qfleet; reach this host with qfleet_socket for now');
    }
    throw e;
  }
  if (typeof mod.mtlsClientFactory !== 'function' || typeof mod.defaultPkiDir !== 'function') return unavailableRemoteFactory('controller/connect.ts has no mtlsClientFactory');
  return mod.mtlsClientFactory(mod.defaultPkiDir(env));
}
