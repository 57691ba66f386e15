import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/**
 * Unary gRPC calls to one agent over one HTTP/2 connection of its own, with
 * no grpc-js channel; everything else (streams, waitForReady, getChannel, ...)
 * goes to a real grpc-js client made on first use.
 *
 * Why: a fleet command opens one connection per host, makes one or two unary
 * calls and closes it. A grpc-js channel is built for long-lived use (name
 * resolver, load balancer, subchannel state machine, call filter stack) and
 * costs the controller about 1.6 ms of CPU per host over what the HTTP/2 and
 * TLS work itself costs (measured with `npm run bench` and CPU profiles):
 * at hundreds of hosts that was close to half of a `qfleet list`.
 *
 * This speaks the gRPC-over-HTTP/2 wire protocol for unary calls only
 * (github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): length-prefixed
 * uncompressed messages, grpc-timeout, status and message from trailers or a
 * trailers-only response, HTTP status and RST_STREAM mapped as grpc-js maps
 * them. Errors are shaped as grpc-js's ServiceError (code, details, metadata,
 * message "CODE NAME: details"), so callers cannot tell the two apart.
 */

export interface H2UnaryOptions {
  /** The address to dial (IPv6 without brackets) and its port. */
  readonly host: string;
  readonly port: number;
  /** TLS for the connection: secureContext, servername (SNI) and checkServerIdentity. */
  readonly tls: ConnectionOptions;
  /** The service whose unary methods this client serves. */
  readonly service: grpc.ServiceDefinition;
  /** The grpc-js client for everything that is not a unary call; made on first use. */
  readonly fallback: () => grpc.Client;
  readonly userAgent?: string;
}

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;

interface UnaryCall {
  cancel(): void;
  getPeer(): string;
}

