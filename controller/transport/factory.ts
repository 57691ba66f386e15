import type { AgentServiceClient } from './call.js';
import { AGENT_SOCKET_PATH_VAR, type HostTarget } from '../fleet/host-target.js';
import { connectUnix } from './unix.js';

/**
 * Makes the gRPC client for one host: over the local unix socket (unix.ts),
 * or over mutual TLS (mtls.ts) with the agent's certificate checked against
 * the fleet CA and the host's name (identity.ts).
 */
export type ClientFactory = (host: HostTarget, dial?: Dial) => AgentServiceClient;

/**
 * Where to dial, when the caller resolved the host's name itself (see
 * fleet/resolve.ts): the IP address replaces the name for the connection only;
 * the agent's certificate is still checked against the name and the address.
 */
export interface Dial {
  readonly ip: string;
}

/**
 * Per-host transport (the rule is in host-target.ts): a host whose connection
 * is `local` is reached over its agent's unix socket on this machine
 * (qfleet_agent_socket_path, else the controller's --socket); every other
 * host over mutual TLS through the remote factory, whatever paths its vars name.
 */
export function socketOf(host: HostTarget, defaultSocket?: string): string | undefined {
  if (host.connection !== 'local') return undefined;
  const s = host.vars[AGENT_SOCKET_PATH_VAR];
  return typeof s === 'string' && s ? s : defaultSocket;
}

/** Reaches a `local` host over its agent's unix socket. */
export function unixSocketFactory(defaultSocket?: string): ClientFactory {
  return (host) => {
    const socket = socketOf(host, defaultSocket);
    if (!socket) throw new Error(`${host.name} is not a local connection (qfleet_connection: local) or names no socket`);
    return connectUnix(socket);
  };
}

export function perHostFactory(remote: ClientFactory, unix: ClientFactory): ClientFactory {
  return (host) => (host.connection === 'local' ? unix(host) : remote(host));
}

/** Stands in for mutual TLS when no host needs it: a remote host reaching it is a bug, said as such. */
export function unavailableRemoteFactory(reason: string): ClientFactory {
  return () => {
    throw new Error(reason);
  };
}

/**
 * The mutual-TLS factory (mtls.ts, `mtlsClientFactory(defaultPkiDir(env))`:
 * $QFLEET_HOME/pki, else ~/.config/qfleet/pki). Imported only when some target
 * needs it, so a run over unix sockets alone never loads the PKI code.
 */
export async function loadRemoteFactory(env: NodeJS.ProcessEnv = process.env): Promise<ClientFactory> {
  const [{ mtlsClientFactory }, { defaultPkiDir }] = await Promise.all([import('./mtls.js'), import('../pki/paths.js')]);
  return mtlsClientFactory(defaultPkiDir(env));
}
