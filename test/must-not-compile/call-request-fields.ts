// Compiled only by test/contract/typed-calls.test.ts, which expects each line
// marked `must fail: TSnnnn` to fail with that diagnostic and nothing else to.
// (Excluded from tsconfig.json: the build would fail otherwise.)
import type { AgentServiceClient } from '../../controller/transport/call.js';
import { call } from '../../controller/transport/call.js';

declare const client: AgentServiceClient;

export async function misspelled(): Promise<void> {
  await call(client, 'Create', { requestId: 'r', nmae: 'web' }, 1000); // must fail: TS2353
  await call(client, 'Stop', { names: ['web'], gracSeconds: 5 }, 1000); // must fail: TS2561
  await call(client, 'Configure', { name: 'web', services: 'nginx' }, 1000); // must fail: TS2322
  await call(client, 'Lsit', {}, 1000); // must fail: TS2345
  await call(client, 'Exec', {}, 1000); // must fail: TS2345
  const listed = await call(client, 'List', {}, 1000);
  listed.containrs.length; // must fail: TS2551
  // The same calls spelled right compile: the failures above are the spelling, not the shape.
  await call(client, 'Create', { requestId: 'r', name: 'web' }, 1000);
  await call(client, 'Stop', { names: ['web'], graceSeconds: 5 }, 1000);
  (await call(client, 'List', {}, 1000)).containers.length;
}
