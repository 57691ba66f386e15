// The agent's one error taxonomy. Every failure the engine or a driver reports
// is one of these; agent/server/status.ts maps them to gRPC status codes and to
// the ErrorDetail (agent.proto) every error status carries.

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

/**
 * Why a call failed, for a client to act on without reading the message
 * (agent.proto's ErrorDetail.Reason, as words). The kind says the status code;
 * the reason refines it (a failed precondition may be `running`, `broken`, ...).
 */
export type Reason =
  | 'invalid-argument'
  | 'name-invalid'
  | 'not-found'
  | 'already-exists'
  | 'busy'
  | 'running'
  | 'stopped'
  | 'broken'
  | 'no-base'
  | 'release-mismatch'
  | 'no-service-script'
  | 'unsupported'
  | 'precondition'
  | 'shutting-down'
  | 'unauthenticated'
  | 'permission-denied'
  | 'command-failed'
  | 'internal';

/** What an error is about, by name (agent.proto documents the names per reason); undefined values are left out. */
export type ErrorFields = Readonly<Record<string, string | undefined>>;

/** The reason and fields a thrower gives; each class has a default reason. */
export interface ErrorDetailInit {
  readonly reason?: Reason;
  readonly fields?: ErrorFields;
}

/** The reason of an error whose thrower said nothing more than its class. */
const DEFAULT_REASON: Record<ErrorKind, Reason> = {
  'invalid-argument': 'invalid-argument',
  'not-found': 'not-found',
  'already-exists': 'already-exists',
  'failed-precondition': 'precondition',
  'command-failed': 'command-failed',
  aborted: 'busy',
  // The agent is unavailable only while it shuts down (admission.ts).
  unavailable: 'shutting-down',
  unauthenticated: 'unauthenticated',
  'permission-denied': 'permission-denied',
  internal: 'internal',
};

export class QfleetError extends Error {
  readonly kind: ErrorKind;
  readonly reason: Reason;
  readonly fields: Readonly<Record<string, string>>;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown } & ErrorDetailInit) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.name = new.target.name;
    this.reason = options?.reason ?? DEFAULT_REASON[kind];
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(options?.fields ?? {})) if (v !== undefined) fields[k] = v;
    this.fields = fields;
  }
}

/** The caller sent something malformed (a bad name, a path with spaces). */
export class InvalidArgumentError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('invalid-argument', message, detail); }
}

export class NotFoundError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('not-found', message, detail); }
}

export class AlreadyExistsError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('already-exists', message, detail); }
}

/** The request is well-formed but the host is not in a state that allows it. */
export class FailedPreconditionError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('failed-precondition', message, detail); }
}

/** Another operation holds what this one needs; retrying later may work. */
export class AbortedError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('aborted', message, detail); }
}

/** The agent cannot take the call now (it is shutting down); the same call may work once it is back. */
export class UnavailableError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('unavailable', message, detail); }
}

/** The caller did not prove who it is (no client certificate from the fleet CA, or an unusable one). */
export class UnauthenticatedError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('unauthenticated', message, detail); }
}

/** The caller is known, but its role does not allow this call (a read-only certificate on a mutating RPC). */
export class PermissionDeniedError extends QfleetError {
  constructor(message: string, detail?: ErrorDetailInit) { super('permission-denied', message, detail); }
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
    super('command-failed', `${argv.join(' ')}: ${how}${detail ? `: ${detail}` : ''}`, {
      cause: opts.cause,
      fields: { argv: argv.join(' '), exit_code: exitCode === undefined ? undefined : String(exitCode), timed_out: String(opts.timedOut ?? false) },
    });
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.timedOut = opts.timedOut ?? false;
  }
}

export class InternalError extends QfleetError {
  constructor(message: string, options?: { cause?: unknown } & ErrorDetailInit) { super('internal', message, options); }
}

/** Wraps anything thrown into a QfleetError, keeping typed errors as they are. */
export function asQfleetError(err: unknown): QfleetError {
  if (err instanceof QfleetError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}
