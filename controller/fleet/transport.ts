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
 * $QFLEET_HOME/pki, else ~/.config/qfleet/pki). Imported only when some target
 * needs it, so a run over unix sockets alone never loads the PKI code.
 */
export async function loadRemoteFactory(env: NodeJS.ProcessEnv = process.env): Promise<ClientFactory> {
  const { mtlsClientFactory, defaultPkiDir, unaryTransportOf } = await import('../connect.js');
  return mtlsClientFactory(defaultPkiDir(env), { unary: unaryTransportOf(env) });
}
