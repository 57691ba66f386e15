import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../agent/engine/clock.js';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { asQfleetError } from '../../../agent/errors.js';
import { silentLogger } from '../../../agent/log.js';
import { MemoryHost } from '../../support/memory-host.js';
import { FakeRunner } from '../../support/fake-runner.js';

/**
 * One bad container never takes a host down: whatever is wrong with one
 * container's state file, the agent starts, lists and serves every other
 * container, shows the bad one as broken with the reason, and delete removes it.
 */
describe('Engine: a container whose state file is missing or unusable', () => {
  let dir: string;
  let host: MemoryHost;
  let store: StateStore;
  const engine = () => new Engine({ driver: host, store, clock: systemClock, log: silentLogger, stopGraceMs: 10, runner: new FakeRunner() });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-broken-'));
    host = new MemoryHost(join(dir, 'root'));
    store = new StateStore(join(dir, 'state'));
    const e = engine();
    await e.install({ method: 'directory', source: '/base', mirror: '' }, false, () => undefined);
    await e.create('good');
    await e.configure('good', ['httpd']);
    await e.start({ names: ['good'], all: false });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The checks every corruption must pass, on an agent started afresh over it. */
  async function assertContained(label: string): Promise<void> {
    const e = engine();
    await e.recover();
    const list = await e.list();
    assert.deepEqual(list.map((c) => c.name), ['bad', 'good'], label);
    const good = list.find((c) => c.name === 'good')!;
    assert.equal(good.state, 'running', label);
    const bad = list.find((c) => c.name === 'bad')!;
    const stillValid = bad.state !== 'broken';
    if (stillValid) {
      // Only whitespace after the JSON was cut: the record is intact.
      assert.equal(bad.state, 'stopped', label);
    } else {
      assert.match(bad.reason, /state file .*bad\.json is unusable: \S/, label);
      assert.equal((await e.get('bad')).state, 'broken', label);
      const cfg = await e.configure('bad', []).then(() => undefined, (err: Error) => err);
      assert.equal(cfg && asQfleetError(cfg).kind, 'failed-precondition', `${label}: configure`);
      assert.match(String(cfg?.message), /^Error; the state file of bad \(\S+bad\.json\) is unusable: (?!its state file)\S[\s\S]*qfleet delete bad/, label);
      const [started] = await e.start({ names: ['bad'], all: false });
      assert.equal(started?.outcome, 'failed', label);
    }
    // Commands on the other container are untouched by the bad one, -A included (the bad one fails alone).
    const all = await e.start({ names: [], all: !stillValid, ...(stillValid ? { names: ['good'] } : {}) });
    assert.equal(all.find((r) => r.name === 'good')?.outcome, 'already-started', label);
    assert.deepEqual(await e.delete({ names: ['bad'], all: false }), [{ name: 'bad', outcome: 'deleted', message: 'Chroot is deleted.' }], label);
    assert.ok(!existsSync(host.layout.containerRoot('bad')), `${label}: directory left`);
    assert.ok(!existsSync(store.fileOf('bad')), `${label}: state file left`);
    assert.deepEqual((await e.list()).map((c) => c.name), ['good'], label);
  }

  it('every truncation of a real state file, each on an agent started afresh', async function () {
    this.timeout(120_000);
    const e = engine();
    await e.create('bad');
    await e.configure('bad', ['sshd']);
    const real = readFileSync(store.fileOf('bad'), 'utf8');
    for (let len = 0; len < real.length; len++) {
      if (!existsSync(host.layout.containerRoot('bad'))) await engine().create('bad');
      writeFileSync(store.fileOf('bad'), real.slice(0, len));
      await assertContained(`truncated at ${len} of ${real.length}`);
    }
  });

  it('random bytes and JSON of the wrong shape', async function () {
    this.timeout(60_000);
    const cases: Array<[string, string]> = [
      ['random', Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 7919 + 13) % 256)).toString('latin1')],
      ['array', '[1,2,3]'],
      ['null', 'null'],
      ['wrong name', JSON.stringify({ version: 1, name: 'other', services: [], createdAt: '2026-11-23T12:00:00Z', baseRelease: 'x', desired: 'stopped', startedServices: [] })],
      ['services a string', JSON.stringify({ version: 1, name: 'bad', services: 'httpd', createdAt: '2026-11-23T12:00:00Z', baseRelease: 'x', desired: 'stopped', startedServices: [] })],
      ['desired unknown', JSON.stringify({ version: 1, name: 'bad', services: [], createdAt: '2026-11-23T12:00:00Z', baseRelease: 'x', desired: 'paused', startedServices: [] })],
      ['pending op unknown', JSON.stringify({ version: 1, name: 'bad', services: [], createdAt: '2026-11-23T12:00:00Z', baseRelease: 'x', desired: 'stopped', startedServices: [], pending: { op: 'reboot', since: '2026-11-23T12:00:00Z' } })],
    ];
    for (const [label, text] of cases) {
      await engine().create('bad');
      writeFileSync(store.fileOf('bad'), text);
      await assertContained(label);
    }
  });

  it('a directory without a state file is listed broken, and delete removes it', async () => {
    mkdirSync(host.layout.containerRoot('orphan'));
    writeFileSync(join(host.layout.containerRoot('orphan'), 'data'), 'x');
    const e = engine();
    await e.recover();
    const orphan = (await e.list()).find((c) => c.name === 'orphan')!;
    assert.equal(orphan.state, 'broken');
    assert.match(orphan.reason, /orphan exists but has no state file/);
    await assert.rejects(e.create('orphan'), /already exists but has no state file; delete it \(qfleet delete orphan\)/);
    assert.equal((await e.delete({ names: ['orphan'], all: false }))[0]?.outcome, 'deleted');
    assert.ok(!existsSync(host.layout.containerRoot('orphan')));
  });

  it('a state file without a directory is listed broken, and delete removes the file', async () => {
    await engine().create('ghost');
    rmSync(host.layout.containerRoot('ghost'), { recursive: true });
    const e = engine();
    const ghost = (await e.list()).find((c) => c.name === 'ghost')!;
    assert.equal(ghost.state, 'broken');
    assert.match(ghost.reason, /its directory .*ghost is missing/);
    assert.equal((await e.delete({ names: ['ghost'], all: false }))[0]?.outcome, 'deleted');
    assert.ok(!existsSync(store.fileOf('ghost')));
  });

  it('a symlink under containers/ is not a container: not listed, and delete does not follow it', async () => {
    const outside = join(dir, 'precious');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    symlinkSync(outside, host.layout.containerRoot('evil'));
    const e = engine();
    assert.deepEqual((await e.list()).map((c) => c.name), ['good']);
    await assert.rejects(e.delete({ names: ['evil'], all: false }), /no such chroot container: evil/);
    assert.ok(existsSync(join(outside, 'keep')));
  });

  it('a corrupt container that still has mounts and processes: stop brings it down, then delete removes it', async () => {
    const e = engine();
    await e.create('bad');
    await e.configure('bad', ['sshd']);
    await e.start({ names: ['bad'], all: false });
    writeFileSync(store.fileOf('bad'), '{"version":1,');
    await assert.rejects(e.delete({ names: ['bad'], all: false }), /bad \(processes \d+/);
    const [stopped] = await e.stop({ names: ['bad'], all: false }, undefined);
    assert.equal(stopped?.outcome, 'stopped');
    assert.match(stopped!.message, /^Chroot is stopped\. It stays broken \(its state file .* is unusable/);
    assert.deepEqual(await host.processesIn('bad'), []);
    assert.equal((await e.delete({ names: ['bad'], all: false }))[0]?.outcome, 'deleted');
    assert.equal((await e.get('good')).state, 'running');
  });
});
