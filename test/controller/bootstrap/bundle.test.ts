import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, buildCliBundle } from '../../../deploy/bundle/build.js';
import { CLI_PROGRAM_FILE } from '../../../controller/bundle-files.js';
import { initPki } from '../../../controller/pki/index.js';
import { healthCheck, unixHealthClient, waitServing } from '../../../controller/transport/health.js';
import { agentClient, listServicesByReflection, unary } from '../../support/grpc.js';

/**
 * A preload that logs every path the process opens, reads, writes, makes a
 * temp dir from or checks by name, one a line, to `log`.
 */
function fileLogHook(dir: string, log: string): string {
  const hook = join(dir, `log-files-${Math.random().toString(36).slice(2)}.cjs`);
  // The log is written through a descriptor opened before anything is wrapped, so logging never logs itself.
  writeFileSync(hook, `const fs = require('node:fs'); const fd = fs.openSync(${JSON.stringify(log)}, 'a'); const write = fs.writeSync;
for (const f of ['openSync', 'readFileSync', 'writeFileSync', 'mkdtempSync', 'mkdirSync', 'existsSync', 'statSync']) {
  const real = fs[f]; fs[f] = function (p, ...rest) { if (typeof p === 'string' || p instanceof URL) write(fd, f + ' ' + String(p) + '\\n'); return real.call(this, p, ...rest); };
}\n`);
  return hook;
}

/** The lines of a file log that read or write a .proto, or make a temp dir in the system's temp directory. */
const noProtoFiles = (log: string) =>
  readFileSync(log, 'utf8').split('\n').filter((l) => /\.proto$/.test(l) || (l.startsWith(`mkdtempSync ${tmpdir()}/`) && !l.slice(`mkdtempSync ${tmpdir()}/`.length).includes('/')));

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

  it('runs --help and --version from an empty directory, writing nothing (no temp dir, no .proto)', async () => {
    const log = join(dir, 'version-files');
    writeFileSync(log, '');
    const help = await execa('node', ['--require', fileLogHook(dir, log), lone, '--help'], { cwd: join(dir, 'alone') });
    assert.match(help.stdout, /Usage: qfleetd/);
    assert.match(help.stdout, /--socket <path>/);
    const v = await execa('node', [lone, '--version'], { cwd: join(dir, 'alone') });
    assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
    assert.notEqual(v.stdout.trim(), '0.0.0');
    assert.deepEqual(readdirSync(join(dir, 'alone')), ['qfleetd.js']);
    assert.deepEqual(noProtoFiles(log), []);
  });

  it('serves the agent API, grpc.health.v1 and reflection from the lone file', async () => {
    const a = join(dir, 'agent');
    const socket = join(a, 'run/qfleetd.sock');
    writeFileSync(join(dir, 'qfleetd.conf'), `root_dir="${a}/root"\nstate_dir="${a}/state"\nlog_dir="${a}/log"\nsocket="${socket}"\n`);
    // Every file the agent opens, reads or writes by name is logged: none may be a .proto.
    const opened = join(dir, 'agent-files');
    writeFileSync(opened, '');
    const child = execa('node', ['--require', fileLogHook(dir, opened), lone, '--config', join(dir, 'qfleetd.conf')], { cwd: join(dir, 'alone'), reject: false, stdin: 'ignore' });
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
    assert.match(readFileSync(opened, 'utf8'), /qfleetd\.conf$/m, 'the log sees the files the agent reads');
    assert.deepEqual(noProtoFiles(opened), [], 'no .proto read or written, no temp dir');
  });
});

