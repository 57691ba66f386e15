import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { silentLogger } from '../../../agent/log.js';
import { asQfleetError } from '../../../agent/errors.js';
import { LEGACY_CONFIG } from '../../../agent/drivers/container-config.js';
import { MemoryHost } from '../../support/memory-host.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { instantClock } from '../../support/instant-clock.js';


/** The isolation mode and options a container is created with, kept, changed and run by (the model host offers chroot and namespaces, and only the pids limit). */
describe('Engine: a container\'s isolation and config', () => {
  let dir: string;
  let host: MemoryHost;
  let store: StateStore;
  let engine: Engine;

  const make = (defaultIsolation?: 'chroot' | 'namespaces' | 'jail') =>
    new Engine({ driver: host, store, clock: instantClock(), log: silentLogger, stopGraceMs: 1000, runner: new FakeRunner(), ...(defaultIsolation ? { defaultIsolation } : {}) });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-isolation-'));
    host = new MemoryHost(join(dir, 'root'));
    store = new StateStore(join(dir, 'state'));
    engine = make();
    await engine.install({ method: 'directory', source: '/base', mirror: '' }, false, () => undefined);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('create', () => {
    it('without a mode takes the host\'s default, and the agent\'s setting overrides it', async () => {
      assert.equal((await engine.create('a')).config?.isolation, 'chroot');
      engine = make('namespaces');
      assert.equal((await engine.create('b')).config?.isolation, 'namespaces');
      assert.equal((await store.read('b'))?.config.isolation, 'namespaces', 'kept in the state file');
    });

    it('keeps every option it was given, checked', async () => {
      const c = await engine.create('web', undefined, {}, {
        isolation: 'namespaces', hostname: 'www', network: 'none', env: { LANG: 'C' }, workdir: '/srv',
        mounts: [{ kind: 'bind', source: '/srv/www', target: '/var/www', readOnly: true }], limits: { pids: 64 },
      });
      assert.deepEqual(c.config, {
        ...LEGACY_CONFIG, isolation: 'namespaces', hostname: 'www', network: 'none', env: { LANG: 'C' }, workdir: '/srv',
        mounts: [{ kind: 'bind', source: '/srv/www', target: '/var/www', readOnly: true, sizeBytes: 0 }], limits: { memoryBytes: 0, cpus: 0, pids: 64 },
      });
    });

    it('refuses a mode the host does not offer, naming what it offers, and creates nothing', async () => {
      const err = asQfleetError(await engine.create('j', undefined, {}, { isolation: 'jail' }).catch((e) => e));
      assert.equal(err.kind, 'failed-precondition');
      assert.equal(err.reason, 'unsupported');
      assert.match(err.message, /cannot run j with isolation jail; it offers chroot, namespaces/);
      assert.equal(await store.read('j'), undefined);
      assert.ok(!host.calls.includes('create j'));
    });

    it('refuses a limit the host cannot enforce (never silently ignored)', async () => {
      const err = asQfleetError(await engine.create('m', undefined, {}, { isolation: 'namespaces', limits: { memoryBytes: 512 * 1024 * 1024 } }).catch((e) => e));
      assert.equal(err.reason, 'unsupported');
      assert.match(err.message, /cannot enforce the memory limit asked of m/);
      assert.equal(await store.read('m'), undefined);
    });

    it('refuses malformed options with the field named, before anything is asked of the host', async () => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ isolation: 'vm' }, /isolation must be one of chroot, namespaces, jail/],
        [{ hostname: 'bad host' }, /hostname .* is not a host name/],
        [{ network: 'bridge' }, /network must be host or none/],
        [{ mounts: [{ kind: 'bind', source: 'relative', target: '/x' }] }, /mounts\[0\]\.source must be an absolute path/],
        [{ mounts: [{ kind: 'bind', source: '/a b', target: '/x' }] }, /contains whitespace/],
        [{ mounts: [{ kind: 'bind', source: '/a', target: '/x/../../etc' }] }, /has a \. or \.\. component/],
        [{ mounts: [{ kind: 'tmpfs', source: '', target: '/proc/x' }] }, /under \/proc, which qfleet mounts itself/],
        [{ uidMap: [{ inside: 0, outside: 100000, count: 65536 }, { inside: 1000, outside: 1, count: 1 }] }, /overlapping inside ranges/],
        [{ env: { 'A-B': 'x' } }, /"A-B" is not a variable name/],
        [{ limits: { pids: 1 } }, /at least 2/],
        [{ limits: { memoryBytes: 1000 } }, /below 4 MiB/],
        [{ securelevel: 7 }, /securelevel must be -1/],
      ];
      for (const [config, re] of cases) {
        const err = asQfleetError(await engine.create('x', undefined, {}, config).catch((e) => e));
        assert.equal(err.kind, 'invalid-argument', JSON.stringify(config));
        assert.match(err.message, re);
      }
      assert.equal(await store.read('x'), undefined);
    });
  });

  describe('config', () => {
    beforeEach(async () => {
      await engine.create('web', undefined, {}, { isolation: 'namespaces' });
      await engine.configure('web', ['httpd']);
    });

    it('changes only the fields named in the mask; services stay unless given', async () => {
      await engine.configure('web', undefined, undefined, {}, { mask: ['limits.pids', 'env'], config: { limits: { pids: 128 }, env: { A: '1' } } });
      const rec = (await store.read('web'))!;
      assert.deepEqual(rec.services, ['httpd']);
      assert.equal(rec.config.limits.pids, 128);
      assert.deepEqual(rec.config.env, { A: '1' });
      assert.equal(rec.config.isolation, 'namespaces');
      await engine.configure('web', undefined, undefined, {}, { mask: ['limits.pids'], config: {} });
      assert.equal((await store.read('web'))!.config.limits.pids, 0, 'a named field without a value returns to its default');
    });

    it('refuses a field it does not know, naming the fields it does', async () => {
      const err = asQfleetError(await engine.configure('web', undefined, undefined, {}, { mask: ['colour'], config: {} }).catch((e) => e));
      assert.equal(err.kind, 'invalid-argument');
      assert.match(err.message, /names "colour", which is not a field qfleet config changes \(services, isolation/);
    });

    it('changes the isolation only while stopped; limits may change while it runs', async () => {
      await engine.start({ names: ['web'], all: false });
      const err = asQfleetError(await engine.configure('web', undefined, undefined, {}, { mask: ['isolation'], config: { isolation: 'chroot' } }).catch((e) => e));
      assert.equal(err.reason, 'running');
      assert.match(err.message, /web is running; stop it before changing isolation/);
      assert.equal((await store.read('web'))!.config.isolation, 'namespaces');
      await engine.configure('web', undefined, undefined, {}, { mask: ['limits.pids'], config: { limits: { pids: 99 } } });
      assert.equal((await store.read('web'))!.config.limits.pids, 99);
      await engine.stop({ names: ['web'], all: false }, undefined);
      await engine.configure('web', undefined, undefined, {}, { mask: ['isolation'], config: { isolation: 'chroot' } });
      assert.equal((await store.read('web'))!.config.isolation, 'chroot');
    });

    it('limits changed on a running container are applied at once; on a stopped one they wait for its start', async () => {
      await engine.configure('web', undefined, undefined, {}, { mask: ['limits.pids'], config: { limits: { pids: 50 } } });
      assert.ok(!host.calls.some((c) => c.startsWith('limits ')), 'stopped: nothing to apply');
      await engine.start({ names: ['web'], all: false });
      await engine.configure('web', undefined, undefined, {}, { mask: ['limits.pids'], config: { limits: { pids: 64 } } });
      assert.ok(host.calls.includes('limits web pids=64'));
      assert.equal((await store.read('web'))!.config.limits.pids, 64);
      const before = host.calls.length;
      await engine.configure('web', undefined, undefined, {}, { mask: ['env'], config: { env: { A: '1' } } });
      assert.ok(!host.calls.slice(before).some((c) => c.startsWith('limits ')), 'only a change of limits is applied');
    });

    it('validate-only answers the config it would set and writes nothing', async () => {
      const before = readFileSync(store.fileOf('web'), 'utf8');
      const v = await engine.configure('web', undefined, undefined, { validateOnly: true }, { mask: ['hostname'], config: { hostname: 'www' } });
      assert.equal(v.config?.hostname, 'www');
      assert.equal(readFileSync(store.fileOf('web'), 'utf8'), before);
    });
  });

  describe('start, list and stop of an isolated container', () => {
    beforeEach(async () => {
      await engine.create('web', undefined, {}, { isolation: 'namespaces' });
      await engine.configure('web', ['httpd']);
    });

    it('start puts the isolation up through the driver, list shows the init and no host mount', async () => {
      const [r] = await engine.start({ names: ['web'], all: false });
      assert.equal(r!.outcome, 'started');
      assert.ok(host.calls.includes('up web namespaces'));
      const [v] = await engine.list();
      assert.equal(v!.state, 'running');
      assert.equal(v!.initPid, host.inits.get('web'));
      assert.deepEqual(v!.mounts, []);
    });

    it('list of isolated containers only reads no host-wide process table; one chroot container among them makes it read once', async () => {
      await engine.start({ names: ['web'], all: false });
      host.processTableReads = 0;
      await engine.list();
      assert.equal(host.processTableReads, 0);
      await engine.create('old', undefined, {}, { isolation: 'chroot' });
      host.processTableReads = 0;
      await engine.list();
      assert.equal(host.processTableReads, 1);
    });

    it('an init that died makes it broken, with the reason', async () => {
      await engine.start({ names: ['web'], all: false });
      host.inits.delete('web');
      const v = await engine.get('web');
      assert.equal(v.state, 'broken');
      assert.match(v.reason, /its init is not running/);
    });

    it('stop runs the services\' rc stop, then takes the isolation down through the driver: a process that ignores SIGTERM ends too', async () => {
      await engine.start({ names: ['web'], all: false });
      host.spawnStray('web', true);
      const [r] = await engine.stop({ names: ['web'], all: false }, undefined);
      assert.equal(r!.outcome, 'stopped');
      const i = host.calls.indexOf('stop web httpd');
      assert.ok(i >= 0 && host.calls.indexOf('down web namespaces') > i, host.calls.join('\n'));
      assert.ok(!host.calls.some((c) => c.startsWith('kill ')), 'no host-wide signals for an isolated container');
      assert.equal([...host.procs.values()].filter((p) => p.container === 'web').length, 0);
      assert.equal((await engine.get('web')).state, 'stopped');
    });

    it('a container whose state file is unusable is taken down in every isolated mode the host offers, then as a chroot', async () => {
      await engine.start({ names: ['web'], all: false });
      writeFileSync(store.fileOf('web'), '{"version": 1');
      const [r] = await engine.stop({ names: ['web'], all: false }, undefined);
      assert.equal(r!.outcome, 'stopped');
      assert.ok(host.calls.includes('down web namespaces'));
      assert.ok(!host.inits.has('web'));
    });
  });
});
