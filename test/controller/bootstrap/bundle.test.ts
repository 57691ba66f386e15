import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, buildCliBundle } from '../../../deploy/bundle/build.js';
import { initPki } from '../../../controller/pki/index.js';
import { healthCheck, unixHealthClient, waitServing } from '../../../controller/transport/health.js';
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
      assert.ok(services.includes('grpc.health.v1.Health'), services.join(','));
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

  it('holds no import() call (one could not run from the V8 code cache; esbuild makes them require)', () => {
    const text = readFileSync(lone, 'utf8');
    const calls = [...text.matchAll(/(?<![\w$.])import\s*\(/g)].filter((m) => !/^import\s*\([\w$,\s]*\)\s*\{/.test(text.slice(m.index!, m.index! + 200)));
    assert.deepEqual(calls.map((m) => text.slice(m.index!, m.index! + 60)), []);
  });

  describe('V8 code cache (deploy/bundle/code-cache.ts)', () => {
    const version = (env: Record<string, string>) =>
      execa('node', [lone, '--version'], { cwd: join(dir, 'alone'), env: { ...process.env, ...env } }).then((r) => r.stdout.trim());
    const cacheFiles = (d: string) => (existsSync(d) ? readdirSync(d) : []);

    it('saves a cache at the first run in a private directory, and the next run uses it as it is', async () => {
      const cache = join(dir, 'cache-a');
      assert.match(await version({ QFLEET_CODE_CACHE_DIR: cache }), /^\d+\.\d+\.\d+$/);
      const files = cacheFiles(cache);
      assert.equal(files.length, 1, files.join(','));
      assert.match(files[0]!, new RegExp(`^qfleet-[0-9a-f]{16}-[0-9a-f]{8}-${process.version.replace(/\./g, '\\.')}-${process.arch}\\.v8cache$`));
      assert.equal(statSync(cache).mode & 0o777, 0o700);
      const file = join(cache, files[0]!);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const first = readFileSync(file);
      assert.ok(first.length > 10_000, 'it holds compiled code');
      await version({ QFLEET_CODE_CACHE_DIR: cache });
      assert.ok(readFileSync(file).equals(first), 'an accepted cache is not rewritten');
    });

    it('runs from a corrupt cache as from none, and replaces it', async () => {
      const cache = join(dir, 'cache-b');
      await version({ QFLEET_CODE_CACHE_DIR: cache });
      const file = join(cache, cacheFiles(cache)[0]!);
      writeFileSync(file, Buffer.alloc(4096, 7));
      assert.match(await version({ QFLEET_CODE_CACHE_DIR: cache }), /^\d+\.\d+\.\d+$/);
      assert.ok(!readFileSync(file).equals(Buffer.alloc(4096, 7)), 'V8 refused it and a good one took its place');
    });

    it('neither reads nor writes a cache in a directory others may write, and never with QFLEET_CODE_CACHE=off', async () => {
      const open = join(dir, 'cache-open');
      mkdirSync(open, { mode: 0o777 });
      chmodSync(open, 0o777);
      await version({ QFLEET_CODE_CACHE_DIR: open });
      assert.deepEqual(cacheFiles(open), []);
      const off = join(dir, 'cache-off');
      await version({ QFLEET_CODE_CACHE_DIR: off, QFLEET_CODE_CACHE: 'off' });
      assert.equal(existsSync(off), false);
    });

    it("as root with another user's HOME, makes nothing in that home; in a home of its own it makes ~/.cache/qfleet", async function () {
      if (process.getuid?.() !== 0) this.skip();
      const alice = join(dir, 'home-alice');
      mkdirSync(alice, { mode: 0o755 });
      chownSync(alice, 65534, 65534);
      await execa('node', [lone, '--version'], { cwd: join(dir, 'alone'), env: { ...process.env, HOME: alice, XDG_CACHE_HOME: '', QFLEET_CODE_CACHE_DIR: '' } });
      assert.deepEqual(readdirSync(alice), [], 'no root-owned ~/.cache in her home');
      const mine = join(dir, 'home-root');
      mkdirSync(mine, { mode: 0o755 });
      await execa('node', [lone, '--version'], { cwd: join(dir, 'alone'), env: { ...process.env, HOME: mine, XDG_CACHE_HOME: '', QFLEET_CODE_CACHE_DIR: '' } });
      assert.equal(cacheFiles(join(mine, '.cache', 'qfleet')).length, 1);
    });

    it('keeps one cache per copy of the file: an older build\'s cache is removed when the new one is written', async () => {
      const cache = join(dir, 'cache-d');
      await version({ QFLEET_CODE_CACHE_DIR: cache });
      const [current] = cacheFiles(cache);
      const stale = current!.replace(/^qfleet-[0-9a-f]{16}-/, 'qfleet-0000000000000000-');
      writeFileSync(join(cache, stale), 'old build', { mode: 0o600 });
      rmSync(join(cache, current!));
      await version({ QFLEET_CODE_CACHE_DIR: cache });
      assert.deepEqual(cacheFiles(cache), [current]);
    });

    it("does not read a cache file another user owns (it is replaced by the user's own)", async function () {
      if (process.getuid?.() !== 0) this.skip();
      const cache = join(dir, 'cache-c');
      await version({ QFLEET_CODE_CACHE_DIR: cache });
      const file = join(cache, cacheFiles(cache)[0]!);
      chownSync(file, 65534, 65534);
      await version({ QFLEET_CODE_CACHE_DIR: cache });
      assert.equal(statSync(file).uid, 0);
    });
  });
});
