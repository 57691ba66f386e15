import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './gen/agent.js';
import { AGENT_PROTO, LOADER_OPTIONS, protoDir } from './agent-proto.js';

export { AGENT_PROTO, AGENT_SERVICE_NAME, LOADER_OPTIONS, protoDir } from './agent-proto.js';

let cached: { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } | undefined;

/** The whole package through proto-loader, descriptors included: what the agent serves and reflects. */
export function loadAgentProto(): { definition: protoLoader.PackageDefinition; proto: ProtoGrpcType } {
  if (!cached) {
    const definition = protoLoader.loadSync(AGENT_PROTO, { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
    const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    cached = { definition, proto };
  }
  return cached;
}
