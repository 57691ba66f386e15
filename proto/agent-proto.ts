/**
 * The agent API's names and how its objects look, shared by the agent
 * (proto-loader) and clients (protobufjs). The service itself is built in:
 * proto/gen/agent-root.ts, generated from agent.proto at build time
 * (proto/generate-root.mjs), so nothing reads a .proto at run time.
 */
export const AGENT_SERVICE_NAME = 'qfleet.agent.v1.AgentService';

// Options match proto-loader-gen-types' flags in package.json so the generated types are exact.
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;
