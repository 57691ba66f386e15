import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../../agent/engine/engine.js';
import { StateStore } from '../../../../agent/engine/state-store.js';
import { systemClock } from '../../../../agent/engine/clock.js';
import { silentLogger } from '../../../../agent/log.js';
import { FreeBSDDriver } from '../../../../agent/drivers/freebsd/freebsd-driver.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { SimulatedFreeBSD } from './simulated-host.js';

// `qfleet list` through the engine on the FreeBSD driver: one procstat snapshot per call,
// shared by every container, however many there are.

describe('FreeBSD list (engine over the driver, simulated host)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const threeRunning = async (isolation: 'chroot' | 'jail') => {
    dir = mkdtempSync(join(tmpdir(), 'qf-fbsd-list-'));
    // The engine lists containers/ on this machine's filesystem; the simulated host keeps its own
    // tree at the same paths, so both see the containers.
    const rootDir = join(dir, 'root');
    const host = new SimulatedFreeBSD();
    const runner = new FakeRunner().handle(host.handler, 'the simulated FreeBSD host');
    const driver = new FreeBSDDriver({ runner, rootDir, logDir: '/var/log/qfleet' });
    const engine = new Engine({ driver, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 10 });
    await engine.install({ method: 'download', source: '', mirror: '' }, false, () => undefined);
    for (const name of ['a1', 'b2', 'c3']) {
      await engine.create(name, undefined, {}, { isolation });
      mkdirSync(join(rootDir, 'containers', name), { recursive: true });
      await engine.configure(name, ['cron']);
    }
    await engine.start({ names: [], all: true });
    runner.calls.splice(0);

    const list = await engine.list();
    assert.deepEqual(list.map((c) => [c.name, c.state]), [['a1', 'running'], ['b2', 'running'], ['c3', 'running']]);
    return runner.transcript;
  };

  it('runs procstat -af once for a List of three running chroot containers', async () => {
    const transcript = await threeRunning('chroot');
    assert.deepEqual(transcript.filter((l) => l.startsWith('procstat')), ['procstat -af']);
  });

  it('runs no host-wide procstat for a List of three running jails: one jls and one mount table read judge them all', async () => {
    const transcript = await threeRunning('jail');
    assert.deepEqual(transcript.filter((l) => l.startsWith('procstat')), []);
    assert.deepEqual(transcript.filter((l) => l.startsWith('jls ')), ['jls --libxo json -v'], transcript.join('\n'));
  });
});
