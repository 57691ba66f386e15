import * as grpc from '@grpc/grpc-js';
import { asQfleetError, type ErrorKind } from '../errors.js';
import { encodeStatusDetails, STATUS_DETAILS_KEY } from '../../proto/error-detail.js';
import { detailToProto } from './convert.js';

/** The one mapping from the agent's error taxonomy to gRPC status codes. */
const CODES: Record<ErrorKind, grpc.status> = {
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'not-found': grpc.status.NOT_FOUND,
  'already-exists': grpc.status.ALREADY_EXISTS,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
  aborted: grpc.status.ABORTED,
  unavailable: grpc.status.UNAVAILABLE,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  'permission-denied': grpc.status.PERMISSION_DENIED,
  'command-failed': grpc.status.INTERNAL,
  internal: grpc.status.INTERNAL,
};

/**
 * A QfleetError as the status grpc-js sends: the code, the message as it is
 * (qchroot's wording), and the ErrorDetail in the grpc-status-details-bin
 * trailer (grpc-js sends an error's metadata as trailers).
 */
export function toServiceError(err: unknown): grpc.ServiceError {
  const e = asQfleetError(err);
  const code = CODES[e.kind];
  const metadata = new grpc.Metadata();
  metadata.set(STATUS_DETAILS_KEY, encodeStatusDetails(code, e.message, detailToProto(e.reason, e.fields)));
  return Object.assign(new Error(e.message), { code, details: e.message, metadata });
}
