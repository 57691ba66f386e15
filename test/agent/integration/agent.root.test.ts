import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess } from '../../support/agent-process.js';
import { makeBusyboxTarball, pickTestPort } from '../../support/busybox-base.js';
import { codeOf, unary } from '../../support/grpc.js';
import { httpGet, mountsUnder, processesMentioning, processesRootedUnder, treeDigest } from '../../support/host-state.js';

/**
 * The agent for real, as root: a qfleetd process on private paths, a tiny
 * busybox base, real bind mounts and real httpd services. Its containers are
 * qchroot's (the agent's default isolation set to chroot): the mounts and
 * processes asserted here are the host's. Namespaces containers through the
 * engine are test/agent/drivers/linux/namespaces-engine.root.test.ts.
 */
describe('qfleetd on Linux, for real @root', function () {
  this.timeout(180_000);
  let dir: string;
  let agent: AgentProcess;
  let tarball: string;
  const base = () => ({ source: tarball, method: 'INSTALL_METHOD_TARBALL' as const });

  const install = (a: AgentProcess) =>
    new Promise<void>((resolve, reject) => {
      const s = a.client.Install(base());
      s.on('data', () => undefined);
      s.on('error', reject);
      s.on('end', () => resolve());
    });
  const containerRoot = (name: string) => join(agent.rootDir, 'containers', name);
  /** Each container's httpd gets its own port, written as an operator would. */
  const setPort = (name: string, port: number) => writeFileSync(join(containerRoot(name), 'etc/qfleet-httpd.port'), `${port}\n`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-int-'));
    tarball = await makeBusyboxTarball(join(dir, 'base-work'), join(dir, 'base.tar.gz'));
    agent = new AgentProcess(join(dir, 'agent'));
    await agent.start(['--default-isolation', 'chroot']);
    await install(agent);
  });

  after(async () => {
    try {
      if (agent) {
        await unary(agent.client, 'Stop', { all: true }).catch(() => undefined);
        await agent.stop();
      }
    } finally {
      // Belt and braces: nothing of ours may stay mounted, whatever failed above.
      for (const t of mountsUnder(dir).reverse()) await execa('umount', ['-l', t], { reject: false });
      for (const pid of processesRootedUnder(dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('walks the whole qchroot lifecycle through the qfleet CLI', async () => {
    const port = pickTestPort();
    let r = await agent.cli(['create', 'life1']);
    assert.equal(r.exitCode, 0, r.stderr);
    setPort('life1', port);
    r = await agent.cli(['start', 'life1']);
    assert.equal(r.stdout.trim(), 'life1: Bypassed; No service configured yet');
    r = await agent.cli(['config', 'life1', 'httpd']);
    assert.equal(r.exitCode, 0, r.stderr);
    r = await agent.cli(['start', 'life1']);
    assert.equal(r.stdout.trim(), 'life1: Start chroot completed.');
    assert.equal(r.exitCode, 0);
    assert.match((await httpGet(port)) ?? '', /qfleet busybox httpd/);
    r = await agent.cli(['start', 'life1']);
    assert.equal(r.stdout.trim(), 'life1: Error; Chroot is already started.');

    r = await agent.cli(['--json', 'list']);
    // qfleet's own JSON (docs/json.md): the same host array as over an inventory, the local agent as its one host.
    const doc = JSON.parse(r.stdout) as any[];
    assert.deepEqual(doc.map((h) => [h.host, h.status]), [['localhost', 'ok']]);
    const c = doc[0].result.containers.find((x: any) => x.name === 'life1');
    assert.equal(c.state, 'running');
    assert.equal(c.reason, null);
    assert.deepEqual(c.services, [{ name: 'httpd', running: true }]);
    assert.ok(c.mounts.some((m: any) => m.target === `${containerRoot('life1')}/sharedfs`));
    assert.equal(typeof c.diskUsageBytes, 'number');
    assert.ok(c.diskUsageBytes > 0);
    assert.match(c.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.match(c.baseRelease, /\S+ \S+/);

    r = await agent.cli(['exec', 'life1', '--', 'cat', '/etc/qfleet-httpd.port']);
    assert.equal(r.stdout.trim(), String(port));
    r = await agent.cli(['exec', 'life1', '--', 'sh', '-c', 'exit 7']);
    assert.equal(r.exitCode, 7, 'exec passes the exit status through');

    r = await agent.cli(['delete', 'life1']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /stop these chroot containers before deleting: life1 \(running\)/);

    r = await agent.cli(['stop', 'life1']);
    assert.equal(r.stdout.trim(), 'life1: Chroot is stopped.');
    assert.equal(await httpGet(port, 500), undefined, 'httpd is gone');
    assert.deepEqual(mountsUnder(containerRoot('life1')), []);
    r = await agent.cli(['stop', 'life1']);
    assert.equal(r.stdout.trim(), 'life1: Error; Chroot is already stopped.');

    r = await agent.cli(['delete', 'life1']);
    assert.equal(r.stdout.trim(), 'life1: Chroot is deleted.');
    assert.equal(existsSync(containerRoot('life1')), false);
  });

  it('console from a pipe runs the input in the stopped container, then unmounts it', async () => {
    await unary(agent.client, 'Create', { name: 'con1' });
    const r = await agent.cli(['console', 'con1'], 'cd /etc/init.d\nls\necho "in $(pwd)"\nls /sharedfs\nexit 3\n');
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stdout, /^httpd$/m);
    assert.match(r.stdout, /^in \/etc\/init\.d$/m);
    assert.match(r.stdout, /^bin$/m, 'sharedfs is mounted during the session');
    assert.deepEqual(mountsUnder(containerRoot('con1')), [], 'and unmounted after');
    assert.equal((await unary(agent.client, 'Get', { name: 'con1' })).container.state, 'STATE_STOPPED');
    await unary(agent.client, 'Delete', { names: ['con1'] });
  });

  it('console on a pseudo-terminal starts at the client size and follows a resize', async () => {
    await unary(agent.client, 'Create', { name: 'tty1' });
    const stream = agent.client.Exec();
    let out = '';
    stream.on('data', (m: any) => { if (m.stdout) out += m.stdout.toString(); });
    const ended = new Promise<void>((resolve) => { stream.on('end', resolve); stream.on('error', () => resolve()); });
    stream.write({ start: { name: 'tty1', tty: true, console: true, size: { rows: 24, cols: 80 }, env: { TERM: 'vt100' } } });
    /** Types `stty size` until the answer shows up (bounded): the shell and the resize are asynchronous. */
    const sizeShows = async (want: string) => {
      for (let i = 0; i < 40 && !out.includes(want); i++) {
        stream.write({ stdin: Buffer.from('stty size\n') });
        await new Promise((r) => setTimeout(r, 250));
      }
      return out.includes(want);
    };
    assert.ok(await sizeShows('24 80'), `initial size; output was ${JSON.stringify(out.slice(-300))}`);
    assert.match(out, /tty1:\/# /, 'the prompt shows the container and path');
    stream.write({ resize: { rows: 50, cols: 132 } });
    assert.ok(await sizeShows('50 132'), `resized; output was ${JSON.stringify(out.slice(-300))}`);
    stream.write({ stdin: Buffer.from('exit\n') });
    await ended;
    assert.deepEqual(mountsUnder(containerRoot('tty1')), []);
    await unary(agent.client, 'Delete', { names: ['tty1'] });
  });

  it('exec of a command that leaves a daemon behind returns with its exit status; stop then ends the daemon', async () => {
    await unary(agent.client, 'Create', { name: 'dmn1' });
    setPort('dmn1', pickTestPort());
    await unary(agent.client, 'Configure', { name: 'dmn1', services: ['httpd'] });
    await unary(agent.client, 'Start', { names: ['dmn1'] });
    const r = await agent.cli(['exec', 'dmn1', '--', 'sh', '-c', 'sleep 600 & echo left-a-daemon; exit 4']);
    assert.equal(r.exitCode, 4, r.stderr);
    assert.equal(r.stdout, 'left-a-daemon');
    const stopped = await unary(agent.client, 'Stop', { names: ['dmn1'] });
    assert.equal(stopped.results[0].outcome, 'OUTCOME_STOPPED');
    assert.deepEqual(processesRootedUnder(containerRoot('dmn1')), []);
    await unary(agent.client, 'Delete', { names: ['dmn1'] });
  });

  it('refuses bad names with INVALID_ARGUMENT, and the CLI exits 2', async () => {
    for (const name of ['../x', 'a/b', '123', '', 'x'.repeat(300)]) {
      assert.equal(await codeOf(unary(agent.client, 'Create', { name })), grpc.status.INVALID_ARGUMENT, name);
    }
    const r = await agent.cli(['create', '../x']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /may contain only letters, digits, dash and underscore/);
    assert.deepEqual(readdirSync(join(agent.rootDir, 'containers')).filter((n) => n.includes('x')), []);
  });

  it('starts and stops 20 containers with -A, each serving its own port', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `many${String(i).padStart(2, '0')}`);
    const first = pickTestPort();
    for (const [i, n] of names.entries()) {
      await unary(agent.client, 'Create', { name: n });
      setPort(n, first + i);
      await unary(agent.client, 'Configure', { name: n, services: ['httpd'] });
    }
    const started = await unary(agent.client, 'Start', { all: true }, 170_000);
    assert.deepEqual(started.results.map((x: any) => x.name), names, 'in name order');
    assert.ok(started.results.every((x: any) => x.outcome === 'OUTCOME_STARTED'), JSON.stringify(started.results.filter((x: any) => x.outcome !== 'OUTCOME_STARTED')));
    const bodies = await Promise.all(names.map((_, i) => httpGet(first + i)));
    assert.ok(bodies.every((b) => b?.includes('qfleet busybox httpd')));

    const stopped = await unary(agent.client, 'Stop', { all: true }, 170_000);
    assert.ok(stopped.results.every((x: any) => x.outcome === 'OUTCOME_STOPPED'));
    for (const n of names) assert.deepEqual(mountsUnder(containerRoot(n)), [], n);
    const deleted = await unary(agent.client, 'Delete', { names }, 170_000);
    assert.ok(deleted.results.every((x: any) => x.outcome === 'OUTCOME_DELETED'));
  });

  it('keeps sharedfs read-only inside a container', async () => {
    await unary(agent.client, 'Create', { name: 'ro1' });
    setPort('ro1', pickTestPort());
    await unary(agent.client, 'Configure', { name: 'ro1', services: ['httpd'] });
    await unary(agent.client, 'Start', { names: ['ro1'] });
    for (const cmd of ['echo x > /sharedfs/bin/planted', 'echo x > /bin/planted', 'rm /bin/busybox']) {
      const r = await agent.cli(['exec', 'ro1', '--', 'sh', '-c', cmd]);
      assert.notEqual(r.exitCode, 0, `${cmd} must fail`);
      assert.match(r.stderr, /Read-only file system/);
    }
    assert.equal(existsSync(join(agent.rootDir, 'sharedfs/bin/planted')), false);
    await unary(agent.client, 'Stop', { names: ['ro1'] });
    await unary(agent.client, 'Delete', { names: ['ro1'] });
  });

  it('delete leaves a host directory bind-mounted read-write inside the container byte-for-byte intact', async () => {
    await unary(agent.client, 'Create', { name: 'bind1' });
    const hostDir = join(dir, 'precious');
    mkdirSync(join(hostDir, 'sub'), { recursive: true });
    writeFileSync(join(hostDir, 'data.txt'), 'keep me\n');
    writeFileSync(join(hostDir, 'sub/more.bin'), Buffer.from([0, 1, 2, 3, 255]));
    symlinkSync('/etc/passwd', join(hostDir, 'link'));
    const before = treeDigest(hostDir);
    const target = join(containerRoot('bind1'), 'mnt');
    mkdirSync(target);
    await execa('mount', ['--bind', hostDir, target]);
    try {
      const list = await unary(agent.client, 'Get', { name: 'bind1' });
      assert.equal(list.container.state, 'STATE_BROKEN', 'a stopped container with a mount in it is broken');
      const res = await unary(agent.client, 'Delete', { names: ['bind1'] });
      assert.equal(res.results[0].outcome, 'OUTCOME_DELETED');
    } finally {
      if (mountsUnder(target).length) await execa('umount', [target], { reject: false });
    }
    assert.equal(treeDigest(hostDir), before);
    assert.equal(readFileSync(join(hostDir, 'data.txt'), 'utf8'), 'keep me\n');
    assert.equal(existsSync(containerRoot('bind1')), false);
  });

  it('refuses a symlink planted at the sharedfs mount point, and changes nothing on the host', async () => {
    await unary(agent.client, 'Create', { name: 'sym1' });
    await unary(agent.client, 'Configure', { name: 'sym1', services: ['httpd'] });
    const mp = join(containerRoot('sym1'), 'sharedfs');
    const etcBefore = treeDigest('/etc/init.d');
    for (const evil of ['/etc', '/', '..']) {
      rmSync(mp, { recursive: true, force: true });
      symlinkSync(evil, mp);
      const res = await unary(agent.client, 'Start', { names: ['sym1'] });
      assert.equal(res.results[0].outcome, 'OUTCOME_FAILED', evil);
      assert.match(res.results[0].message, /^Error; .*(symlink|not a directory|sharedfs)/i);
      assert.deepEqual(mountsUnder(containerRoot('sym1')), [], `nothing mounted for ${evil}`);
      assert.deepEqual(mountsUnder('/etc'), []);
    }
    assert.equal(treeDigest('/etc/init.d'), etcBefore);
    const del = await unary(agent.client, 'Delete', { names: ['sym1'] });
    assert.equal(del.results[0].outcome, 'OUTCOME_DELETED');
    assert.ok(existsSync('/etc/passwd'), 'the symlink was removed, not what it pointed to');
  });

  describe('kill -9 of the agent, then restart', () => {
    /** Polls the state file until the agent marks `op` in flight, then SIGKILLs it. */
    async function killDuring(name: string, op: string, act: () => Promise<unknown>): Promise<void> {
      const file = join(agent.stateDir, `${name}.json`);
      const pending = act().catch(() => undefined);
      const deadline = Date.now() + 20_000;
      let seen = false;
      while (!seen && Date.now() < deadline) {
        try {
          seen = (JSON.parse(readFileSync(file, 'utf8')) as { pending?: { op: string } }).pending?.op === op;
        } catch { /* not written yet, or mid-rename */ }
        if (!seen) await new Promise((r) => setTimeout(r, 2));
      }
      await agent.kill9();
      await pending;
      assert.ok(seen, `the agent was killed while its ${op} of ${name} was in flight`);
    }

    /** Get, once the recovery the agent runs in the background (serving meanwhile) is done with `name`. */
    async function recovered(name: string): Promise<any> {
      for (let i = 0; ; i++) {
        const got = await unary(agent.client, 'Get', { name });
        if (got.container.state !== 'STATE_RECOVERING' || i >= 300) return got;
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    it('mid-create: the partial container is removed and nothing is left behind', async () => {
      // A template big enough that copying it takes a while.
      const bulk = join(agent.rootDir, 'template/var/bulk');
      mkdirSync(bulk, { recursive: true });
      for (let i = 0; i < 4000; i++) writeFileSync(join(bulk, `f${i}`), 'x'.repeat(2048));
      try {
        await killDuring('crash1', 'create', () => unary(agent.client, 'Create', { name: 'crash1' }));
        await agent.start();
        await new Promise((r) => setTimeout(r, 200));
        const list = await unary(agent.client, 'List', {});
        assert.equal(list.containers.find((c: any) => c.name === 'crash1'), undefined);
        assert.equal(existsSync(join(agent.stateDir, 'crash1.json')), false);
        assert.equal(existsSync(containerRoot('crash1')), false, 'the partial copy is gone');
        assert.deepEqual(processesMentioning(containerRoot('crash1')), [], 'no cp left running');
        assert.deepEqual(mountsUnder(containerRoot('crash1')), []);
      } finally {
        rmSync(bulk, { recursive: true, force: true });
      }
    });

    it('mid-start: the start is rolled back (services, processes, mounts) and the container shows stopped', async () => {
      await unary(agent.client, 'Create', { name: 'crash2' });
      const port = pickTestPort();
      setPort('crash2', port);
      await unary(agent.client, 'Configure', { name: 'crash2', services: ['httpd'] });
      await killDuring('crash2', 'start', () => unary(agent.client, 'Start', { names: ['crash2'] }));
      await agent.start();
      const got = await recovered('crash2');
      assert.equal(got.container.state, 'STATE_STOPPED', got.container.reason);
      assert.deepEqual(mountsUnder(containerRoot('crash2')), []);
      assert.deepEqual(processesRootedUnder(containerRoot('crash2')), []);
      assert.equal(await httpGet(port, 500), undefined);
      assert.match(readFileSync(agent.logFile, 'utf8'), /recovered interrupted operation.*crash2|crash2.*recovered interrupted operation/);
      // And it starts cleanly afterwards.
      const again = await unary(agent.client, 'Start', { names: ['crash2'] });
      assert.equal(again.results[0].outcome, 'OUTCOME_STARTED');
      await unary(agent.client, 'Stop', { names: ['crash2'] });
      await unary(agent.client, 'Delete', { names: ['crash2'] });
    });

    it('restarting over a running container keeps its services running', async () => {
      await unary(agent.client, 'Create', { name: 'keep1' });
      const port = pickTestPort();
      setPort('keep1', port);
      await unary(agent.client, 'Configure', { name: 'keep1', services: ['httpd'] });
      await unary(agent.client, 'Start', { names: ['keep1'] });
      await agent.kill9();
      await agent.start();
      assert.equal((await unary(agent.client, 'Get', { name: 'keep1' })).container.state, 'STATE_RUNNING');
      assert.match((await httpGet(port)) ?? '', /busybox httpd/);
      await unary(agent.client, 'Stop', { names: ['keep1'] });
      await unary(agent.client, 'Delete', { names: ['keep1'] });
    });
  });
});