/** A grpc-js client look-alike (type C) whose unary methods go over one HTTP/2 connection. */
export function h2UnaryClient<C extends grpc.Client>(opts: H2UnaryOptions): C {
  const conn = new H2Connection(opts);
  let fallback: grpc.Client | undefined;
  const real = (): grpc.Client => (fallback ??= opts.fallback());
  const own: Record<string | symbol, unknown> = {
    close: () => {
      conn.close();
      fallback?.close();
    },
  };
  for (const [name, def] of Object.entries(opts.service)) {
    if (def.requestStream || def.responseStream) continue;
    const method = (req: unknown, ...rest: unknown[]): UnaryCall => {
      const { metadata, options, callback } = unaryArgs(rest);
      return conn.unary(def as grpc.MethodDefinition<unknown, unknown>, req, metadata, options, callback);
    };
    own[name] = method;
    if (def.originalName) own[def.originalName] = method;
  }
  return new Proxy(own, {
    get(target, prop) {
      if (prop in target) return target[prop];
      // Not a thenable (returning the client from an async function must not build a channel),
      // and symbols (inspection, conversions) are nothing the grpc-js client has to answer.
      if (prop === 'then' || typeof prop === 'symbol') return undefined;
      if (!fallback && conn.isClosed) throw new Error('Channel has been shut down');
      const c = real() as unknown as Record<string | symbol, unknown>;
      const v = c[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(c) : v;
    },
  }) as unknown as C;
}

/** grpc-js's unary overloads: (req, cb), (req, meta, cb), (req, opts, cb), (req, meta, opts, cb). */
function unaryArgs(rest: unknown[]): { metadata: grpc.Metadata; options: grpc.CallOptions; callback: Callback } {
  const callback = rest.at(-1);
  if (typeof callback !== 'function') throw new TypeError('a unary call needs a callback');
  let metadata = new grpc.Metadata();
  let options: grpc.CallOptions = {};
  for (const a of rest.slice(0, -1)) {
    if (a instanceof grpc.Metadata) metadata = a;
    else if (a && typeof a === 'object') options = a as grpc.CallOptions;
  }
  return { metadata, options, callback: callback as Callback };
}

export function serviceError(code: grpc.status, details: string, metadata = new grpc.Metadata()): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

/** HTTP status to gRPC code, as grpc-js maps a response that is not 200. */
function codeOfHttpStatus(s: number): grpc.status {
  switch (s) {
    case 400: return grpc.status.INTERNAL;
    case 401: return grpc.status.UNAUTHENTICATED;
    case 403: return grpc.status.PERMISSION_DENIED;
    case 404: return grpc.status.UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return grpc.status.UNAVAILABLE;
    default: return grpc.status.UNKNOWN;
  }
}

/** RST_STREAM code to gRPC code, as grpc-js maps it. */
function codeOfRstStream(rst: number): { code: grpc.status; details: string } {
  const c = http2.constants;
  switch (rst) {
    case c.NGHTTP2_REFUSED_STREAM: return { code: grpc.status.UNAVAILABLE, details: 'Stream refused by server' };
    case c.NGHTTP2_CANCEL: return { code: grpc.status.CANCELLED, details: 'Call cancelled' };
    case c.NGHTTP2_ENHANCE_YOUR_CALM: return { code: grpc.status.RESOURCE_EXHAUSTED, details: 'Bandwidth exhausted or memory limit exceeded' };
    case c.NGHTTP2_INADEQUATE_SECURITY: return { code: grpc.status.PERMISSION_DENIED, details: 'Protocol not secure enough' };
    case c.NGHTTP2_INTERNAL_ERROR: return { code: grpc.status.INTERNAL, details: `Received RST_STREAM with code ${rst} (Internal server error)` };
    default: return { code: grpc.status.INTERNAL, details: `Received RST_STREAM with code ${rst}` };
  }
}

/** grpc-timeout: at most 8 digits, in the coarsest unit that keeps it whole enough. */
export function grpcTimeout(ms: number): string {
  const m = Math.max(0, Math.ceil(ms));
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(m / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

function decodeGrpcMessage(v: unknown): string {
  const s = Array.isArray(v) ? String(v[0] ?? '') : typeof v === 'string' ? v : '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The one message of a unary response, or why there is not exactly one. */
function oneMessage(body: Buffer): { message?: Buffer; error?: { code: grpc.status; details: string } } {
  if (body.length === 0) return { error: { code: grpc.status.UNIMPLEMENTED, details: 'No message received' } };
  if (body.length < 5) return { error: { code: grpc.status.INTERNAL, details: 'Truncated message frame' } };
  if (body[0] !== 0) return { error: { code: grpc.status.INTERNAL, details: 'Received a compressed message, which this client never asks for' } };
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return { error: { code: grpc.status.INTERNAL, details: 'Truncated message frame' } };
  if (body.length > 5 + len) return { error: { code: grpc.status.UNIMPLEMENTED, details: 'Too many responses received' } };
  return { message: body.subarray(5) };
}

/** grpc-js's default limit on a received message (grpc.max_receive_message_length). */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** setTimeout's limit; grpc-js arms no timer for a deadline further away. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Session {
  readonly h2: http2.ClientHttp2Session;
  /** Why this connection failed, once it has. */
  failure?: Error;
  /** Calls in flight: the connection holds the process open only while there are some. */
  active: number;
}

class H2Connection {
  private session: Session | undefined;
  private closed = false;

  constructor(private readonly opts: H2UnaryOptions) {}

  private peer(): string {
    return this.opts.host.includes(':') ? `[${this.opts.host}]:${this.opts.port}` : `${this.opts.host}:${this.opts.port}`;
  }

  private connect(): Session {
    const cur = this.session;
    if (cur && !cur.h2.destroyed && !cur.h2.closed) return cur;
    const { host, port, tls } = this.opts;
    // Our own TLS socket, so that SNI is exactly tls.servername (never an IP address, which RFC 6066 forbids).
    const h2 = http2.connect(`https://${this.peer()}`, {
      createConnection: () => tlsConnect({ ...tls, host, port, ALPNProtocols: ['h2'] }),
      settings: { enablePush: false },
    });
    const session: Session = { h2, active: 0 };
    h2.on('error', (e) => (session.failure = e));
    this.session = session;
    return session;
  }

  close(): void {
    this.closed = true;
    const s = this.session?.h2;
    if (!s || s.destroyed) return;
    // A connection still in its TCP or TLS handshake (a host that accepts and never
    // answers) is dropped: waiting for it would keep the process alive until the peer
    // or the kernel gives up. A connected one closes gracefully (GOAWAY) once its calls end.
    if (s.connecting) s.destroy();
    else s.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  unary(def: grpc.MethodDefinition<unknown, unknown>, req: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback): UnaryCall {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let stream: http2.ClientHttp2Stream | undefined;
    const finish = (err: grpc.ServiceError | null, res?: unknown) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      // Asynchronously, as grpc-js calls back: never inside the caller's own call.
      process.nextTick(callback, err, res);
    };
    const call: UnaryCall = {
      cancel: () => {
        if (done) return;
        stream?.close(http2.constants.NGHTTP2_CANCEL);
        finish(serviceError(grpc.status.CANCELLED, 'Cancelled on client'));
      },
      getPeer: () => this.peer(),
    };

    if (this.closed) {
      finish(serviceError(grpc.status.UNAVAILABLE, 'Channel has been shut down'));
      return call;
    }
    const deadline = options.deadline === undefined ? Infinity : options.deadline instanceof Date ? options.deadline.getTime() : options.deadline;
    const left = deadline - Date.now();
    if (left <= 0) {
      finish(serviceError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      return call;
    }

    let frame: Buffer;
    try {
      const msg = def.requestSerialize(req);
      frame = Buffer.allocUnsafe(5 + msg.length);
      frame[0] = 0;
      frame.writeUInt32BE(msg.length, 1);
      msg.copy(frame, 5);
    } catch (e) {
      finish(serviceError(grpc.status.INTERNAL, `Request message serialization failure: ${e instanceof Error ? e.message : String(e)}`));
      return call;
    }

    const headers: http2.OutgoingHttpHeaders = {
      ...metadata.toHttp2Headers(),
      ':method': 'POST',
      ':path': def.path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-accept-encoding': 'identity',
      ...(this.opts.userAgent ? { 'user-agent': this.opts.userAgent } : {}),
      ...(Number.isFinite(left) ? { 'grpc-timeout': grpcTimeout(left) } : {}),
    };
    let session: Session;
    try {
      session = this.connect();
      stream = session.h2.request(headers);
    } catch (e) {
      finish(unavailable(e instanceof Error ? e : new Error(String(e)), false));
      return call;
    }
    // Referenced only while calls are in flight, as grpc-js unrefs an idle connection.
    if (session.active++ === 0) session.h2.ref();
    const settle = () => {
      if (--session.active === 0 && !session.h2.destroyed) session.h2.unref();
    };
    if (left <= MAX_TIMER_MS) {
      timer = setTimeout(() => {
        stream?.close(http2.constants.NGHTTP2_CANCEL);
        finish(serviceError(grpc.status.DEADLINE_EXCEEDED, `Deadline exceeded after ${(left / 1000).toFixed(3)}s`));
      }, left);
    }

    let response: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let streamError: Error | undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    let headersEnded = false;
    stream.on('response', (h, flags) => {
      response = h;
      headersEnded = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    stream.on('data', (c: Buffer) => {
      received += c.length;
      if (received > MAX_RESPONSE_BYTES + 5) {
        stream?.close(http2.constants.NGHTTP2_CANCEL);
        finish(serviceError(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${received - 5} vs ${MAX_RESPONSE_BYTES})`));
        return;
      }
      chunks.push(c);
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('error', (e: NodeJS.ErrnoException) => {
      // A reset stream's own error says only "RST_STREAM code N": its rstCode is mapped below, as grpc-js does.
      if (e.code !== 'ERR_HTTP2_STREAM_ERROR') streamError = e;
    });
    stream.on('close', () => {
      settle();
      if (done) return;
      const rst = stream?.rstCode;
      // The connection failed or dropped (refused, TLS, identity, reset, closed): UNAVAILABLE, whenever it happened.
      if (session.failure || streamError) {
        finish(unavailable(session.failure ?? streamError, response !== undefined || !session.h2.connecting));
        return;
      }
      if (rst === http2.constants.NGHTTP2_CANCEL && session.h2.destroyed) {
        finish(unavailable(undefined, true));
        return;
      }
      if (!response) {
        const m = rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR ? codeOfRstStream(rst) : { code: grpc.status.UNAVAILABLE, details: 'Connection dropped' };
        finish(serviceError(m.code, m.details));
        return;
      }
      const httpStatus = Number(response[':status']);
      // A trailers-only response carries the status in its headers.
      const end = trailers ?? (headersEnded || response['grpc-status'] !== undefined ? response : undefined);
      if (httpStatus !== 200 && end?.['grpc-status'] === undefined) {
        finish(serviceError(codeOfHttpStatus(httpStatus), `Received HTTP status code ${httpStatus}`, safeMetadata(response)));
        return;
      }
      if (!end || end['grpc-status'] === undefined) {
        const m = rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR
          ? codeOfRstStream(rst)
          : end
            ? { code: grpc.status.UNKNOWN, details: `Received HTTP status code ${httpStatus}` }
            : { code: grpc.status.INTERNAL, details: 'Received RST_STREAM with code 0 (Call ended without gRPC status)' };
        finish(serviceError(m.code, m.details, end ? safeMetadata(end) : undefined));
        return;
      }
      const code = Number(end['grpc-status']);
      // Trailing metadata reaches the caller only with an error (a grpc-js callback gets no metadata on success).
      const meta = () => safeMetadata(end);
      if (!Number.isInteger(code) || code < 0 || code > 16) {
        finish(serviceError(grpc.status.UNKNOWN, `Invalid grpc-status ${String(end['grpc-status'])}`, meta()));
        return;
      }
      if (code !== grpc.status.OK) {
        finish(serviceError(code, decodeGrpcMessage(end['grpc-message']), meta()));
        return;
      }
      const one = oneMessage(Buffer.concat(chunks));
      if (one.error) {
        finish(serviceError(one.error.code, one.error.details, meta()));
        return;
      }
      try {
        finish(null, def.responseDeserialize(one.message!));
      } catch (e) {
        finish(serviceError(grpc.status.INTERNAL, `Response message parsing error: ${e instanceof Error ? e.message : String(e)}`, meta()));
      }
    });
    stream.end(frame);
    return call;
  }
}

/** UNAVAILABLE for a connection that failed (before it was up, or after) or dropped. */
function unavailable(e: Error | undefined, connected: boolean): grpc.ServiceError {
  // A stream cancelled by its failing session carries the session's error as its cause.
  const why = e && (e as { code?: string }).code === 'ERR_HTTP2_STREAM_CANCEL' && e.cause instanceof Error ? e.cause : e;
  if (!why) return serviceError(grpc.status.UNAVAILABLE, 'Connection dropped');
  return serviceError(grpc.status.UNAVAILABLE, connected ? why.message : `No connection established. Last error: ${why.message}`);
}

function safeMetadata(h: http2.IncomingHttpHeaders): grpc.Metadata {
  const rest: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(':') || k === 'grpc-status' || k === 'grpc-message' || v === undefined) continue;
    rest[k] = v;
  }
  try {
    return grpc.Metadata.fromHttp2Headers(rest);
  } catch {
    return new grpc.Metadata();
  }
}
