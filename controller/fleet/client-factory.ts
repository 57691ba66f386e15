import type { AgentServiceClient } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import type { HostTarget } from './host-target.js';

/**
 * Makes the gRPC client for one host: over the local unix socket, or over
 * mutual TLS (controller/connect.ts) with the agent's certificate checked
 * against the fleet CA and the host's name.
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
