import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the agent API's .proto lives and how it is loaded: shared by the agent (proto-loader) and clients (protobufjs). */
export const AGENT_PROTO = 'qfleet/agent/v1/agent.proto';
export const AGENT_SERVICE_NAME = 'qfleet.agent.v1.AgentService';

/** The directory holding qfleet/agent/v1/agent.proto, found from this module (source or dist). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, AGENT_PROTO))) return dir;
    if (existsSync(join(dir, 'proto', AGENT_PROTO))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error(`cannot find ${AGENT_PROTO} near ${fileURLToPath(import.meta.url)}`);
}

// Options match proto-loader-gen-types' flags in package.json so the generated types are exact.
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;
