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

describe('qfleet bootstrap reads its environment from the CLI deps, not the process', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'qf-bs-env-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => { process.exitCode = undefined; });

  const run = async (env: NodeJS.ProcessEnv, args: string[]) => {
    const err: string[] = [];
    const program = buildProgram({ env, out: () => undefined, err: (t) => err.push(t), stderrIsTTY: false });
    await program.parseAsync(['node', 'qfleet', 'bootstrap', ...args]);
    return { code: process.exitCode, err: err.join('\n') };
  };

  it('$QFLEET_INVENTORY: the inventory it names is read', async () => {
    const r = await run({ QFLEET_HOME: dir, QFLEET_INVENTORY: join(dir, 'missing.yml') }, []);
    assert.equal(r.code, 2);
    assert.match(r.err, new RegExp(`^qfleet: bootstrap: .*${join(dir, 'missing.yml').replace(/[.]/g, '\\.')}`));
  });

  it('$SSH_AUTH_SOCK: without it (and without --identity) there are no SSH credentials', async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = join(dir, 'process-agent.sock');
    try {
      const r = await run({ QFLEET_HOME: dir }, ['192.0.2.1']);
      assert.equal(r.code, 2);
      assert.match(r.err, /no SSH credentials: give --identity FILE or start an ssh-agent/);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it('$QFLEET_HOME: the PKI is looked for under it', async () => {
    const r = await run({ QFLEET_HOME: dir, SSH_AUTH_SOCK: join(dir, 'agent.sock') }, ['192.0.2.1']);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`${join(dir, 'pki', 'ca.crt').replace(/[.]/g, '\\.')} is missing: run qfleet pki init first`));
  });
});
