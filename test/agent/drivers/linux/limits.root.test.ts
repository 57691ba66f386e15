import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync } from 'node:fs';
import type { DriverClock } from '../../../../agent/drivers/host-driver.js';
import { LinuxCgroups } from '../../../../agent/drivers/linux/cgroups.js';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import { ExecaRunner } from '../../../../agent/runner/execa-runner.js';
import { makeBusyboxBase } from '../../../support/busybox-base.js';
import { ref } from '../../../support/container-ref.js';
import { killAndRemove, tasksIn } from '../../runner/cgroup-cleanup.js';
import { cleanupTree } from './real-harness.js';

const realClock: DriverClock = { now: () => new Date(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

/**
 * Limits on a running container, for real: a namespaces container with
 * --pids 32 whose fork bomb stops at 32 tasks while the host keeps forking,
 * and everything (init, bomb, cgroups) gone after stop.
 */
describe('LinuxDriver limits on a namespaces container, for real @root', function () {
  this.timeout(120_000);
  const parent = `qfleet-test-limits-${process.pid}`;
  const cgroups = new LinuxCgroups({ parent });
  const runner = new ExecaRunner();
  let tmp: string;
  let driver: LinuxDriver;
  const box = ref('bomb', { isolation: 'namespaces', limits: { memoryBytes: 0, cpus: 0, pids: 32 } });

  before(async function () {
    tmp = mkdtempSync('/tmp/qf-limits-');
    driver = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, cgroups });
    const caps = driver.capabilities();
    if (!caps.isolation.includes('namespaces') || !caps.limits.pids) {
      throw new Error(`this host cannot run the proof: ${caps.missing.join('; ')}`);
    }
    const base = await driver.prepareBase({ method: 'directory', source: await makeBusyboxBase(`${tmp}/base`), mirror: '' }, () => undefined);
    await driver.activateBase(base, () => undefined);
    await driver.createContainer('bomb');
  });
  after(async () => {
    await driver?.down(box, 0, realClock).catch(() => undefined);
    await killAndRemove(cgroups, ['bomb'], parent).catch(() => undefined);
    if (tmp) await cleanupTree(runner, tmp);
  });

  it('a fork bomb inside a container limited to 32 processes stops at 32, the host keeps forking, and stop ends it all', async () => {
    await driver.checkConfig(box);
    await driver.up(box);
    const init = (await driver.runtime(box)).initPid!;
    assert.ok(tasksIn(cgroups, 'bomb').includes(init), 'the init is in the container\'s cgroup');
    // Bounded: 200 sleeps asked for, refused past the limit; the run has a deadline of its own.
    const bomb = await runner.run({
      ...driver.execSpec(box, { argv: ['/bin/sh', '-c', 'i=0; while [ $i -lt 200 ]; do sleep 60 </dev/null >/dev/null 2>&1 & i=$((i + 1)); done; echo asked 200'], tty: false, console: false, env: {} }),
      timeoutMs: 30_000,
      // busybox sh gives up (status 2) at the first fork the kernel refuses.
      okExitCodes: [2],
    });
    assert.match(bomb.stderr, /can't fork/i, 'the kernel refused forks past the limit');
    const tasks = tasksIn(cgroups, 'bomb');
    assert.ok(tasks.length <= 32 && tasks.length > 10, `the container holds ${tasks.length} tasks, at most its limit`);
    // The host is fine: it forks as it likes.
    await runner.run({ argv: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do true & done; wait'] });
    await driver.down(box, 1000, realClock);
    assert.equal((await driver.runtime(box)).up, false);
    assert.deepEqual(cgroups.procsFiles('bomb'), [], 'its cgroups are removed');
    const pidsMount = cgroups.layout().hierarchies.pids!.mount;
    assert.ok(!existsSync(`${pidsMount}/${parent}`), 'and the agent\'s own directory with its last container');
  });

  it('a container started without limits gets them while it runs: the kernel enforces the new --pids at once', async () => {
    const free = ref('bomb', { isolation: 'namespaces' });
    await driver.up(free);
    assert.ok(cgroups.procsFiles('bomb').length > 0, 'its cgroups exist from the start, without a limit');
    const limited = ref('bomb', { isolation: 'namespaces', limits: { memoryBytes: 0, cpus: 0, pids: 16 } });
    await driver.applyLimits(limited);
    const bomb = await runner.run({
      ...driver.execSpec(limited, { argv: ['/bin/sh', '-c', 'i=0; while [ $i -lt 100 ]; do sleep 60 </dev/null >/dev/null 2>&1 & i=$((i + 1)); done'], tty: false, console: false, env: {} }),
      timeoutMs: 30_000,
      okExitCodes: [2],
    });
    assert.match(bomb.stderr, /can't fork/i);
    assert.ok(tasksIn(cgroups, 'bomb').length <= 16, `${tasksIn(cgroups, 'bomb').length} tasks`);
    await driver.down(limited, 1000, realClock);
  });
});