describe('controller bundle (deploy/bundle): the qfleet.js launcher and its program, with ssh2 and the X.509 code in files beside them', function () {
  this.timeout(120_000);
  let dir: string;
  /** The launcher, copied with the program alone (no side files). */
  let lone: string;
  /** The program, copied alone. */
  let program: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-clibundle-'));
    const built = await buildCliBundle({ outfile: join(dir, 'build/qfleet.js') });
    assert.equal(built.outfile, join(dir, 'build', CLI_PROGRAM_FILE));
    mkdirSync(join(dir, 'alone'));
    lone = join(dir, 'alone/qfleet.js');
    copyFileSync(join(dir, 'build/qfleet.js'), lone);
    copyFileSync(built.outfile, join(dir, 'alone', CLI_PROGRAM_FILE));
    mkdirSync(join(dir, 'program'));
    program = join(dir, 'program/qfleet.js');
    copyFileSync(built.outfile, program);
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

  it("turns on Node's compile cache where the runtime has module.enableCompileCache before the program loads, and runs it once", async () => {
    // This machine's Node 20 has none: a preload gives it one that only records the call and whether the program was loaded yet.
    const hook = join(dir, 'fake-compile-cache.cjs');
    const calls = join(dir, 'compile-cache-calls');
    writeFileSync(hook, `const m = require('node:module'); const fs = require('node:fs');
m.enableCompileCache = () => {
  const loaded = Object.keys(require.cache).some((f) => f.endsWith(${JSON.stringify(CLI_PROGRAM_FILE)}));
  fs.appendFileSync(${JSON.stringify(calls)}, loaded ? 'enabled after the program loaded\\n' : 'enabled\\n');
  return { status: 1, directory: '/nowhere' };
};\n`);
    const r = await execa('node', ['--require', hook, lone, '--version'], { cwd: join(dir, 'alone') });
    assert.match(r.stdout, /^\d+\.\d+\.\d+$/, 'the version, printed once');
    assert.equal(readFileSync(calls, 'utf8'), 'enabled\n');
  });

  it('the launcher without its program says which file is missing', async () => {
    mkdirSync(join(dir, 'launcher-only'));
    copyFileSync(lone, join(dir, 'launcher-only/qfleet.js'));
    const r = await execa('node', [join(dir, 'launcher-only/qfleet.js'), '--version'], { reject: false });
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr, `qfleet: ${CLI_PROGRAM_FILE}, the program, is not beside ${join(dir, 'launcher-only/qfleet.js')}: copy every file of dist/bundle/ together`);
  });

  it('the program runs as it is, under any name (bootstrap puts it on hosts as qfleet.js, for the boot-time start -A)', async () => {
    const v = await execa('node', [program, '--version'], { cwd: join(dir, 'program') });
    assert.match(v.stdout, /^\d+\.\d+\.\d+$/, 'the version, printed once');
  });

  it('parses no ssh2 and no X.509 code at start: those are in their side files, which the build writes beside it', () => {
    const text = readFileSync(program, 'utf8');
    assert.doesNotMatch(text, /SSH-2\.0-/, 'ssh2 speaks SSH-2.0: not in the program');
    assert.doesNotMatch(text, /PemConverter/, "@peculiar/x509's PEM code: not in the program");
    assert.match(readFileSync(join(dir, 'build/qfleet-ssh2.js'), 'utf8'), /SSH-2\.0-/);
    assert.match(readFileSync(join(dir, 'build/qfleet-x509.js'), 'utf8'), /PemConverter/);
  });

  it('alone, says which file a command needs (pki init: qfleet-x509.js) and changes nothing; beside its side files, runs it', async () => {
    const home = join(dir, 'home-pki');
    const alone = await execa('node', [lone, 'pki', 'init'], { cwd: join(dir, 'alone'), env: { ...process.env, QFLEET_HOME: home }, reject: false });
    assert.equal(alone.exitCode, 1);
    assert.match(alone.stderr, /this command needs qfleet-x509\.js, which is not beside .*alone\/qfleet\.js: copy every file of dist\/bundle\/ together/);
    assert.ok(!existsSync(join(home, 'pki/ca.key')), 'no half-made PKI');
    const together = await execa('node', [join(dir, 'build/qfleet.js'), 'pki', 'init'], { env: { ...process.env, QFLEET_HOME: home } });
    assert.match(together.stdout, /CA .*ca\.crt/);
    assert.ok(existsSync(join(home, 'pki/ca.key')));
  });

  it('carries no home-made code cache (vm.Script with cached data)', () => {
    const text = readFileSync(program, 'utf8') + readFileSync(lone, 'utf8');
    assert.doesNotMatch(text, /cachedData|createCachedData/);
  });

  it("copies an agent's certificate into grpc-js's auth context only when asked, not at every connection", () => {
    const text = readFileSync(program, 'utf8');
    assert.match(text, /get sslPeerCertificate\(\)/);
    assert.doesNotMatch(text, /sslPeerCertificate:\s*session\.socket\.getPeerCertificate\(\)/);
  });
});
