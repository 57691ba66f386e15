import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../controller/main.js';

describe('qfleet bootstrap: --forks is checked as for every command', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'qf-bs-cli-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => { process.exitCode = undefined; });

  for (const forks of ['0', '1001', '2.5', 'many']) {
    it(`--forks ${forks}: exit 2 with the reason, before any SSH or PKI is touched`, async () => {
      const err: string[] = [];
      // No PKI in this QFLEET_HOME: had bootstrap gone on, it would say so instead.
      const program = buildProgram({ env: { QFLEET_HOME: dir, SSH_AUTH_SOCK: join(dir, 'agent.sock') }, out: () => undefined, err: (t) => err.push(t), stderrIsTTY: false });
      await program.parseAsync(['node', 'qfleet', '--forks', forks, 'bootstrap', '192.0.2.1']);
      assert.equal(process.exitCode, 2);
      assert.equal(err.join('\n'), `qfleet: --forks must be a whole number from 1 to 1000, not ${JSON.stringify(forks)}.`);
    });
  }
});
