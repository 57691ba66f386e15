import type * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { buildProgram } from '../../../controller/main.js';
import type { ClientFactory } from '../../../controller/transport/factory.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';
import { unary } from '../../support/grpc.js';
import { InProcessAgent, writeInventory } from '../support/agents.js';

interface Run { code: number; out: string; err: string }

/** The CLI in process (no child process), its output captured; a commander error is the usage error main() makes of it. */
async function cli(args: readonly string[], deps: { factory?: ClientFactory } = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const program = buildProgram({ ...deps, env: {}, out: (t) => out.push(t), err: (t) => err.push(t), stderrIsTTY: false });
  program.configureOutput({ writeErr: (t) => err.push(t), writeOut: (t) => out.push(t) });
  program.commands.forEach((c) => c.configureOutput({ writeErr: (t) => err.push(t), writeOut: (t) => out.push(t) }));
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'qfleet', ...args]);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: 2, out: out.join('\n'), err: err.join('\n') };
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/**
 * create, config, list, get and version with isolation and config options,
 * against a real agent (server and engine in process, on a unix socket) over
 * the in-memory host: it offers chroot (its default) and a modelled
 * namespaces mode, and of the limits only pids.
 */
describe('qfleet isolation and container config (in process, against a real agent)', function () {
  this.timeout(30_000);
  let dir: string;
  let a: InProcessAgent;
  const q = (...args: string[]) => cli(['--socket', a.socket, ...args]);
  const get = async (name: string) => (await unary(a.client, 'Get', { name })).container;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-iso-'));
    a = await InProcessAgent.start(join(dir, 'a'));
  });
  after(() => {
    a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => { process.exitCode = undefined; });

  it('create without --isolation gets the host\'s default, and says which', async () => {
    const r = await q('create', 'plain');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Chroot container plain created at .*\/plain \(isolation chroot\)\.$/);
    assert.equal((await get('plain')).config.isolation, 'ISOLATION_CHROOT');
  });

  it('create --isolation namespaces with jchroot\'s options: the agent keeps exactly what was asked', async () => {
    const r = await q('create', 'ns1', '--isolation', 'namespaces', '--hostname', 'box', '--network', 'none', '--uid-map', '0:100000:65536',
      '--mount', '/srv/www:/var/www', '--tmpfs', '/tmp:64M', '--user', 'www', '--env', 'LANG=C.UTF-8', '--workdir', '/var/www', '--pids', '256');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\(isolation namespaces\)\.$/);
    const c = (await get('ns1')).config;
    assert.equal(c.isolation, 'ISOLATION_NAMESPACES');
    assert.equal(c.hostname, 'box');
    assert.equal(c.network, 'NETWORK_NONE');
    assert.deepEqual(c.uidMap, [{ inside: 0, outside: 100000, count: 65536 }]);
    assert.deepEqual(c.mounts.map((m: { kind: string; target: string; readOnly: boolean }) => `${m.kind} ${m.target} ${m.readOnly}`), ['KIND_BIND /var/www true', 'KIND_TMPFS /tmp false']);
    assert.deepEqual([c.user, c.env, c.workdir, c.limits.pids], ['www', { LANG: 'C.UTF-8' }, '/var/www', 256]);
  });

  it('create takes config\'s options, the clearing ones too (they ask for the default), so one set of options serves both', async () => {
    const r = await q('create', 'clear1', '--no-mounts', '--no-env');
    assert.equal(r.code, 0, r.err);
    const c = (await get('clear1')).config;
    assert.deepEqual([c.mounts, c.env, c.isolation], [[], {}, 'ISOLATION_CHROOT']);
    assert.equal((await q('delete', 'clear1')).code, 0);
  });

  it('a mode or a limit the host does not offer is refused in the agent\'s words, and nothing is created', async () => {
    let r = await q('create', 'j1', '--isolation', 'jail');
    assert.equal(r.code, 1);
    assert.match(r.err, /^Error; this host cannot run j1 with isolation jail; it offers chroot, namespaces\.$/);
    r = await q('create', 'm1', '--memory', '512M');
    assert.equal(r.code, 1);
    assert.match(r.err, /^Error; this host cannot enforce the memory limit asked of m1 \(limit memory: the model has no memory controller\)/);
    const names = (await unary(a.client, 'List', {})).containers.map((c: { name: string }) => c.name);
    assert.ok(!names.includes('j1') && !names.includes('m1'), names.join(' '));
  });

  it('a bad value is a usage error before any host is asked (here: none listens, and it is not said unreachable)', async () => {
    const r = await cli(['--socket', join(dir, 'nothing.sock'), 'create', 'x1', '--memory', '12Q']);
    assert.equal(r.code, 2);
    assert.equal(r.err, 'qfleet: --memory must be a size in bytes with an optional K, M, G or T (binary: 512M is 512 MiB), at most 1024T; 0 or none removes the limit, not "12Q".');
    const c = await cli(['--socket', join(dir, 'nothing.sock'), 'config', 'x1', '--isolation', 'vm']);
    assert.equal(c.code, 2);
    assert.match(c.err, /^qfleet: --isolation must be jail, namespaces or chroot, not "vm"\.$/);
  });

  it('config with options changes only their fields: services stay unless services are given', async () => {
    await q('config', 'ns1', 'httpd');
    let r = await q('config', 'ns1', '--pids', '300', '--env', 'A=1');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'ns1: env set to A; pids limit set to 300.');
    let c = await get('ns1');
    assert.deepEqual(c.services.map((s: { name: string }) => s.name), ['httpd'], 'services untouched');
    assert.deepEqual([c.config.limits.pids, c.config.env, c.config.hostname, c.config.user], [300, { A: '1' }, 'box', 'www'], 'only pids and env changed');
    r = await q('config', 'ns1', 'sshd', '--pids', 'none', '--no-mounts');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'ns1: mounts cleared; pids limit removed; services set to sshd.');
    c = await get('ns1');
    assert.deepEqual([c.services.map((s: { name: string }) => s.name), c.config.limits.pids, c.config.mounts], [['sshd'], 0, []]);
  });

  it('config NAME with no services and no option still clears the services (qchroot config)', async () => {
    const r = await q('config', 'ns1');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'ns1: services cleared.');
    const c = await get('ns1');
    assert.deepEqual(c.services, []);
    assert.equal(c.config.isolation, 'ISOLATION_NAMESPACES', 'and nothing else');
  });

  it('--dry-run config: the agent checks the change (validate_only), the plan names it, nothing is set', async () => {
    let r = await q('--dry-run', 'config', 'plain', '--isolation', 'namespaces', '--cpus', '2');
    assert.equal(r.code, 1, 'the host cannot limit cpu');
    assert.match(r.out, /^localhost\s+plain\s+-\s+config: isolation set to namespaces; cpu limit set to 2\s+\S/m);
    r = await q('--dry-run', 'config', 'plain', '--isolation', 'namespaces', '--pids', '64');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^localhost\s+plain\s+stopped\s+config: isolation set to namespaces; pids limit set to 64\s+-$/m);
    const c = (await get('plain')).config;
    assert.deepEqual([c.isolation, c.limits.pids], ['ISOLATION_CHROOT', 0], 'nothing was set');
  });

  it('--dry-run create: the mode the host would give it and the options asked; nothing is made', async () => {
    const r = await q('--dry-run', 'create', 'dry1', '--pids', '64', '--user', 'www');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^localhost\s+dry1\s+-\s+create \(chroot\); user set to www; pids limit set to 64\s+-$/m);
    assert.equal(await get('dry1').catch(() => undefined), undefined);
  });

  it('list shows each container\'s isolation; --json carries it and the config', async () => {
    const r = await q('list');
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n');
    assert.match(lines[0]!, /^NAME\s+STATE\s+ISOLATION\s+SERVICES/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3)), [['ns1', 'stopped', 'namespaces'], ['plain', 'stopped', 'chroot']]);
    const j = JSON.parse((await q('--json', 'list')).out);
    const ns1 = j[0].result.containers.find((c: { name: string }) => c.name === 'ns1');
    assert.equal(ns1.isolation, 'namespaces');
    assert.deepEqual([ns1.config.network, ns1.config.hostname, ns1.config.limits, ns1.initPid, ns1.jid], ['none', 'box', { memoryBytes: 0, cpus: 0, pids: 0 }, null, null]);
  });

  it('get shows the whole config, and the init pid while a namespaces container runs', async () => {
    let r = await q('get', 'ns1');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split('\n').slice(0, 14).map((l) => l.replace(/:\s+/, ': ')), [
      'name: ns1', 'state: stopped', 'isolation: namespaces', 'hostname: box', 'network: none', 'uid map: 0:100000:65536', 'gid map: default (0:100000:65536)',
      'mounts: none', 'user: www', "group: the user's", 'env: A=1', 'workdir: /var/www', 'limits: none', 'services: -',
    ]);
    await q('config', 'ns1', 'httpd');
    assert.equal((await q('start', 'ns1')).code, 0);
    try {
      r = await q('get', 'ns1');
      assert.match(r.out, /^init pid:\s+\d+$/m);
      const j = JSON.parse((await q('--json', 'get', 'ns1')).out);
      assert.equal(typeof j[0].result.container.initPid, 'number');
      assert.equal(j[0].result.container.state, 'running');
    } finally {
      await q('stop', 'ns1');
    }
    assert.doesNotMatch((await q('get', 'ns1')).out, /init pid/);
    r = await q('get', 'nosuch');
    assert.equal(r.code, 1);
    assert.match(r.err, /nosuch/);
  });

  it('version shows the modes offered (default marked), the limits it enforces and what is missing', async () => {
    const r = await q('version');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^isolation: chroot \(default\), namespaces; limits: pids \(not memory, cpu\)$/m);
    assert.match(r.out, /^missing: limit memory: the model has no memory controller$/m);
    const j = JSON.parse((await q('--json', 'version')).out);
    assert.deepEqual(j[0].result.agent.capabilities.isolationModes, ['chroot', 'namespaces']);
    assert.equal(j[0].result.agent.capabilities.defaultIsolation, 'chroot');
  });
});

