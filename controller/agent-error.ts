import { decodeStatusDetails, STATUS_DETAILS_KEY } from '../proto/error-detail.js';
import { isServiceError } from './transport/call.js';

/**
 * What the agent said about an error, as data (agent.proto's ErrorDetail):
 * the reason as qfleet's word (REASON_NOT_FOUND → `not-found`; `unknown` for
 * a reason newer than this qfleet) and its fields. The CLI decides how to print
 * and what to put in --json from this and the status code, never from the text.
 */
export interface AgentErrorDetail {
  readonly reason: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** The detail of a failed call, or undefined when there is none (an agent before API 2, a proxy's own error, not a call's error). */
export function errorDetailOf(e: unknown): AgentErrorDetail | undefined {
  if (!isServiceError(e) || !e.metadata) return undefined;
  const [bytes] = e.metadata.get(STATUS_DETAILS_KEY);
  if (!(bytes instanceof Uint8Array)) return undefined;
  const d = decodeStatusDetails(bytes);
  if (!d) return undefined;
  return { reason: reasonWord(d.reason), fields: { ...d.fields } };
}

/** REASON_NO_SERVICE_SCRIPT → no-service-script; a number (a reason this qfleet does not know) → unknown. */
export function reasonWord(reason: string | number): string {
  return typeof reason === 'string' && reason.startsWith('REASON_') ? reason.slice('REASON_'.length).toLowerCase().replaceAll('_', '-') : 'unknown';
}
