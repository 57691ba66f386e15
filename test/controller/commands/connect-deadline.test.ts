import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qfleet } from '../support/agents.js';

/**
 * exec and console connect within --timeout (default 30 s); a connection that
 * fails outright must not wait for that deadline, and keeps its own reason.
 * (A connection that hangs, and a name that never resolves: test/fleet/deadlines.root.test.ts.)
 */
describe('exec and console: the connect deadline only bounds a connection that hangs', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'qf-connect-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const args of [['exec', 'web1', '--', 'true'], ['console', 'web1']]) {
    it(`${args[0]} to a socket with nothing listening fails at once with the reason, exit 1, long before the 30 s deadline`, async () => {
      const t0 = Date.now();
      const r = await qfleet(['--socket', join(dir, 'nobody.sock'), ...args], { input: '' });
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /^qfleet: cannot reach the agent at .*nobody\.sock: is qfleetd running\?/);
      assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    });
  }
});
