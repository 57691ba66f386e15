import * as grpc from '@grpc/grpc-js';
import { agentService } from '../proto/agent-service.js';
import type { AgentServiceClient } from '../proto/gen/qfleet/agent/v1/AgentService.js';

export type { AgentServiceClient };

/** The local agent's socket: --socket, $QFLEET_SOCKET, else the OS default. */
export function defaultSocket(): string {
  return process.env.QFLEET_SOCKET || (process.platform === 'freebsd' ? '/var/run/qfleetd.sock' : '/run/qfleetd.sock');
}

export function connectUnix(socket: string): AgentServiceClient {
  return new (agentService().Client)(`unix:${socket}`, grpc.credentials.createInsecure());
}

/** A request id for the agent's log, so an operator can match a command to its log lines. */
export function requestId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