describe('qfleet isolation over an inventory (in process, two real agents)', function () {
  this.timeout(30_000);
  let dir: string;
  let agents: InProcessAgent[];
  let inv: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-iso-fleet-'));
    agents = await Promise.all(['a', 'b'].map((n) => InProcessAgent.start(join(dir, n))));
    inv = writeInventory(join(dir, 'hosts.yml'), `all:\n  hosts:\n${agents.map((a, i) => `    host${i + 1}:\n      qfleet_connection: local\n      qfleet_agent_socket_path: ${a.socket}\n`).join('')}`);
  });
  after(() => {
    agents?.forEach((a) => a.stop());
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => { process.exitCode = undefined; });

  it('create --isolation on every host, then get: each host\'s lines prefixed with it; list has HOST and ISOLATION', async () => {
    let r = await cli(['-i', inv, 'create', 'web1', '--isolation', 'namespaces', '--pids', '64']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split('\n').map((l) => l.replace(/ created at .*\(/, ' (')).sort(), [
      '2 of 2 hosts answered.', 'host1: Chroot container web1 (isolation namespaces).', 'host2: Chroot container web1 (isolation namespaces).',
    ]);
    r = await cli(['-i', inv, 'get', 'web1']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split('\n').filter((l) => /isolation:|limits:/.test(l)).map((l) => l.replace(/:\s+/g, ': ')), [
      'host1: isolation: namespaces', 'host1: limits: pids 64', 'host2: isolation: namespaces', 'host2: limits: pids 64',
    ]);
    r = await cli(['-i', inv, 'list']);
    assert.match(r.out.split('\n')[0]!, /^HOST\s+NAME\s+STATE\s+ISOLATION\s/);
    assert.deepEqual(r.out.split('\n').slice(1, 3).map((l) => l.split(/\s+/).slice(0, 4)), [['host1', 'web1', 'stopped', 'namespaces'], ['host2', 'web1', 'stopped', 'namespaces']]);
  });
});

