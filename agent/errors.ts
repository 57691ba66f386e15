// The agent's one error taxonomy. Every failure the engine or a driver reports
// is one of these; agent/server/status.ts maps them to gRPC status codes.

export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'command-failed'
  | 'aborted'
  | 'unavailable'
  | 'unauthenticated'
  | 'permission-denied'
  | 'internal';

export class QfleetError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = new.target.name;
  }
}

/** The caller sent something malformed (a bad name, a path with spaces). */
export class InvalidArgumentError extends QfleetError {
  constructor(message: string) { super('invalid-argument', message); }
}

export class NotFoundError extends QfleetError {
  constructor(message: string) { super('not-found', message); }
}

export class AlreadyExistsError extends QfleetError {
  constructor(message: string) { super('already-exists', message); }
}

/** The request is well-formed but the host is not in a state that allows it. */
export class FailedPreconditionError extends QfleetError {
  constructor(message: string) { super('failed-precondition', message); }
}

/** Another operation holds what this one needs; retrying later may work. */
export class AbortedError extends QfleetError {
  constructor(message: string) { super('aborted', message); }
}

/** The agent cannot take the call now (it is shutting down); the same call may work once it is back. */
export class UnavailableError extends QfleetError {
  constructor(message: string) { super('unavailable', message); }
}

/** The caller did not prove who it is (no client certificate from the fleet CA, or an unusable one). */
export class UnauthenticatedError extends QfleetError {
  constructor(message: string) { super('unauthenticated', message); }
}

/** The caller is known, but its role does not allow this call (a read-only certificate on a mutating RPC). */
export class PermissionDeniedError extends QfleetError {
  constructor(message: string) { super('permission-denied', message); }
}

/** A host command exited non-zero, timed out or could not be spawned. */
export class CommandFailedError extends QfleetError {
  readonly argv: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;
  readonly timedOut: boolean;
  constructor(argv: readonly string[], exitCode: number | undefined, stderr: string, opts: { timedOut?: boolean; cause?: unknown } = {}) {
    const how = opts.timedOut ? 'timed out' : exitCode === undefined ? 'could not run' : `exited ${exitCode}`;
    const detail = stderr.trim().split('\n').slice(-3).join(' / ');
    super('command-failed', `${argv.join(' ')}: ${how}${detail ? `: ${detail}` : ''}`, { cause: opts.cause });
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.timedOut = opts.timedOut ?? false;
  }
}

export class InternalError extends QfleetError {
  constructor(message: string, options?: { cause?: unknown }) { super('internal', message, options); }
}

/** Wraps anything thrown into a QfleetError, keeping typed errors as they are. */
export function asQfleetError(err: unknown): QfleetError {
  if (err instanceof QfleetError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}
