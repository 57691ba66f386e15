import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../controller/main.js';
import { unary } from '../../support/grpc.js';
import { InProcessAgent, qfleet, writeInventory } from '../support/agents.js';

/** create, config, start, stop, delete, version and --dry-run over two real agents (in process, unix sockets), through the real CLI. */
describe('qfleet verbs over a fleet (real CLI, real agents on unix sockets)', function () {
  this.timeout(60_000);
  let dir: string;
  let a: InProcessAgent;
  let b: InProcessAgent;
  let inv: string;
  const q = (...args: string[]) => qfleet(['--inventory', inv, ...args]);
  /** A changing command prints each host as it ends, then the summary: its host lines in host order, and the summary apart. */
  const hostLines = (stdout: string) => {
    const lines = stdout.trimEnd().split('\n');
    return { lines: lines.slice(0, -1).sort(), summary: lines.at(-1) };
  };
  const names = async (agent: InProcessAgent) => ((await unary(agent.client, 'List', {})).containers as { name: string; state: string }[]).map((c) => `${c.name}:${c.state.replace('STATE_', '').toLowerCase()}`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-verbs-'));
    [a, b] = await Promise.all([InProcessAgent.start(join(dir, 'a')), InProcessAgent.start(join(dir, 'b'))]);
    inv = writeInventory(join(dir, 'hosts.yml'), `
web:
  hosts:
    alpha:
      qfleet_connection: local
      qfleet_agent_socket_path: ${a.socket}
    beta:
      qfleet_connection: local
      qfleet_agent_socket_path: ${b.socket}
dead:
  hosts:
    gamma:
      qfleet_connection: local
      qfleet_agent_socket_path: ${join(dir, 'none.sock')}
`);
  });
  after(() => {
    a?.stop();
    b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates on every targeted host, lines prefixed with the host', async () => {
    for (const n of ['web', 'web1', 'web2', 'xweb']) {
      const r = await q('-H', 'web', 'create', n);
      assert.equal(r.exitCode, 0, r.stderr);
      const { lines, summary } = hostLines(r.stdout);
      assert.match(lines.join('\n'), new RegExp(`^alpha: Chroot container ${n} created at .*\\nbeta: Chroot container ${n} created at .*$`));
      assert.equal(summary, '2 of 2 hosts answered.');
    }
    assert.deepEqual(await names(b), ['web:stopped', 'web1:stopped', 'web2:stopped', 'xweb:stopped']);
  });

  it('configures services on the hosts -H names', async () => {
    const r = await q('-H', 'alpha,beta', 'config', 'web1', 'httpd');
    assert.deepEqual(hostLines(r.stdout), { lines: ['alpha: web1: services set to httpd.', 'beta: web1: services set to httpd.'], summary: '2 of 2 hosts answered.' });
    await q('-H', 'web', 'config', 'web2', 'httpd');
    await q('-H', 'web', 'config', 'xweb', 'httpd');
  });

  it('--dry-run lists exactly which containers on which hosts start web= would touch, and touches nothing', async () => {
    const r = await q('-H', 'web', '--dry-run', 'start', 'web=');
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = r.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^HOST\s+CONTAINER\s+STATE\s+ACTION\s+PROBLEM$/);
    assert.deepEqual(rows.slice(1, -1).map((l) => l.split(/\s{2,}/)), [
      ['alpha', 'web', 'stopped', 'none (no service configured)', '-'],
      ['alpha', 'web1', 'stopped', 'start httpd', '-'],
      ['alpha', 'web2', 'stopped', 'start httpd', '-'],
      ['beta', 'web', 'stopped', 'none (no service configured)', '-'],
      ['beta', 'web1', 'stopped', 'start httpd', '-'],
      ['beta', 'web2', 'stopped', 'start httpd', '-'],
    ]);
    assert.equal(rows.at(-1), 'Dry run: start would touch 4 containers on 2 of 2 hosts; nothing was changed.');
    assert.ok((await names(a)).every((n) => n.endsWith(':stopped')), 'nothing started');
  });

  it('--dry-run names missing containers and hosts that did not answer, exits 1', async () => {
    const r = await q('--dry-run', '--json', 'delete', 'web1', 'nosuch');
    assert.equal(r.exitCode, 1);
    const doc = JSON.parse(r.stdout) as any[];
    assert.deepEqual(doc.map((h) => [h.host, h.status]), [['alpha', 'ok'], ['beta', 'ok'], ['gamma', 'unreachable']]);
    // The agent refuses the whole delete, as it would the real one: web1 would not be deleted either.
    assert.deepEqual(doc[0].result, { action: 'delete', steps: [
      { container: 'nosuch', state: '-', action: 'delete', problem: 'Error; no such chroot container: nosuch.', reason: 'not-found' },
    ] });
    const ok = await q('-H', 'alpha', '--dry-run', '--json', 'delete', 'web1');
    assert.equal(ok.exitCode, 0, ok.stdout);
    assert.deepEqual(JSON.parse(ok.stdout)[0].result.steps, [{ container: 'web1', state: 'stopped', action: 'delete', problem: '', reason: null }]);
    assert.ok((await names(a)).includes('web1:stopped'), 'nothing deleted');
  });

  it('--dry-run create and config: the agent\'s checks, the agent\'s words; nothing is made or set', async () => {
    let r = await q('-H', 'web', '--dry-run', 'create', 'web1');
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /^alpha\s+web1\s+-\s+create\s+Error; chroot container web1 already exists\.$/m);
    r = await q('-H', 'web', '--dry-run', 'create', 'new1');
    assert.equal(r.exitCode, 0, r.stdout);
    // The agent says which mode the host would give it: its default, as none was asked.
    assert.match(r.stdout, /^beta\s+new1\s+-\s+create \(chroot\)\s+-$/m);
    assert.equal(r.stdout.trimEnd().split('\n').at(-1), 'Dry run: create would touch 2 containers on 2 of 2 hosts; nothing was changed.');
    r = await q('-H', 'alpha', '--dry-run', 'config', 'web1', 'nginx');
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /^alpha\s+web1\s+-\s+config: services nginx\s+Error; web1 has no rc script for nginx: /m);
    r = await q('-H', 'alpha', '--dry-run', 'config', 'web1', 'sshd');
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.stdout, /^alpha\s+web1\s+stopped\s+config: services sshd\s+-$/m);
    assert.ok(!(await names(a)).some((n) => n.startsWith('new1')), 'nothing created');
    assert.deepEqual((await unary(a.client, 'Get', { name: 'web1' })).container.services.map((x: { name: string }) => x.name), ['httpd'], 'nothing set');
  });

  it('--dry-run install: each agent checks the source and its base; nothing is unpacked', async () => {
    let r = await q('-H', 'web', '--dry-run', 'install', dir);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^alpha\\s+-\\s+-\\s+install from ${dir} \\(sharedfs, template\\)\\s+-$`, 'm'));
    r = await q('-H', 'alpha', '--dry-run', '--json', 'install', join(dir, 'nothing-here'));
    assert.equal(r.exitCode, 1);
    assert.match(JSON.parse(r.stdout)[0].result.steps[0].problem, /^Error; install source .*nothing-here does not exist on the agent's host\.$/);
  });

  it('starts web= (prefix) on every host: web, web1, web2 but never xweb', async () => {
    const r = await q('-H', 'web', 'start', 'web=');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(hostLines(r.stdout).lines, [
      'alpha: web1: Start chroot completed.', 'alpha: web2: Start chroot completed.', 'alpha: web: Bypassed; No service configured yet',
      'beta: web1: Start chroot completed.', 'beta: web2: Start chroot completed.', 'beta: web: Bypassed; No service configured yet',
    ]);
    assert.match(r.stdout, /^alpha: web: .*\nalpha: web1: .*\nalpha: web2: /m, "one host's lines stay together, in name order");
    assert.deepEqual(await names(a), ['web:stopped', 'web1:running', 'web2:running', 'xweb:stopped']);
  });

  it('a plain name is exact: stop web touches web only, never web1 or web2', async () => {
    const r = await q('-H', 'alpha', 'stop', 'web');
    assert.equal(r.stdout, 'alpha: web: Bypassed; No service configured yet\n1 of 1 host answered.', 'one line: web only');
    assert.deepEqual(await names(a), ['web:stopped', 'web1:running', 'web2:running', 'xweb:stopped']);
  });

  it('reports a prefix that matches nothing on a host as no change', async () => {
    const r = await q('-H', 'web', 'stop', 'db=');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(hostLines(r.stdout), { lines: ['alpha: No chroot container matches db=.', 'beta: No chroot container matches db=.'], summary: '2 of 2 hosts answered.' });
  });

  it('exits 1 when one host is unreachable, with the others done and the unreachable one on stderr', async () => {
    const r = await q('stop', '-A');
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout, /^alpha: web1: Chroot is stopped\.$/m);
    assert.match(r.stdout, /^alpha: xweb: Error; Chroot is already stopped\.$/m);
    assert.match(r.stdout, /^beta: web2: Chroot is stopped\.$/m);
    assert.match(r.stderr, /^gamma: unreachable: /m);
    assert.match(r.stdout, /\n2 of 3 hosts answered; not answering: gamma \(unreachable: [^)]+\)\.$/);
    assert.deepEqual(await names(b), ['web:stopped', 'web1:stopped', 'web2:stopped', 'xweb:stopped']);
  });

  it('exits 1 when a container fails on one host (exact name missing there), JSON says which host and why', async () => {
    await unary(a.client, 'Create', { name: 'only-a' });
    const r = await q('-H', 'web', '--json', 'delete', 'only-a');
    assert.equal(r.exitCode, 1);
    const doc = JSON.parse(r.stdout) as any[];
    assert.equal(doc[0].host, 'alpha');
    assert.equal(doc[0].status, 'ok');
    assert.deepEqual(doc[0].result.results.map((x: any) => [x.outcome, x.changed]), [['deleted', true]]);
    assert.equal(doc[1].host, 'beta');
    assert.equal(doc[1].status, 'failed');
    assert.match(doc[1].error, /only-a/);
  });

  it('exits 2 when every host refuses the request as invalid (a bad name)', async () => {
    const r = await q('-H', 'web', 'create', '../x');
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /^alpha: Error; .*letters, digits/m);
  });

  it('usage errors exit 2 before touching any host: names with -A, nothing named, a bare =', async () => {
    for (const args of [['start', '-A', 'web1'], ['start'], ['stop', '=']]) {
      const r = await q(...args);
      assert.equal(r.exitCode, 2, args.join(' '));
      assert.match(r.stderr, /^qfleet: /);
    }
  });

  it('version: the controller once, then each agent prefixed with its host', async () => {
    const r = await q('-H', 'web', 'version');
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^qfleet \d+\.\d+\.\d+/);
    assert.match(lines[1]!, /^alpha: qfleetd 9\.9\.9 \(API 3\) on memhost: Linux/);
    assert.ok(lines.some((l) => /^beta: qfleetd 9\.9\.9/.test(l)));
  });

  it('exec and console take HOST/NAME; an unknown host is a usage error', async () => {
    let r = await q('exec', 'nohost/web1', '--', 'true');
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /no host "nohost"/);
    r = await q('exec', 'web1', '--', 'true');
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /3 hosts are targeted: write HOST\/web1/);
    r = await q('--dry-run', 'exec', 'alpha/web1', '--', 'true');
    assert.equal(r.exitCode, 1, 'web1 is stopped: exec needs it started');
    assert.match(r.stdout, /^alpha\s+web1\s+stopped\s+exec true\s+Error; web1 is stopped; exec needs a started chroot\.$/m);
    r = await q('--dry-run', 'console', 'beta/web1');
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^beta\s+web1\s+stopped\s+console\s+-$/m);
  });

  it('install: each host\'s result as it ends, then the summary; on a terminal, phase notes and a progress line on stderr, none otherwise', async () => {
    for (const tty of [true, false]) {
      const out: string[] = [];
      const err: string[] = [];
      const status: string[] = [];
      await buildProgram({ env: { QFLEET_INVENTORY: inv }, out: (t) => out.push(t), err: (t) => err.push(t), status: (l) => status.push(l), stderrIsTTY: tty })
        .parseAsync(['node', 'qfleet', '-H', 'web', 'install', dir]);
      assert.equal(process.exitCode, 0, err.join('\n'));
      process.exitCode = undefined;
      assert.deepEqual(out.slice(0, 2).map((l) => l.replace(/:.*/, '')).sort(), ['alpha', 'beta']);
      assert.match(out.find((l) => l.startsWith('alpha'))!, /^alpha: Install of debian 12 completed: sharedfs /);
      assert.equal(out[2], '2 of 2 hosts answered.');
      if (tty) {
        assert.ok(err.includes('alpha: extract: copying') && err.includes('beta: extract: copying'), err.join('\n'));
        assert.equal(status[0], '0 of 2 hosts done; waiting for alpha, beta');
        assert.match(status.join('|'), /\|1 of 2 hosts done; waiting for (alpha|beta)\|/);
        assert.equal(status.at(-1), '', 'the progress line is cleared at the end');
      } else {
        assert.deepEqual(err, []);
        assert.deepEqual(status, []);
      }
    }
  });
});
