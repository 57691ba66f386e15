import type protobuf from 'protobufjs';
import { loadAgentRoot } from './agent-service.js';
import type { ErrorDetail, ErrorDetail__Output } from './gen/qfleet/agent/v1/ErrorDetail.js';

/**
 * The agent's structured errors on the wire (agent.proto's ErrorDetail): the
 * gRPC richer error model, a google.rpc.Status in the standard trailer whose
 * details hold our ErrorDetail as a google.protobuf.Any. Shared by the agent
 * (encodes) and the controller (decodes); neither imports the other.
 */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
export const ERROR_DETAIL_TYPE_URL = 'type.googleapis.com/qfleet.agent.v1.ErrorDetail';

export type { ErrorDetail, ErrorDetail__Output };

let types: { status: protobuf.Type; detail: protobuf.Type } | undefined;

// Loaded on the first error only: a call that succeeds never pays for it.
function loadTypes(): { status: protobuf.Type; detail: protobuf.Type } {
  if (!types) {
    const root = loadAgentRoot();
    types = { status: root.lookupType('qfleet.agent.v1.RpcStatus'), detail: root.lookupType('qfleet.agent.v1.ErrorDetail') };
  }
  return types;
}

/** The trailer's bytes: status code, message and the one detail. */
export function encodeStatusDetails(code: number, message: string, detail: ErrorDetail): Buffer {
  const { status, detail: type } = loadTypes();
  const value = type.encode(type.fromObject(detail)).finish();
  const bytes = status.encode(status.fromObject({ code, message, details: [{ type_url: ERROR_DETAIL_TYPE_URL, value }] })).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Our ErrorDetail from a trailer's bytes, or undefined when there is none
 * (another type, or bytes that do not decode: a proxy's, an old agent's).
 */
export function decodeStatusDetails(bytes: Uint8Array): ErrorDetail__Output | undefined {
  try {
    const { status, detail: type } = loadTypes();
    const s = status.decode(bytes) as unknown as { details?: Array<{ type_url?: string; value?: Uint8Array }> };
    const any = s.details?.find((d) => d.type_url === ERROR_DETAIL_TYPE_URL);
    if (!any?.value) return undefined;
    return type.toObject(type.decode(any.value), { enums: String, defaults: true }) as ErrorDetail__Output;
  } catch {
    return undefined;
  }
}
