import type { AgentServiceClient } from './transport/call.js';

export type { AgentServiceClient };

/** The local agent's socket: --socket, $QFLEET_SOCKET, else the OS default. */
export function defaultSocket(): string {
  return process.env.QFLEET_SOCKET || (process.platform === 'freebsd' ? '/var/run/qfleetd.sock' : '/run/qfleetd.sock');
}

/** A request id for the agent's log, so an operator can match a command to its log lines. */
export function requestId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
