import * as grpc from '@grpc/grpc-js';
import { encodeStatusDetails, STATUS_DETAILS_KEY, type ErrorDetail } from '../../../proto/error-detail.js';

/**
 * A failed call as grpc-js hands it to qfleet: the code, the agent's words and,
 * unless `reason` is undefined (an agent before API 2, a proxy), the
 * ErrorDetail in the grpc-status-details-bin trailer, encoded as the agent does.
 */
export function agentError(code: grpc.status, message: string, reason?: ErrorDetail['reason'], fields: Record<string, string> = {}): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (reason !== undefined) metadata.set(STATUS_DETAILS_KEY, encodeStatusDetails(code, message, { reason, fields }));
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${message}`), { code, details: message, metadata });
}
