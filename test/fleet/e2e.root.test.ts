import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxTarball } from '../support/busybox-base.js';
import { NetnsFleet, type NetnsHost } from '../support/netns-fleet.js';

const CLI = fileURLToPath(new URL('../../controller/main.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../bundle/qfleetd.js', import.meta.url));
const HTTPD_PORT = 8080;

/**
 * The fleet from nothing, as an administrator would run it: three hosts
 * (network namespaces, each with its own sshd and its own agent paths), a CA,
 * bootstrap over SSH with host keys checked, then containers created,
 * configured and started on every host, one aggregated list, exec and
 * console, stop and delete; finally one host's agent dies and list still
 * answers for the others.
 *
 * Every verb reaches the agents at their addresses over mutual TLS: the
 * namespaces share this machine's filesystem, so once bootstrap is done the
 * agents' unix sockets are unlinked (the agents keep serving TCP), and a verb
 * that went through a socket would fail.
 */
describe('qfleet fleet end to end: 3 hosts over SSH and mutual TLS @root', function () {
  this.timeout(300_000);
  let fleet: NetnsFleet;
  let work: string;
  let inventory: string;
  let env: NodeJS.ProcessEnv;

  const qfleet = (args: readonly string[], timeout = 180_000, input?: string) =>
    execa('node', [CLI, '--inventory', inventory, ...args], { env, reject: false, timeout, ...(input !== undefined ? { input } : {}) });
  const json = (stdout: string) => JSON.parse(stdout) as { host: string; status: string; result?: any; error?: string }[];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'qf-e2e-'));
    env = { ...process.env, QFLEET_HOME: join(work, 'home') };
    fleet = await NetnsFleet.create({ hosts: 3 });
    // Ansible's YAML inventory: a group of web hosts and a group of one db host, vars per host.
    const host = (h: NetnsHost) =>
      [`        ${h.name}:`, `          ansible_host: ${h.address}`, `          ansible_port: ${h.sshPort}`,
        ...Object.entries(h.vars).map(([k, v]) => `          ${k}: "${v}"`)].join('\n');
    const [h1, h2, h3] = fleet.hosts as [NetnsHost, NetnsHost, NetnsHost];
    inventory = join(work, 'inventory.yml');
    writeFileSync(inventory, [
      'all:', '  vars:', `    ansible_user: ${fleet.user}`, '  children:',
      '    web:', '      hosts:', host(h1), host(h2),
      '    db:', '      hosts:', host(h3), '',
    ].join('\n'));
    mkdirSync(join(work, 'base'), { recursive: true });
  });

  after(async () => {
    try {
      if (fleet) await qfleet(['stop', '-A'], 60_000).catch(() => undefined);
    } finally {
      await fleet?.destroy();
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('pki init makes the fleet CA', async () => {
    const r = await execa('node', [CLI, 'pki', 'init'], { env, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((readFileSync(join(work, 'home/pki/ca.key')).length > 0), true);
  });

  it('bootstrap installs and starts an agent on every host over SSH, then health answers over mutual TLS', async () => {
    const r = await qfleet(['--json', 'bootstrap', '--identity', fleet.identityFile, '--known-hosts', fleet.knownHostsFile, '--bundle', BUNDLE], 240_000);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(json(r.stdout).map((x) => [x.host, x.status]), [['host1', 'ok'], ['host2', 'ok'], ['host3', 'ok']]);
  });

  it('the inventory names each agent\'s socket path only for bootstrap: the agents are reached over mutual TLS, never through a socket', async () => {
    assert.doesNotMatch(readFileSync(inventory, 'utf8'), /qfleet_connection/);
    for (const h of fleet.hosts) {
      const socket = h.vars.qfleet_agent_socket_path!;
      assert.ok(existsSync(socket), `bootstrap configured ${h.name}'s agent with its socket path ${socket}`);
      unlinkSync(socket);
    }
    const r = await qfleet(['--json', 'version']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(json(r.stdout).map((x) => x.status), ['ok', 'ok', 'ok']);
  });

  it('install, create, config and start run on every host', async () => {
    const tarball = await makeBusyboxTarball(join(work, 'base'), join(work, 'base.tar.gz'), { httpdPort: HTTPD_PORT });
    for (const args of [['install', tarball], ['create', 'web1'], ['create', 'web2'], ['config', 'web1', 'httpd'], ['start', 'web1']]) {
      const r = await qfleet(['--json', ...args]);
      assert.equal(r.exitCode, 0, `${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
      assert.deepEqual(json(r.stdout).map((x) => x.status), ['ok', 'ok', 'ok'], args.join(' '));
    }
    // Each host's httpd answers inside its own network namespace.
    for (const h of fleet.hosts) {
      const page = await fleet.exec(h, ['busybox', 'wget', '-qO-', `http://127.0.0.1:${HTTPD_PORT}/`]);
      assert.match(page.stdout, /qfleet busybox httpd/, h.name);
    }
  });

  it('list prints one table over the fleet with a HOST column, sorted by host then name', async () => {
    const r = await qfleet(['list']);
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = r.stdout.trim().split('\n');
    assert.match(rows[0]!, /^HOST\s+NAME\s+STATE/);
    const body = rows.slice(1).filter((l) => /^host\d/.test(l)).map((l) => l.split(/\s+/).slice(0, 3));
    assert.deepEqual(body, [
      ['host1', 'web1', 'running'], ['host1', 'web2', 'stopped'],
      ['host2', 'web1', 'running'], ['host2', 'web2', 'stopped'],
      ['host3', 'web1', 'running'], ['host3', 'web2', 'stopped'],
    ]);
    const j = json((await qfleet(['--json', 'list'])).stdout);
    assert.deepEqual(j.map((x) => x.status), ['ok', 'ok', 'ok']);
    // Created without a mode: each Linux host's default, its own namespaces.
    assert.deepEqual(j.flatMap((x) => x.result.containers.map((c: any) => c.isolation)), Array(6).fill('namespaces'));
  });

  it('a started container sees only its own processes, and is named after itself', async () => {
    const ps = await qfleet(['exec', 'host1/web1', '--', 'ps']);
    assert.equal(ps.exitCode, 0, ps.stderr);
    assert.doesNotMatch(ps.stdout, /qfleetd|node |sshd/, 'no host process is visible inside');
    assert.match(ps.stdout, /httpd/);
    const hn = await qfleet(['exec', 'host1/web1', '--', 'hostname']);
    assert.equal(hn.stdout.trim(), 'web1');
  });

  it('exec runs in a started container of the named host, passing output and exit status through', async () => {
    let r = await qfleet(['exec', 'host1/web1', '--', 'cat', '/etc/qfleet-httpd.port']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(HTTPD_PORT));
    r = await qfleet(['exec', 'host2/web1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.exitCode, 7);
    assert.equal(r.stdout.trim(), 'out');
    assert.equal(r.stderr.trim(), 'err');
    // --json: the output and the exit status in qfleet's one document; the exit status is still the command's.
    r = await qfleet(['--json', 'exec', 'host2/web1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.exitCode, 7);
    assert.equal(r.stderr, '');
    assert.deepEqual(JSON.parse(r.stdout), [
      { host: 'host2', status: 'ok', result: { exitCode: 7, signal: null, stdout: 'out\n', stderr: 'err\n', truncated: false } },
    ]);
  });

  it('console from a pipe runs the input in a stopped container of the named host', async () => {
    let r = await qfleet(['console', 'host3/web2'], 60_000, 'cd /etc\necho "in $(pwd)"\nexit 3\n');
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stdout, /in \/etc/);
    r = await qfleet(['--json', 'console', 'host3/web2'], 60_000, 'cd /etc\necho "in $(pwd)"\nexit 3\n');
    assert.equal(r.exitCode, 3, r.stderr);
    const [doc] = JSON.parse(r.stdout) as any[];
    assert.equal(doc.host, 'host3');
    assert.equal(doc.result.exitCode, 3);
    assert.match(doc.result.stdout, /in \/etc/);
  });

  it('targets a group: stop on the web group leaves db running', async () => {
    const r = await qfleet(['-H', 'web', '--json', 'stop', 'web1']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(json(r.stdout).map((x) => x.host), ['host1', 'host2']);
    const states = json((await qfleet(['--json', 'list'])).stdout).map((x) => [x.host, x.result.containers.find((c: any) => c.name === 'web1').state]);
    assert.deepEqual(states, [['host1', 'stopped'], ['host2', 'stopped'], ['host3', 'running']]);
  });

  it('stop and delete across the fleet', async () => {
    assert.equal((await qfleet(['stop', '-A'])).exitCode, 0);
    const r = await qfleet(['--json', 'delete', 'web1', 'web2']);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const left = json((await qfleet(['--json', 'list'])).stdout).map((x) => x.result.containers.length);
    assert.deepEqual(left, [0, 0, 0]);
  });

  it("a host whose agent is down: list answers for the others within the deadline, marks it unreachable, exits 1", async () => {
    const down = fleet.hosts[1]!;
    await fleet.killAll(down); // its supervisor and agent (sshd too: the host is gone)
    const t0 = Date.now();
    const r = await qfleet(['--timeout', '5', '--json', 'list'], 60_000);
    const elapsed = Date.now() - t0;
    assert.equal(r.exitCode, 1);
    const byHost = Object.fromEntries(json(r.stdout).map((x) => [x.host, x.status]));
    assert.deepEqual(byHost, { host1: 'ok', host2: 'unreachable', host3: 'ok' });
    assert.ok(elapsed < 30_000, `list came back within the per-host deadline plus start-up (${elapsed} ms)`);
    const text = await qfleet(['--timeout', '5', 'list'], 60_000);
    assert.equal(text.exitCode, 1);
    assert.match(text.stdout + text.stderr, /host2.*unreachable/i);
  });
});
