import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { AgentServiceClient, AgentServiceDefinition } from './gen/qfleet/agent/v1/AgentService.js';
import { AGENT_ROOT_JSON } from './gen/agent-root.js';
import { AGENT_SERVICE_NAME, LOADER_OPTIONS } from './agent-proto.js';
import { carrierOf, isWireReady } from './wire-ready.js';

/**
 * The agent service for clients: its method definitions and a grpc-js client
 * constructor, built with protobufjs alone.
 *
 * Why not proto-loader (which the agent keeps, for reflection): proto-loader
 * also builds descriptor protos for every message and loads protobufjs's
 * descriptor extension, about 25 ms of every qfleet command's start-up that a
 * client never uses. The (de)serializers here are proto-loader's own recipe
 * (fromObject + encode; decode + toObject with the same LOADER_OPTIONS), so the
 * objects are exactly what the generated types describe; a test holds the two
 * byte for byte and object for object.
 */
export interface AgentService {
  readonly definition: AgentServiceDefinition;
  /** The API's messages, as the (de)serializers here use them. */
  readonly root: protobuf.Root;
  readonly Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => AgentServiceClient;
}

let cached: AgentService | undefined;

/** The built-in agent API (generated from agent.proto with proto-loader's field naming), resolved by protobufjs. */
export function loadAgentRoot(): protobuf.Root {
  const root = protobuf.Root.fromJSON(AGENT_ROOT_JSON);
  root.resolveAll();
  return root;
}

export function agentService(): AgentService {
  if (cached) return cached;
  const root = loadAgentRoot();
  const service = root.lookupService(AGENT_SERVICE_NAME);
  const toObject = { ...LOADER_OPTIONS } as protobuf.IConversionOptions;
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of service.methodsArray) {
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    definition[m.name] = {
      path: `/${AGENT_SERVICE_NAME}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), toObject),
      responseSerialize: serializer(res),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), toObject),
      originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
    };
  }
  const Client = grpc.makeClientConstructor(definition, AGENT_SERVICE_NAME) as unknown as AgentService['Client'];
  cached = { definition: definition as unknown as AgentServiceDefinition, root, Client };
  return cached;
}

function serializer(type: protobuf.Type): (o: object) => Buffer {
  return (o) => {
    if (Array.isArray(o)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    // A carried answer goes through its carrier, a wire-ready one (wire-ready.ts) as it is; anything else is copied into messages first.
    const carrier = carrierOf(o);
    const bytes = carrier ? carrier.encode(o).finish() : type.encode(isWireReady(o) ? o : type.fromObject(o)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}
