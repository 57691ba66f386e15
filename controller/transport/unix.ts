import * as grpc from '@grpc/grpc-js';
import { agentService } from '../../proto/agent-service.js';
import type { AgentServiceClient } from './call.js';

/** A client of the agent on this machine, over its unix socket (no TLS: the socket's mode is the access control). */
export function connectUnix(socket: string): AgentServiceClient {
  return new (agentService().Client)(`unix:${socket}`, grpc.credentials.createInsecure());
}
