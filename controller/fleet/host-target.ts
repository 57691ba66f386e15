/**
 * One host the controller talks to, as inventory and targeting resolve it.
 * Inventory host vars follow Ansible's names (ansible_host, ansible_port,
 * ansible_user); qfleet's own vars are prefixed qfleet_ (qfleet_agent_port,
 * qfleet_root_dir, qfleet_state_dir, qfleet_socket, qfleet_config, ...).
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
  /** Every host var after group inheritance (bootstrap reads qfleet_* paths from here). */
  readonly vars: Readonly<Record<string, unknown>>;
}

export const DEFAULT_AGENT_PORT = 7443;

/** With no inventory, the target is the local agent over its unix socket. */
export const LOCAL_HOST_NAME = 'localhost';
