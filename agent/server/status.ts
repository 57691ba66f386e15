import * as grpc from '@grpc/grpc-js';
import { asQfleetError, type ErrorKind } from '../errors.js';

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

export function toServiceError(err: unknown): grpc.ServiceError {
  const e = asQfleetError(err);
  const metadata = new grpc.Metadata();
  metadata.set('qfleet-error-kind', e.kind);
  return Object.assign(new Error(e.message), { code: CODES[e.kind], details: e.message, metadata });
}
