/**
 * Where qfleetd keeps its files on a host, per OS (DESIGN.md): the agent's
 * defaults (agent/config.ts) and what bootstrap installs and writes into the
 * agent's config (controller/bootstrap/plan.ts) are this one table.
 */
export interface AgentDefaults {
  readonly configFile: string;
  /** Zones live below it: BASE/ZONE holds sharedfs, the template and the containers. */
  readonly base: string;
  readonly stateDir: string;
  readonly socket: string;
  readonly logDir: string;
  readonly tlsDir: string;
}

export const AGENT_DEFAULTS: Readonly<Record<'freebsd' | 'linux', AgentDefaults>> = {
  freebsd: { configFile: '/usr/local/etc/qfleetd.conf', base: '/usr/qfleet', stateDir: '/var/db/qfleet', socket: '/var/run/qfleetd.sock', logDir: '/var/log/qfleet', tlsDir: '/usr/local/etc/qfleet/tls' },
  linux: { configFile: '/etc/qfleet/qfleetd.conf', base: '/var/lib/qfleet', stateDir: '/var/lib/qfleet/state', socket: '/run/qfleetd.sock', logDir: '/var/log/qfleet', tlsDir: '/etc/qfleet/tls' },
};

/** File names in the agent's TLS directory: its key (made there by `qfleetd tls-request`), its certificate, the fleet CA. */
export const AGENT_TLS_FILES = { key: 'agent.key', cert: 'agent.crt', ca: 'ca.crt' } as const;
