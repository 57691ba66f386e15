import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { AGENT_SERVICE_NAME } from '../../proto/loader.js';
import { PermissionDeniedError, UnauthenticatedError, type QfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { isClientRole, OID_CLIENT_AUTH, roleOf, type ClientRole } from '../../common/roles.js';
import { x509 } from '../../common/x509.js';
import { toServiceError } from './status.js';

/**
 * The methods a read-only (monitoring) certificate may call. Everything else,
 * including any RPC added later, needs an operator certificate.
 */
export const READ_ONLY_METHODS: ReadonlySet<string> = new Set([
  `/${AGENT_SERVICE_NAME}/Version`,
  `/${AGENT_SERVICE_NAME}/List`,
  `/${AGENT_SERVICE_NAME}/Get`,
  `/${AGENT_SERVICE_NAME}/Capabilities`,
  '/grpc.health.v1.Health/Check',
  '/grpc.health.v1.Health/Watch',
  '/grpc.health.v1.Health/List',
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
]);

/** What grpc-js knows of a call's transport (its AuthContext type is not exported by name). */
export type AuthContext = ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>;

export function isReadOnlyMethod(path: string): boolean {
  return READ_ONLY_METHODS.has(path);
}

export interface Caller {
  readonly role: ClientRole;
  /** The certificate's subject, for the log. */
  readonly subject: string;
}

interface Checked {
  readonly caller?: Caller;
  readonly error?: QfleetError;
  readonly notBefore: number;
  readonly notAfter: number;
}

/**
 * Decides, per call, who the TLS peer is and whether its role may call the
 * method. The TLS handshake already refuses peers without a certificate from
 * the CA; this checks again (issuer signature, validity now, clientAuth, role)
 * so a misconfigured listener or a connection that outlives its certificate
 * still gets nothing.
 */
export class ClientAuthorizer {
  private readonly ca: X509Certificate;
  private readonly checked = new Map<string, Checked>();

  constructor(caPem: string | Buffer) {
    this.ca = new X509Certificate(caPem);
  }

  /** The caller, or throws UnauthenticatedError / PermissionDeniedError. */
  authorize(path: string, auth: AuthContext | null | undefined, now = Date.now()): Caller {
    const caller = this.identify(auth, now);
    if (caller.role !== 'operator' && !isReadOnlyMethod(path)) {
      throw new PermissionDeniedError(`the ${caller.role} certificate (${caller.subject}) may not call ${path}.`);
    }
    return caller;
  }

  identify(auth: AuthContext | null | undefined, now = Date.now()): Caller {
    const peer = auth?.transportSecurityType === 'ssl' ? auth.sslPeerCertificate : undefined;
    if (!peer?.raw) throw new UnauthenticatedError('a client certificate from the fleet CA is required.');
    const key = peer.fingerprint256 || peer.raw.toString('base64');
    let c = this.checked.get(key);
    if (!c) {
      c = this.check(peer.raw);
      if (this.checked.size >= 4096) this.checked.clear();
      this.checked.set(key, c);
    }
    if (c.error) throw c.error;
    if (now < c.notBefore) throw new UnauthenticatedError('the client certificate is not valid yet.');
    if (now > c.notAfter) throw new UnauthenticatedError('the client certificate has expired.');
    return c.caller!;
  }

  private check(raw: Buffer): Checked {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(raw);
    } catch {
      return { error: new UnauthenticatedError('the client certificate cannot be parsed.'), notBefore: 0, notAfter: 0 };
    }
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    const fail = (e: QfleetError): Checked => ({ error: e, notBefore, notAfter });
    if (!cert.checkIssued(this.ca) || !cert.verify(this.ca.publicKey)) {
      return fail(new UnauthenticatedError("the client certificate was not issued by this fleet's CA."));
    }
    if (!(cert.keyUsage ?? []).includes(OID_CLIENT_AUTH)) {
      return fail(new UnauthenticatedError('the certificate is not a client certificate (no clientAuth usage).'));
    }
    const name = new x509.X509Certificate(raw).subjectName;
    const subject = name.toString();
    const role = roleOf(name);
    if (role === undefined || !isClientRole(role)) {
      return fail(new PermissionDeniedError(`the certificate ${subject} carries no qfleet client role.`));
    }
    return { caller: { role, subject }, notBefore, notAfter };
  }
}

/**
 * A grpc-js server interceptor that runs the authorizer before the call's
 * metadata reaches any handler (agent service, health, reflection alike); a
 * refused call ends with UNAUTHENTICATED or PERMISSION_DENIED from
 * agent/server/status.ts and its handler never runs.
 */
export function authInterceptor(authorizer: ClientAuthorizer, log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    let refusal: grpc.ServiceError | undefined;
    try {
      authorizer.authorize(method.path, call.getAuthContext());
    } catch (e) {
      refusal = toServiceError(e);
      log.warn('call refused', { method: method.path, peer: call.getPeer(), reason: refusal.details });
    }
    if (!refusal) return new grpc.ServerInterceptingCall(call);
    const denied = refusal;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          // Metadata is never passed on, so the handler never starts.
          onReceiveMetadata: () => call.sendStatus({ code: denied.code, details: denied.details, metadata: denied.metadata }),
          onReceiveMessage: () => undefined,
          onReceiveHalfClose: () => undefined,
          onCancel: () => undefined,
        });
      },
    });
  };
}
