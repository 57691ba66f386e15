import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../../../agent/engine/clock.js';
import { Engine } from '../../../../agent/engine/engine.js';
import { StateStore } from '../../../../agent/engine/state-store.js';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import { silentLogger } from '../../../../agent/log.js';
import { makeRealSetup, type RealSetup } from './real-harness.js';

// The engine's verbs over a real LinuxDriver: a container created without an
// isolation is a namespaces one here, and start, exec, get, an agent restart
// (a new engine and driver on the same state), a killed init and stop all
// read the same pidfile.

describe('Engine with isolation namespaces on a real LinuxDriver @root', function () {
  this.timeout(180_000);
  let s: RealSetup;
  let engine: Engine;
  const make = (driver: LinuxDriver) =>
    new Engine({ driver, store: new StateStore(join(s.tmp, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 2000, runner: s.runner });
  const sel = (name: string) => ({ names: [name], all: false });

  before(async () => {
    s = await makeRealSetup('qf-nseng-');
    engine = make(s.driver);
    const base = await s.driver.prepareBase({ method: 'directory', source: s.baseDir, mirror: '' }, () => undefined);
    await s.driver.activateBase(base, () => undefined);
  });
  after(async () => {
    await engine?.stop({ names: [], all: true }, 0).catch(() => undefined);
    await s?.cleanup();
  });

  it('creates namespaces by default, starts its services inside, and tells a killed init from a running one across a restart', async () => {
    const created = await engine.create('web');
    assert.equal(created.config?.isolation, 'namespaces');
    await engine.configure('web', ['httpd']);
    const [started] = await engine.start(sel('web'));
    assert.ok(started, 'a result');
    let view = await engine.get('web');
    assert.equal(view.state, 'running', view.reason);
    assert.ok(view.initPid && view.initPid > 1);
    assert.deepEqual(view.services, [{ name: 'httpd', running: true }]);
    assert.deepEqual(view.mounts, [], 'nothing mounted on the host');
    const exec = await engine.exec('web', ['/bin/busybox', 'hostname'], { tty: false, env: {} });
    assert.equal((await s.runner.run(exec.spec)).stdout.trim(), 'web');

    // The agent restarts: a new driver and engine on the same root, state and run directory.
    const again = make(new LinuxDriver({ runner: s.runner, rootDir: s.driver.layout.rootDir, logDir: `${s.tmp}/log` }));
    view = await again.get('web');
    assert.equal(view.state, 'running', view.reason);
    process.kill(view.initPid!, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while ((await again.get('web')).state === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    view = await again.get('web');
    assert.notEqual(view.state, 'running');
    assert.match(view.reason, /init \(pid \d+\) is gone/);

    await again.stop(sel('web'), 0);
    view = await again.get('web');
    assert.equal(view.state, 'stopped', view.reason);
    await again.start(sel('web'));
    assert.equal((await again.get('web')).state, 'running');
    await again.stop(sel('web'), 1000);
    assert.equal((await again.get('web')).state, 'stopped');

    // A console on the stopped container: its init is up for the session only.
    const session = await again.console('web', { tty: false, env: {} });
    const initDuring = (await again.get('web')).initPid;
    assert.ok(initDuring, 'up for the session');
    assert.equal((await s.runner.run({ ...session.spec, input: 'hostname\n' })).stdout.trim(), 'web');
    await session.end();
    assert.equal((await again.get('web')).state, 'stopped');
    assert.ok(!existsSync(`/proc/${initDuring}/task`) || readFileSync(`/proc/${initDuring}/stat`, 'utf8').split(' ')[2] === 'Z', 'its init is gone after the session');

    await again.delete(sel('web'));
    assert.deepEqual((await again.list()).map((c) => c.name), []);
  });
});
