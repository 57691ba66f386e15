import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../agent/engine/clock.js';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { silentLogger } from '../../../agent/log.js';
import { MemoryHost } from '../../support/memory-host.js';

describe('Engine: what Version and List report of the host (through the driver)', () => {
  let dir: string;
  let host: MemoryHost;
  let engine: Engine;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-version-'));
    host = new MemoryHost(join(dir, 'root'));
    engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports the driver, host facts, capabilities, base and root, with no base before install', async () => {
    let v = await engine.version();
    assert.equal(v.driver, host.name);
    assert.deepEqual(v.facts, await host.facts());
    assert.deepEqual(v.capabilities, host.capabilities());
    assert.equal(v.baseRelease, undefined);
    assert.equal(v.rootDir, host.layout.rootDir);
    await engine.install({ method: 'directory', source: '/base', mirror: '' }, false, () => undefined);
    v = await engine.version();
    assert.equal(v.baseRelease, await host.installedRelease());
    assert.deepEqual(engine.basePaths, { rootDir: host.layout.rootDir, sharedfs: host.layout.sharedfs, template: host.layout.template });
  });

  it('says which bases are behind the kernel, asking the driver once per release, when the driver knows patch levels', async () => {
    assert.deepEqual(await engine.basesBehind(['a', 'b']), new Map(), 'a driver without patch levels: none');
    const asked: string[] = [];
    Object.assign(host, {
      baseBehind: async (r: string) => {
        asked.push(r);
        return r === 'old' ? `base ${r} is behind` : undefined;
      },
    });
    assert.deepEqual(await engine.basesBehind(['old', 'new', 'old']), new Map([['old', 'base old is behind']]));
    assert.deepEqual(asked.sort(), ['new', 'old']);
    assert.equal((await engine.version()).baseBehind, undefined, 'nothing installed: nothing behind');
  });
});

describe('Engine.resolveInstallSpec (what Install and its dry run act on)', () => {
  let dir: string;
  let engine: Engine;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-install-spec-'));
    engine = new Engine({ driver: new MemoryHost(join(dir, 'root')), store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('infers the method from what the source is on the host, read through the driver room', () => {
    writeFileSync(join(dir, 'base.tar'), '');
    assert.equal(engine.resolveInstallSpec({ method: undefined, source: dir, mirror: '' }).method, 'directory');
    assert.equal(engine.resolveInstallSpec({ method: undefined, source: join(dir, 'base.tar'), mirror: '' }).method, 'tarball');
    assert.throws(() => engine.resolveInstallSpec({ method: 'directory', source: join(dir, 'nope'), mirror: '' }), /does not exist on the agent's host/);
  });
});
