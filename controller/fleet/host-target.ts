/**
 * One host the controller talks to, as inventory and targeting resolve it.
 * Inventory host vars follow Ansible's names (ansible_host, ansible_port,
 * ansible_user); qfleet's own vars are prefixed qfleet_ (qfleet_agent_port,
 * qfleet_connection, qfleet_agent_socket_path, qfleet_root_dir, ...).
 *
 * The connection rule: a host is reached at its address over mutual TLS.
 * Only an explicit choice reaches an agent over a unix socket on the
 * controller's own machine: no inventory at all (the local agent), or the
 * host var `qfleet_connection: local` (as Ansible's `ansible_connection:
 * local`). A path var never chooses the connection.
 */
export interface HostTarget {
  /** Inventory name: what the operator types and what tables show. */
  readonly name: string;
  /** Where to reach it: ansible_host, else the name. */
  readonly address: string;
  /** SSH port for bootstrap (ansible_port, default 22). */
  readonly sshPort: number;
  /** SSH login (ansible_user); undefined means the controller's default. */
  readonly sshUser: string | undefined;
  /** The agent's mutual-TLS port (qfleet_agent_port, default DEFAULT_AGENT_PORT). */
  readonly agentPort: number;
  /** How the controller reaches the agent; absent means mutual TLS. */
  readonly connection?: HostConnection;
  /** Every host var after group inheritance (bootstrap reads qfleet_* paths from here). */
  readonly vars: Readonly<Record<string, unknown>>;
}

/** `mtls`: the host's address and agent port over mutual TLS; `local`: the agent's unix socket on the controller's machine. */
export type HostConnection = 'mtls' | 'local';

export const DEFAULT_AGENT_PORT = 7443;

/** The host var choosing the connection (`mtls`, the default, or `local`). */
export const CONNECTION_VAR = 'qfleet_connection';
/** The agent's socket path on its own host: bootstrap writes it into the agent's config; the controller dials it only for `qfleet_connection: local`. */
export const AGENT_SOCKET_PATH_VAR = 'qfleet_agent_socket_path';
/** The old name of AGENT_SOCKET_PATH_VAR, which also made the controller dial that path on its own machine: refused with a rename hint. */
export const RETIRED_SOCKET_VAR = 'qfleet_socket';

/** With no inventory, the target is the local agent over its unix socket. */
export const LOCAL_HOST_NAME = 'localhost';

/** An address without the brackets an IPv6 literal wears in `[::1]:7443`, URLs and inventories. */
export function unbracket(address: string): string {
  return address.replace(/^\[(.*)\]$/, '$1');
}
