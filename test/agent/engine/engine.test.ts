import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../agent/engine/engine.js';
import { asQfleetError } from '../../../agent/errors.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { silentLogger } from '../../../agent/log.js';
import { MemoryHost } from '../../support/memory-host.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { instantClock } from '../../support/instant-clock.js';
import type { Clock } from '../../../agent/engine/clock.js';
import { gate } from './gate.js';


describe('Engine (qchroot semantics, on an in-memory host)', () => {
  let dir: string;
  let host: MemoryHost;
  let store: StateStore;
  let engine: Engine;
  const spec = { method: 'directory' as const, source: '/base', mirror: '' };

  const make = () => new Engine({ driver: host, store, clock: instantClock(), log: silentLogger, stopGraceMs: 1000, runner: new FakeRunner() });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-engine-'));
    host = new MemoryHost(join(dir, 'root'));
    store = new StateStore(join(dir, 'state'));
    engine = make();
    await engine.install(spec, false, () => undefined);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('install', () => {
    it('refuses a base whose release differs from the host, and discards it', async () => {
      host.baseRelease = 'debian 11';
      await assert.rejects(engine.install(spec, false, () => undefined), /base is debian 11 but this host runs debian 12.*--force/);
      assert.ok(host.calls.some((c) => c.startsWith('discard')));
      assert.equal(await host.installedRelease(), 'debian 12');
    });

    it('accepts a different release when forced', async () => {
      host.baseRelease = 'debian 11';
      const out = await engine.install(spec, true, () => undefined);
      assert.equal(out.baseRelease, 'debian 11');
    });
  });

  describe('create', () => {
    it('creates a stopped container with the installed release and a creation time', async () => {
      const c = await engine.create('web1');
      assert.equal(c.state, 'stopped');
      assert.equal(c.baseRelease, 'debian 12');
      assert.equal(c.createdAt?.toISOString(), '2026-11-23T12:00:00.000Z');
      assert.equal((await store.read('web1'))?.pending, undefined);
    });

    it('refuses a duplicate name with ALREADY_EXISTS', async () => {
      await engine.create('web1');
      await assert.rejects(engine.create('web1'), (e: Error & { kind?: string }) => e.kind === 'already-exists');
    });

    it('refuses before install with a precondition error', async () => {
      host.installed = undefined;
      await assert.rejects(engine.create('web1'), /run qfleet install first/);
    });

    for (const bad of ['../x', 'a/b', '123', '', 'x'.repeat(300), '-A', 'a b', 'é']) {
      it(`refuses the name ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 10)}…` : bad)} as an invalid argument`, async () => {
        await assert.rejects(engine.create(bad), (e: Error & { kind?: string }) => e.kind === 'invalid-argument');
        assert.deepEqual(await store.names(), []);
      });
    }
  });

  describe('start and stop', () => {
    beforeEach(async () => {
      await engine.create('web1');
      await engine.configure('web1', ['httpd']);
    });

    it('bypasses a container without services', async () => {
      await engine.create('bare');
      assert.deepEqual(await engine.start({ names: ['bare'], all: false }), [
        { name: 'bare', outcome: 'bypassed', message: 'Bypassed; No service configured yet' },
      ]);
    });

    it('starts: mounts, starts each service, reports running', async () => {
      assert.deepEqual(await engine.start({ names: ['web1'], all: false }), [
        { name: 'web1', outcome: 'started', message: 'Start chroot completed.', state: 'stopped' },
      ]);
      const v = await engine.get('web1');
      assert.equal(v.state, 'running');
      assert.deepEqual(v.services.map((s) => [s.name, s.running]), [['httpd', true]]);
      assert.equal(v.mounts.length, 2);
    });

    it('says a started container is already started', async () => {
      await engine.start({ names: ['web1'], all: false });
      const [r] = await engine.start({ names: ['web1'], all: false });
      assert.equal(r?.message, 'Error; Chroot is already started.');
    });

    it('stops: services, then the mounts; then says it is already stopped', async () => {
      await engine.start({ names: ['web1'], all: false });
      const [r] = await engine.stop({ names: ['web1'], all: false }, undefined);
      assert.equal(r?.message, 'Chroot is stopped.');
      assert.deepEqual(host.table, []);
      assert.equal((await engine.get('web1')).state, 'stopped');
      const [again] = await engine.stop({ names: ['web1'], all: false }, undefined);
      assert.equal(again?.message, 'Error; Chroot is already stopped.');
    });

    it('stop sends SIGTERM to strays, then SIGKILL to what ignores it', async () => {
      await engine.start({ names: ['web1'], all: false });
      host.spawnStray('web1', true);
      await engine.stop({ names: ['web1'], all: false }, undefined);
      assert.ok(host.calls.some((c) => c.startsWith('kill -SIGTERM')));
      assert.ok(host.calls.some((c) => c.startsWith('kill -SIGKILL')));
      assert.deepEqual(await host.processesIn('web1'), []);
    });

    it('rolls a failed start back to stopped and says why', async () => {
      host.crashingServices.add('httpd');
      const [r] = await engine.start({ names: ['web1'], all: false });
      assert.equal(r?.outcome, 'failed');
      assert.match(r!.message, /^Error; service httpd did not stay running/);
      assert.deepEqual(host.table, [], 'mounts were rolled back');
      assert.equal((await engine.get('web1')).state, 'stopped');
    });

    it('start -A and stop -A process every container in name order', async () => {
      for (const n of ['c3', 'c1', 'c2']) { await engine.create(n); await engine.configure(n, ['httpd']); }
      const started = await engine.start({ names: [], all: true });
      assert.deepEqual(started.map((r) => r.name), ['c1', 'c2', 'c3', 'web1']);
      assert.ok(started.every((r) => r.outcome === 'started'));
      const stopped = await engine.stop({ names: [], all: true }, undefined);
      assert.ok(stopped.every((r) => r.outcome === 'stopped'));
    });

    it('refuses unknown names as NOT_FOUND before touching any container', async () => {
      await assert.rejects(engine.start({ names: ['web1', 'nope'], all: false }), (e: Error & { kind?: string }) => e.kind === 'not-found');
      assert.equal((await engine.get('web1')).state, 'stopped');
    });

    it('refuses names together with -A', async () => {
      await assert.rejects(engine.start({ names: ['web1'], all: true }), /not both/);
    });
  });

  describe('broken containers', () => {
    beforeEach(async () => {
      await engine.create('web1');
      await engine.configure('web1', ['httpd']);
      await engine.start({ names: ['web1'], all: false });
    });

    it('reports a running container whose service died as broken, with the reason', async () => {
      host.procs.clear();
      const v = await engine.get('web1');
      assert.equal(v.state, 'broken');
      assert.match(v.reason, /service httpd is not running/);
    });

    it('reports lost mounts (a reboot) as broken; start repairs it', async () => {
      host.table = [];
      host.procs.clear();
      const v = await engine.get('web1');
      assert.equal(v.state, 'broken');
      assert.match(v.reason, /not mounted/);
      const [r] = await engine.start({ names: ['web1'], all: false });
      assert.equal(r?.outcome, 'started');
      assert.equal((await engine.get('web1')).state, 'running');
    });

    it('stop still works on a broken container', async () => {
      host.procs.clear();
      const [r] = await engine.stop({ names: ['web1'], all: false }, undefined);
      assert.equal(r?.outcome, 'stopped');
      assert.equal((await engine.get('web1')).state, 'stopped');
    });

    it('a stop that cannot unmount leaves the container broken, naming the mount', async () => {
      host.busyTargets.add(`${host.layout.containerRoot('web1')}/dev`);
      const [r] = await engine.stop({ names: ['web1'], all: false }, undefined);
      assert.equal(r?.outcome, 'failed');
      const v = await engine.get('web1');
      assert.equal(v.state, 'broken');
      assert.match(v.reason, /still mounted: .*web1\/dev/);
    });
  });

  describe('delete', () => {
    it('refuses while any target runs, and deletes nothing', async () => {
      for (const n of ['a1', 'a2']) { await engine.create(n); await engine.configure(n, ['httpd']); }
      await engine.start({ names: ['a2'], all: false });
      await assert.rejects(engine.delete({ names: [], all: true }), /stop these chroot containers before deleting: a2 \(running\)\. Nothing was deleted/);
      assert.deepEqual(await store.names(), ['a1', 'a2']);
    });

    it('refuses while stray processes run in a stopped container', async () => {
      await engine.create('a1');
      host.spawnStray('a1');
      await assert.rejects(engine.delete({ names: ['a1'], all: false }), /a1 \(processes \d+\)/);
    });

    it('answers at once while a start holds the container, saying so; nothing is deleted', async () => {
      await engine.create('a1');
      await engine.configure('a1', ['httpd']);
      // The start holds the container until the test opens the gate: ordering, not timing.
      const orig = host.mountContainer.bind(host);
      const g = gate();
      host.mountContainer = async (n: string) => { await g.pass(); return orig(n); };
      const started = engine.start({ names: ['a1'], all: false }, 'req-start');
      await g.reached;
      assert.equal((await engine.get('a1')).state, 'starting');
      const refused = engine.delete({ names: ['a1'], all: false });
      await assert.rejects(refused, (e: Error) => {
        assert.equal(asQfleetError(e).kind, 'aborted');
        assert.match(e.message, /a1 \(busy starting since 2026-11-23T12:00:00\.000Z \(request req-start\)\)\. Nothing was deleted/);
        return true;
      });
      g.open();
      assert.equal((await started)[0]?.outcome, 'started');
      assert.deepEqual(await store.names(), ['a1']);
      assert.equal((await engine.get('a1')).state, 'running');
    });

    it('deletes stopped containers and their state files', async () => {
      await engine.create('a1');
      assert.deepEqual(await engine.delete({ names: ['a1'], all: false }), [{ name: 'a1', outcome: 'deleted', message: 'Chroot is deleted.' }]);
      assert.deepEqual(await store.names(), []);
      assert.ok(host.calls.includes('remove a1'));
    });
  });

  describe('configure', () => {
    it('refuses a service without an rc script in the container', async () => {
      await engine.create('a1');
      await assert.rejects(engine.configure('a1', ['httpd', 'nginx']), /no rc script for nginx/);
    });
    it('refuses a service name that is not an rc script name', async () => {
      await engine.create('a1');
      await assert.rejects(engine.configure('a1', ['../../etc/passwd']), (e: Error & { kind?: string }) => e.kind === 'invalid-argument');
    });
    it('lists services in the order given and clears them with none', async () => {
      await engine.create('a1');
      assert.deepEqual((await engine.configure('a1', ['sshd', 'httpd'])).services.map((s) => s.name), ['sshd', 'httpd']);
      assert.deepEqual((await engine.configure('a1', [])).services, []);
    });
  });

  describe('disk use', () => {
    it('is measured once, reused while fresh, and refreshed in the background when stale', async () => {
      let t = Date.parse('2026-11-23T12:00:00Z');
      const clock: Clock = { now: () => new Date(t), sleep: async () => undefined };
      const e = new Engine({ driver: host, store, clock, log: silentLogger, runner: new FakeRunner() });
      let measured = 0;
      let bytes = 1000;
      host.diskUsage = async () => { measured++; return bytes; };
      await e.create('du1');
      assert.equal((await e.get('du1')).diskUsageBytes, 1000);
      bytes = 2000;
      assert.equal((await e.get('du1')).diskUsageBytes, 1000, 'a fresh figure is reused');
      assert.equal(measured, 1);
      t += 61_000;
      assert.equal((await e.get('du1')).diskUsageBytes, 1000, 'a stale figure is returned at once…');
      await new Promise((r) => setImmediate(r));
      assert.equal((await e.get('du1')).diskUsageBytes, 2000, '…while a new one is measured');
      assert.equal(measured, 2);
    });

    it('List never waits for a first measurement (an agent just started): it answers "not measured yet" and the next List has the figure; get waits for it', async () => {
      host.diskUsage = async () => 4096;
      await make().create('du2');
      // A new agent over the same host: nothing measured yet, and the walk is held until the test opens it.
      const walk = gate();
      let walks = 0;
      host.diskUsage = async () => { walks++; await walk.pass(); return 8192; };
      const e = make();
      const first = (await e.list()).find((v) => v.name === 'du2')!;
      assert.equal(first.diskUsageBytes, undefined, 'answered while the walk is held');
      assert.equal(first.state, 'stopped', 'the rest of the view is all there');
      await walk.reached;
      assert.equal((await e.list()).find((v) => v.name === 'du2')!.diskUsageBytes, undefined, 'still measuring: not a second walk');
      assert.equal(walks, 1);
      const got = e.get('du2');
      walk.open();
      assert.equal((await got).diskUsageBytes, 8192, 'get waited for the walk');
      assert.equal((await e.list()).find((v) => v.name === 'du2')!.diskUsageBytes, 8192);
    });

    it("the first measurements a List starts go at the pace of background work; a Get waiting for one asks the driver to hurry it", async () => {
      await make().create('du7');
      await make().create('du8');
      const walk = gate();
      const asked: string[] = [];
      let urgentAsked!: () => void;
      const urgent = new Promise<void>((r) => { urgentAsked = r; });
      host.diskUsage = async (name: string, opts?: { urgent?: boolean }) => {
        asked.push(`${name}${opts?.urgent ? ' urgent' : ''}`);
        if (opts?.urgent) urgentAsked();
        await walk.pass();
        return 1024;
      };
      const e = make();
      await e.list();
      assert.deepEqual(asked, ['du7', 'du8']);
      const got = e.get('du7');
      await urgent;
      assert.deepEqual(asked, ['du7', 'du8', 'du7 urgent']);
      walk.open();
      assert.equal((await got).diskUsageBytes, 1024);
      const fresh = make();
      assert.equal((await fresh.get('du8')).diskUsageBytes, 1024);
      assert.deepEqual(asked.slice(3), ['du8 urgent'], 'a Get that finds nothing started asks urgently at once');
    });

    it('create answers from what it did, asking the host nothing more: no walk of the tree it copied, no process scan; the first List measures it', async () => {
      let walks = 0;
      host.diskUsage = async () => { walks++; return 2048; };
      const e = make();
      host.processTableReads = 0;
      const view = await e.create('du4');
      assert.equal(view.state, 'stopped');
      assert.equal(view.reason, '');
      assert.deepEqual(view.mounts, []);
      assert.equal(view.diskUsageBytes, undefined, 'not measured yet');
      await new Promise((r) => setImmediate(r));
      assert.equal(walks, 0, 'create started no walk');
      assert.equal(host.processTableReads, 0, 'create read no process table');
      assert.equal((await e.list()).find((v) => v.name === 'du4')!.diskUsageBytes, undefined, 'the first List answers at once');
      await new Promise((r) => setImmediate(r));
      assert.equal(walks, 1);
      assert.equal((await e.list()).find((v) => v.name === 'du4')!.diskUsageBytes, 2048, 'and the next has the figure');
    });

    for (const isolation of ['chroot', 'namespaces'] as const) {
      it(`the view create answers (${isolation}) is the one Get then finds by asking the host`, async () => {
        host.diskUsage = async () => 2048;
        const e = make();
        const made = await e.create(`du5-${isolation}`, undefined, {}, { isolation });
        assert.deepEqual({ ...made, diskUsageBytes: 2048 }, await e.get(`du5-${isolation}`));
      });
    }

    it('Get waits for a first measurement only so long: past the bound it answers the container without the figure, which follows', async () => {
      const walk = gate();
      host.diskUsage = async () => { await walk.pass(); return 4096; };
      const e = new Engine({ driver: host, store, clock: instantClock(), log: silentLogger, runner: new FakeRunner(), firstDiskWaitMs: 20 });
      await e.create('du6');
      const got = await e.get('du6');
      assert.equal(got.state, 'stopped');
      assert.equal(got.diskUsageBytes, undefined, 'answered while the walk is still held');
      await walk.reached;
      walk.open();
      await new Promise((r) => setImmediate(r));
      assert.equal((await e.get('du6')).diskUsageBytes, 4096);
    });

    it('a measurement that fails leaves the figure unknown (not 0) and is tried again later', async () => {
      let t = Date.parse('2026-11-23T12:00:00Z');
      const clock: Clock = { now: () => new Date(t), sleep: async () => undefined };
      host.diskUsage = async () => 4096;
      await make().create('du3');
      let fail = true;
      host.diskUsage = async () => { if (fail) throw new Error('EIO'); return 512; };
      const e = new Engine({ driver: host, store, clock, log: silentLogger, runner: new FakeRunner() });
      assert.equal((await e.get('du3')).diskUsageBytes, undefined);
      fail = false;
      assert.equal((await e.get('du3')).diskUsageBytes, undefined, 'not retried at once');
      t += 11_000;
      await e.list();
      await new Promise((r) => setImmediate(r));
      assert.equal((await e.get('du3')).diskUsageBytes, 512, 'retried after a while');
    });
  });

  describe('a name that is no container', () => {
    it('get, configure and start answer it alike: NOT_FOUND, the same text, the names in fields', async () => {
      const seen = async (p: Promise<unknown>) => {
        const e = await p.then(() => assert.fail('refused'), asQfleetError);
        return { kind: e.kind, message: e.message, fields: e.fields };
      };
      const one = { kind: 'not-found', message: 'Error; no such chroot container: ghost.', fields: { containers: 'ghost' } };
      assert.deepEqual(await seen(engine.get('ghost')), one);
      assert.deepEqual(await seen(engine.configure('ghost', [])), one);
      assert.deepEqual(await seen(engine.start({ names: ['ghost'], all: false })), one);
      assert.deepEqual(await seen(engine.start({ names: ['ghost', 'ghost2'], all: false })),
        { kind: 'not-found', message: 'Error; no such chroot container: ghost, ghost2.', fields: { containers: 'ghost,ghost2' } });
    });
  });

  describe('list', () => {
    it('lists in ascending name order', async () => {
      for (const n of ['zeta', 'Alpha', 'alpha', 'b-2', 'b_1']) await engine.create(n);
      assert.deepEqual((await engine.list()).map((c) => c.name), ['Alpha', 'alpha', 'b-2', 'b_1', 'zeta']);
    });

    it('reads the process table once per call, not once per container, and still sees strays in each', async () => {
      for (const n of ['a1', 'a2', 'a3']) await engine.create(n);
      await engine.configure('a2', ['httpd']);
      await engine.start({ names: ['a2'], all: false });
      const stray = host.spawnStray('a3');
      host.processTableReads = 0;
      const views = await engine.list();
      assert.equal(host.processTableReads, 1);
      assert.deepEqual(views.map((v) => v.state), ['stopped', 'running', 'broken']);
      assert.match(views[2]!.reason, new RegExp(`processes still run in it: ${stray}`));
    });

    it('gives a quiet stopped container the same view while nothing about it changed, and a new one when anything does', async () => {
      // A store that keeps what it read (its files count as settled): a record is the same object until its file changes.
      store = new StateStore(join(dir, 'state-kept'), () => Date.now() + 60_000);
      const e = make();
      for (const n of ['a1', 'a2', 'a3']) await e.create(n);
      const byName = async () => new Map((await e.list()).map((v) => [v.name, v]));
      await byName(); // the first disk-use figures are measured in the background
      await new Promise((r) => setImmediate(r));
      const before = await byName();
      const again = await byName();
      for (const n of ['a1', 'a2', 'a3']) assert.equal(again.get(n), before.get(n), `${n}: the same view`);

      await e.configure('a1', ['httpd']); // its state file rewritten
      const stray = host.spawnStray('a2'); // a process in it: not quiet, and broken
      const after = await byName();
      assert.notEqual(after.get('a1'), before.get('a1'));
      assert.deepEqual(after.get('a1')!.services, [{ name: 'httpd', running: false }]);
      assert.equal(after.get('a2')!.state, 'broken');
      assert.match(after.get('a2')!.reason, new RegExp(`processes still run in it: ${stray}`));
      assert.equal(after.get('a3'), before.get('a3'), 'a3 untouched: still the same view');

      await host.signalProcesses([stray], 'SIGKILL');
      const quietAgain = await byName();
      assert.equal(quietAgain.get('a2')!.state, 'stopped');
      assert.equal(quietAgain.get('a2')!.reason, '');
    });
  });

  describe('console', () => {
    it('needs a stopped container, mounts it for the session and cleans up after', async () => {
      await engine.create('a1');
      await engine.configure('a1', ['httpd']);
      const s = await engine.console('a1', { tty: true, env: {} });
      assert.equal(host.table.length, 2);
      await assert.rejects(engine.start({ names: ['a1'], all: false }).then((r) => { if (r[0]?.outcome === 'failed') throw new Error(r[0].message); }), /console session is open/);
      host.spawnStray('a1');
      await s.end();
      assert.deepEqual(host.table, []);
      assert.deepEqual(await host.processesIn('a1'), []);
      assert.equal((await engine.get('a1')).state, 'stopped');
    });

    it('refuses a started container, pointing at exec', async () => {
      await engine.create('a1');
      await engine.configure('a1', ['httpd']);
      await engine.start({ names: ['a1'], all: false });
      await assert.rejects(engine.console('a1', { tty: true, env: {} }), /needs a stopped chroot \(use qfleet exec a1/);
    });
  });

  describe('recovery after a crash', () => {
    it('undoes an interrupted create', async () => {
      await engine.create('a1');
      const rec = (await store.read('a1'))!;
      await store.write({ ...rec, pending: { op: 'create', since: rec.createdAt } });
      await make().recover();
      assert.deepEqual(await store.names(), []);
      assert.ok(host.calls.includes('remove a1'));
    });

    it('rolls an interrupted start back to stopped: services, processes and mounts', async () => {
      await engine.create('a1');
      await engine.configure('a1', ['httpd']);
      await engine.start({ names: ['a1'], all: false });
      const rec = (await store.read('a1'))!;
      await store.write({ ...rec, pending: { op: 'start', since: rec.createdAt } });
      assert.equal((await engine.get('a1')).state, 'broken', 'an unrecovered pending operation shows as broken');
      await make().recover();
      assert.equal((await store.read('a1'))?.pending, undefined);
      assert.deepEqual(host.table, []);
      assert.deepEqual(await host.processesIn('a1'), []);
      assert.equal((await make().get('a1')).state, 'stopped');
    });

    it('completes an interrupted delete', async () => {
      await engine.create('a1');
      const rec = (await store.read('a1'))!;
      await store.write({ ...rec, pending: { op: 'delete', since: rec.createdAt } });
      await make().recover();
      assert.deepEqual(await store.names(), []);
    });

    it('discards a staged install left behind', async () => {
      await host.prepareBase(spec, () => undefined);
      await make().recover();
      assert.ok(host.calls.some((c) => c.startsWith('discard')));
    });
  });

  it('runs operations on different containers in parallel, one at a time per container', async () => {
    for (const n of ['p1', 'p2']) { await engine.create(n); await engine.configure(n, ['httpd']); }
    let inFlight = 0;
    let maxInFlight = 0;
    const orig = host.mountContainer.bind(host);
    host.mountContainer = async (name: string) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return orig(name);
    };
    const [a, b] = await Promise.all([engine.start({ names: ['p1'], all: false }), engine.start({ names: ['p2'], all: false })]);
    assert.equal(maxInFlight, 2);
    assert.equal(a[0]?.outcome, 'started');
    assert.equal(b[0]?.outcome, 'started');
    // Two starts of one container: the second does not queue behind the first, it answers busy at once.
    await engine.stop({ names: ['p1'], all: false }, undefined);
    const [x, y] = await Promise.all([engine.start({ names: ['p1'], all: false }), engine.start({ names: ['p1'], all: false })]);
    const [won, lost] = x[0]?.outcome === 'started' ? [x[0], y[0]] : [y[0], x[0]];
    assert.equal(won?.outcome, 'started');
    assert.equal(lost?.outcome, 'failed');
    assert.match(lost!.message, /^Error; p1 is busy starting since \S+; try again when that is done\.$/);
  });
});
