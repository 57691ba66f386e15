import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { agentService, loadAgentRoot } from '../../proto/agent-service.js';
import { LOADER_OPTIONS, loadAgentProto } from '../../proto/loader.js';
import { repoRoot } from '../support/repo-root.js';

/** A value for every field of a message (one member per oneof, repeated fields twice), depth-limited. */
function sample(type: protobuf.Type, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const oneofTaken = new Set<string>();
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.partOf) {
      if (oneofTaken.has(f.partOf.name)) continue;
      oneofTaken.add(f.partOf.name);
    }
    const one = (): unknown => {
      if (f.resolvedType instanceof protobuf.Type) return depth < 4 ? sample(f.resolvedType, depth + 1) : {};
      if (f.resolvedType instanceof protobuf.Enum) return Object.keys(f.resolvedType.values).at(-1);
      switch (f.type) {
        case 'string': return `${f.name} ✓`;
        case 'bool': return true;
        case 'bytes': return Buffer.from([0, 1, 254, 255]);
        case 'double': case 'float': return 1.5;
        case 'int64': case 'uint64': case 'sint64': case 'fixed64': case 'sfixed64': return '9007199254740993';
        default: return 42;
      }
    };
    if (f instanceof protobuf.MapField) out[f.name] = { a: one(), b: one() };
    else out[f.name] = f.repeated ? [one(), one()] : one();
  }
  return out;
}

type Defs = Record<string, grpc.MethodDefinition<object, object>>;

/** agent.proto as proto-loader reads it from the source tree: what both built-in definitions must equal. */
function fromSource(): Defs {
  const def = protoLoader.loadSync('qfleet/agent/v1/agent.proto', { ...LOADER_OPTIONS, includeDirs: [join(repoRoot(), 'proto')] });
  return (grpc.loadPackageDefinition(def) as any).qfleet.agent.v1.AgentService.service as Defs;
}

for (const [which, built] of [
  ['for clients (protobufjs alone)', () => agentService().definition as unknown as Defs],
  ["the agent's (proto-loader's fromJSON)", () => loadAgentProto().proto.qfleet.agent.v1.AgentService.service as unknown as Defs],
] as const) describe(`proto: the built-in agent service ${which} is agent.proto as proto-loader reads it`, () => {
  const lite = built();
  const full = fromSource();
  const methods = loadAgentRoot().lookupService('qfleet.agent.v1.AgentService').methodsArray;

  it('has every method, with the same path, streaming kinds and lowerCamel alias', () => {
    assert.deepEqual(Object.keys(lite).sort(), Object.keys(full).sort());
    for (const [name, def] of Object.entries(full)) {
      const mine = lite[name]!;
      assert.deepEqual(
        [mine.path, mine.requestStream, mine.responseStream, mine.originalName],
        [def.path, def.requestStream, def.responseStream, def.originalName],
        name,
      );
    }
  });

  it('encodes every request and response to the same bytes, and decodes them to the same objects', () => {
    for (const m of methods) {
      m.resolve();
      const mine = lite[m.name]!;
      const theirs = full[m.name]!;
      const req = sample(m.resolvedRequestType!);
      const res = sample(m.resolvedResponseType!);
      const reqBytes = theirs.requestSerialize(req);
      assert.ok(reqBytes.length > 0 || m.resolvedRequestType!.fieldsArray.length === 0, `${m.name}: sample request is empty`);
      assert.ok(Buffer.from(mine.requestSerialize(req)).equals(Buffer.from(reqBytes)), `${m.name} request bytes`);
      const resBytes = theirs.responseSerialize(res);
      assert.ok(Buffer.from(mine.responseSerialize(res)).equals(Buffer.from(resBytes)), `${m.name} response bytes`);
      assert.deepEqual(mine.responseDeserialize(resBytes), theirs.responseDeserialize(resBytes), `${m.name} response object`);
      assert.deepEqual(mine.requestDeserialize(reqBytes), theirs.requestDeserialize(reqBytes), `${m.name} request object`);
      // Defaults: an empty message decodes with every field present, as the generated types promise.
      assert.deepEqual(mine.responseDeserialize(Buffer.alloc(0)), theirs.responseDeserialize(Buffer.alloc(0)), `${m.name} defaults`);
    }
  });

  it('loads in a process that never loaded proto-loader (whose common protos would otherwise stand in)', async () => {
    const mod = fileURLToPath(new URL('../../proto/agent-service.js', import.meta.url));
    const script = `const { agentService } = await import(${JSON.stringify(mod)}); console.log(Object.keys(agentService().definition).sort().join(','));`;
    const r = await execa('node', ['--input-type=module', '-e', script], { reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), Object.keys(full).sort().join(','));
  });

  it('refuses an array as a message, as proto-loader does', () => {
    assert.throws(() => lite.List!.requestSerialize([] as unknown as object), /expected object/);
  });
});