/** An agent of API revision 2: it would ignore Create.config and Configure.update_mask and act without them. */
describe('qfleet and an agent before API revision 3', () => {
  afterEach(() => { process.exitCode = undefined; });
  const calls: string[] = [];
  const answer = (method: string, res: unknown) => (req: unknown, _m: grpc.Metadata, _o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => {
    calls.push(`${method} ${JSON.stringify(req)}`);
    setImmediate(() => cb(null, res));
    return { cancel: () => undefined };
  };
  const container = { name: 'web1', state: 'STATE_STOPPED', reason: '', services: [], mounts: [], baseRelease: 'debian 12', createTime: null, diskUsageBytes: '0', path: '/c/web1', config: null, initPid: 0, jid: 0 };
  const factory: ClientFactory = () =>
    ({
      Version: answer('Version', { agentVersion: '0.1.0', apiRevision: 2, capabilities: null }),
      Create: answer('Create', { container }),
      Configure: answer('Configure', { container }),
      close: () => undefined,
    }) as unknown as AgentServiceClient;
  beforeEach(() => { calls.length = 0; });

  it('create or config with a config option: the host fails in words, and neither Create nor Configure is sent', async () => {
    let r = await cli(['create', 'web1', '--isolation', 'namespaces', '--memory', '1G'], { factory });
    assert.equal(r.code, 1);
    assert.equal(r.err, 'qfleet: qfleetd 0.1.0 (API 2) would ignore container config (--isolation, --memory), which needs API 3; nothing was asked of it');
    r = await cli(['config', 'web1', 'httpd', '--pids', '10'], { factory });
    assert.equal(r.code, 1);
    assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['Version', 'Version']);
    r = await cli(['--json', 'create', 'web1', '--isolation', 'jail'], { factory });
    const j = JSON.parse(r.out);
    assert.deepEqual([j[0].status, j[0].error], ['failed', 'qfleetd 0.1.0 (API 2) would ignore container config (--isolation), which needs API 3; nothing was asked of it']);
  });

  it('--dry-run: the step fails with the same words, and validate_only is not sent either', async () => {
    const r = await cli(['--dry-run', 'config', 'web1', '--user', 'www'], { factory });
    assert.equal(r.code, 1);
    assert.match(r.out, /^localhost\s+web1\s+-\s+config: user set to www\s+qfleetd 0\.1\.0 \(API 2\) would ignore container config \(--user\)/m);
    assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['Version']);
  });

  it('without options it is asked as before (qchroot create and config need nothing new)', async () => {
    assert.equal((await cli(['create', 'web1'], { factory })).code, 0);
    assert.equal((await cli(['config', 'web1'], { factory })).code, 0);
    assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['Create', 'Configure']);
    assert.ok(!calls[1]!.includes('updateMask'), calls[1]);
  });
});
