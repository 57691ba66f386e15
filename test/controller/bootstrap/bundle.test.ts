import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, buildCliBundle } from '../../../deploy/bundle/build.js';
import { initPki } from '../../../controller/pki/index.js';
import { healthCheck, unixHealthClient, waitServing } from '../../../controller/bootstrap/health.js';
import { agentClient, listServicesByReflection, unary } from '../../support/grpc.js';

describe('agent bundle (deploy/bundle): one self-contained file', function () {
  this.timeout(120_000);
  let dir: string;
  let lone: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-bundle-'));
    const built = await buildBundle({ outfile: join(dir, 'build/qfleetd.js') });
    assert.ok(built.bytes > 100_000);
    // Only the bundle, in an empty directory: no node_modules, no package.json, no .proto anywhere near it.
    mkdirSync(join(dir, 'alone'));
    lone = join(dir, 'alone/qfleetd.js');
    copyFileSync(built.outfile, lone);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs --help and --version from an empty directory, leaving no temp dir behind', async () => {
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith('qfleetd-bundle-')).length;
    const help = await execa('node', [lone, '--help'], { cwd: join(dir, 'alone') });
    assert.match(help.stdout, /Usage: qfleetd/);
    assert.match(help.stdout, /--socket <path>/);
    const v = await execa('node', [lone, '--version'], { cwd: join(dir, 'alone') });
    assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
    assert.notEqual(v.stdout.trim(), '0.0.0');
    assert.deepEqual(readdirSync(join(dir, 'alone')), ['qfleetd.js']);
    assert.equal(readdirSync(tmpdir()).filter((f) => f.startsWith('qfleetd-bundle-')).length, before);
  });

  it('serves the agent API, grpc.health.v1 and reflection from the lone file', async () => {
    const a = join(dir, 'agent');
    const socket = join(a, 'run/qfleetd.sock');
    writeFileSync(join(dir, 'qfleetd.conf'), `root_dir="${a}/root"\nstate_dir="${a}/state"\nlog_dir="${a}/log"\nsocket="${socket}"\n`);
    const child = execa('node', [lone, '--config', join(dir, 'qfleetd.conf')], { cwd: join(dir, 'alone'), reject: false, stdin: 'ignore' });
    const health = unixHealthClient(socket);
    const api = agentClient(socket);
    try {
      await waitServing(health, 20_000, 100);
      assert.equal(await healthCheck(health, 'qfleet.agent.v1.AgentService'), 'SERVING');
      const services = await listServicesByReflection(`unix:${socket}`);
      assert.ok(services.includes('qfleet.agent.v1.AgentService'), services.join(','));
      const v = await unary<{ agentVersion: string; driver: string }>(api, 'Version', {}, 5000);
      assert.match(v.agentVersion, /^\d+\.\d+\.\d+/);
      assert.notEqual(v.agentVersion, '0.0.0');
      assert.equal(v.driver, 'linux');
    } finally {
      health.close();
      api.close();
      child.kill('SIGTERM');
      const r = await Promise.race([child, new Promise((res) => setTimeout(res, 8000))]);
      if (!r) child.kill('SIGKILL');
      await child;
    }
    assert.deepEqual(readdirSync(join(dir, 'alone')), ['qfleetd.js']);
  });
});

describe('controller bundle (deploy/bundle): one self-contained qfleet.js', function () {
  this.timeout(120_000);
  let dir: string;
  let lone: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-clibundle-'));
    const built = await buildCliBundle({ outfile: join(dir, 'build/qfleet.js') });
    mkdirSync(join(dir, 'alone'));
    lone = join(dir, 'alone/qfleet.js');
    copyFileSync(built.outfile, lone);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs --version from an empty directory', async () => {
    const v = await execa('node', [lone, '--version'], { cwd: join(dir, 'alone') });
    assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('goes down the mutual-TLS path (PKI, health proto, connect) and reports a closed port as unreachable', async () => {
    const home = join(dir, 'home');
    await initPki(join(home, 'pki'));
    const inv = join(dir, 'inventory.yml');
    writeFileSync(inv, 'all:\n  hosts:\n    nowhere:\n      ansible_host: 127.0.0.1\n      qfleet_agent_port: 1\n');
    const r = await execa('node', [lone, '--inventory', inv, '--timeout', '5', '--json', 'list'], {
      cwd: join(dir, 'alone'), env: { ...process.env, QFLEET_HOME: home }, reject: false,
    });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).map((h: { host: string; status: string }) => [h.host, h.status]), [['nowhere', 'unreachable']]);
  });
});
