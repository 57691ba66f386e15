import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './gen/agent.js';
import { AGENT_ROOT_JSON, HEALTH_ROOT_JSON } from './gen/agent-root.js';
import { LOADER_OPTIONS } from './agent-proto.js';

export { AGENT_SERVICE_NAME, LOADER_OPTIONS } from './agent-proto.js';

let cached: { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } | undefined;

/** The whole package through proto-loader, descriptors included (what the agent serves and reflects), from the built-in definition. */
export function loadAgentProto(): { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } {
  if (!cached) {
    const definition = protoLoader.fromJSON(AGENT_ROOT_JSON, LOADER_OPTIONS);
    const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    cached = { definition, proto };
  }
  return cached;
}

let health: protoLoader.PackageDefinition | undefined;

/** grpc.health.v1 as grpc-health-check defines it (for reflection), from the built-in definition. */
export function loadHealthDefinition(): protoLoader.PackageDefinition {
  return (health ??= protoLoader.fromJSON(HEALTH_ROOT_JSON, { keepCase: true, longs: String, enums: String, defaults: true }));
}
