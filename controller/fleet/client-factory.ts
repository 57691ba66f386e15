import type { AgentServiceClient } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import type { HostTarget } from './host-target.js';

/**
 * Makes the gRPC client for one host: over the local unix socket, or over
 * mutual TLS (controller/connect.ts) with the agent's certificate checked
 * against the fleet CA and the host's name.
 */
export type ClientFactory = (host: HostTarget) => AgentServiceClient;
