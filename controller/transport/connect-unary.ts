/**
 * BENCHMARK CANDIDATE (c), not the product path: unary calls to one agent through
 * @connectrpc/connect-node's gRPC transport (conformance-tested gRPC over
 * node:http2), with protobuf-es descriptors generated at build time
 * (proto/gen-es, buf + protoc-gen-es). The rest of the controller speaks
 * proto-loader's object shapes (enums as names, 64-bit as strings), so
 * requests and responses are converted at this edge; streams are not offered.
 */
import * as grpc from '@grpc/grpc-js';
import { create, ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import type { SecureContext, PeerCertificate } from 'node:tls';
import { AgentService } from '../../proto/gen/es/qfleet/agent/v1/agent_pb.js';
import type { AgentServiceClient } from './call.js';

export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
  readonly secureContext: SecureContext;
  readonly servername: string | undefined;
  readonly checkServerIdentity: (sni: string, peer: PeerCertificate) => Error | undefined;
}

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;

const WIDE = new Set<ScalarType>([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

export function connectUnaryClient(t: ConnectTarget): AgentServiceClient {
  const authority = t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
  const session = new Http2SessionManager(`https://${authority}`, {}, {
    secureContext: t.secureContext,
    checkServerIdentity: t.checkServerIdentity,
    ...(t.servername ? { servername: t.servername } : {}),
  });
  const transport = createGrpcTransport({ baseUrl: `https://${authority}`, sessionManager: session });
  const client = createClient(AgentService, transport) as unknown as Record<string, (req: unknown, o: object) => Promise<unknown>>;
  const own: Record<string, unknown> = { close: () => session.abort() };
  for (const m of AgentService.methods) {
    if (m.methodKind !== 'unary') continue;
    own[m.name] = (req: object, ...rest: unknown[]) => {
      const cb = rest.at(-1) as Callback;
      const opts = (rest.find((a) => a && typeof a === 'object' && !(a instanceof grpc.Metadata)) ?? {}) as grpc.CallOptions;
      const ac = new AbortController();
      const deadline = opts.deadline instanceof Date ? opts.deadline.getTime() : opts.deadline;
      client[m.localName]!(create(m.input, fromLoader(m.input, req)), { signal: ac.signal, ...(deadline !== undefined ? { timeoutMs: Math.max(1, deadline - Date.now()) } : {}) }).then(
        (res) => cb(null, toLoader(m.output, res as Record<string, unknown>)),
        (e: unknown) => cb(serviceError(e)),
      );
      return { cancel: () => ac.abort(), getPeer: () => authority };
    };
  }
  return own as unknown as AgentServiceClient;
}

function serviceError(e: unknown): grpc.ServiceError {
  const c = ConnectError.from(e);
  return Object.assign(new Error(`${c.code} ${grpc.status[c.code]}: ${c.rawMessage}`), { code: c.code as number, details: c.rawMessage, metadata: new grpc.Metadata() });
}

/** proto-loader's shape (LOADER_OPTIONS: enums and 64-bit as strings, defaults, oneofs) from a protobuf-es message. */
function toLoader(desc: DescMessage, msg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of desc.fields) {
    if (f.oneof) continue;
    out[f.localName] = value(f, msg[f.localName]);
  }
  for (const o of desc.oneofs) {
    const v = msg[o.localName] as { case?: string; value?: unknown };
    if (v.case === undefined) continue;
    out[v.case] = value(o.fields.find((f) => f.localName === v.case)!, v.value);
    out[o.localName] = v.case;
  }
  return out;
}

function value(f: DescField, v: unknown): unknown {
  switch (f.fieldKind) {
    case 'scalar': return scalar(f.scalar, v);
    case 'enum': return f.enum.values.find((e) => e.number === v)?.name ?? v;
    case 'message': return v === undefined ? null : toLoader(f.message, v as Record<string, unknown>);
    case 'list': return (v as unknown[]).map((x) => (f.listKind === 'scalar' ? scalar(f.scalar, x) : f.listKind === 'enum' ? f.enum.values.find((e) => e.number === x)?.name ?? x : toLoader(f.message, x as Record<string, unknown>)));
    case 'map': return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, f.mapKind === 'message' ? toLoader(f.message, x as Record<string, unknown>) : f.mapKind === 'enum' ? f.enum.values.find((e) => e.number === x)?.name ?? x : scalar(f.scalar, x)]));
  }
}

function scalar(t: ScalarType, v: unknown): unknown {
  if (WIDE.has(t)) return String(v);
  if (t === ScalarType.BYTES) return Buffer.from(v as Uint8Array);
  return v;
}

/** A protobuf-es init object from proto-loader's request shape (enum names to numbers, 64-bit strings to bigint). */
function fromLoader(desc: DescMessage, o: object): Record<string, unknown> {
  const src = o as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of desc.fields) {
    const v = src[f.localName];
    if (v === undefined || v === null) continue;
    const one = (x: unknown, kind: 'scalar' | 'enum' | 'message'): unknown =>
      kind === 'enum' && typeof x === 'string' ? (f.enum!.values.find((e) => e.name === x)?.number ?? 0)
        : kind === 'message' ? create(f.message!, fromLoader(f.message!, x as object))
          : kind === 'scalar' && WIDE.has(f.scalar!) ? BigInt(x as string) : x;
    const val = f.fieldKind === 'list' ? (v as unknown[]).map((x) => one(x, f.listKind)) : f.fieldKind === 'map' ? v : one(v, f.fieldKind);
    if (f.oneof) out[f.oneof.localName] = { case: f.localName, value: val };
    else out[f.localName] = val;
  }
  return out;
}
