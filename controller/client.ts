import { AGENT_DEFAULTS } from '../common/agent-layout.js';
import type { AgentServiceClient } from './transport/call.js';

export type { AgentServiceClient };

/** The local agent's socket when neither --socket nor $QFLEET_SOCKET names one: the agent's own default for this OS. */
export function defaultSocket(): string {
  return AGENT_DEFAULTS[process.platform === 'freebsd' ? 'freebsd' : 'linux'].socket;
}

/** A request id for the agent's log, so an operator can match a command to its log lines. */
export function requestId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
