import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxCgroups, type CgroupController, type CgroupHierarchy } from '../../../../agent/drivers/linux/cgroups.js';
import { CommandFailedError } from '../../../../agent/errors.js';
import { NO_LIMITS } from '../../../../agent/drivers/container-config.js';
import { dieWithAgentWrapper, ExecaRunner } from '../../../../agent/runner/execa-runner.js';
import { killAndRemove, tasksIn } from '../../runner/cgroup-cleanup.js';

const read = (p: string) => readFileSync(p, 'utf8').trim();

/**
 * Whether the kernel has this controller where we look, from /proc/cgroups
 * and cgroup.controllers: a second source beside the mount table the code reads.
 */
function hostHas(c: CgroupController): boolean {
  const v2 = ['/sys/fs/cgroup/cgroup.controllers', '/sys/fs/cgroup/unified/cgroup.controllers'].find(existsSync);
  if (v2 && read(v2).split(/\s+/).includes(c)) return true;
  const row = read('/proc/cgroups').split('\n').map((l) => l.split('\t')).find((f) => f[0] === c);
  const boundToV1 = !!row && row[1] !== '0' && row[3] === '1';
  return boundToV1 && (c !== 'cpu' || existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
}

describe('LinuxCgroups on this host @root', function () {
  this.timeout(60_000);
  const parent = `qfleet-test-${process.pid}`;
  const cg = new LinuxCgroups({ parent });
  const runner = new ExecaRunner({ wrapper: dieWithAgentWrapper() });
  const names = ['lim', 'bomb', 'mem'];
  const h = (c: CgroupController): CgroupHierarchy => {
    const x = cg.layout().hierarchies[c];
    assert.ok(x, `no ${c} controller`);
    return x;
  };
  const file = (c: CgroupController, name: string, f: string) => `${h(c).mount}/${parent}/${name}/${f}`;

  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'qf-cgroups-root-'));
  });
  after(async () => {
    await killAndRemove(cg, names, parent);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('capabilities() says what /sys/fs/cgroup has, and why for what it has not', () => {
    const caps = cg.capabilities();
    for (const c of ['memory', 'cpu', 'pids'] as const) {
      assert.equal(caps[c], hostHas(c), c);
      assert.equal(caps.missing.some((m) => m.startsWith(`limit ${c}: `)), !hostHas(c), caps.missing.join('; '));
    }
  });

  it('prepare writes each limit the kernel then reads back; 0 lifts it; remove takes the cgroups away', async function () {
    const caps = cg.capabilities();
    if (!caps.memory || !caps.cpu || !caps.pids) this.skip();
    const files = await cg.prepare('lim', { memoryBytes: 64 << 20, cpus: 1.5, pids: 64 });
    assert.deepEqual(files, cg.procsFiles('lim'));
    assert.ok(files.every(existsSync));
    if (h('memory').version === 1) {
      assert.equal(read(file('memory', 'lim', 'memory.limit_in_bytes')), String(64 << 20));
      const memsw = file('memory', 'lim', 'memory.memsw.limit_in_bytes');
      if (existsSync(memsw)) assert.equal(read(memsw), String(64 << 20));
    } else {
      assert.equal(read(file('memory', 'lim', 'memory.max')), String(64 << 20));
    }
    if (h('cpu').version === 1) {
      assert.equal(read(file('cpu', 'lim', 'cpu.cfs_quota_us')), '150000');
      assert.equal(read(file('cpu', 'lim', 'cpu.cfs_period_us')), '100000');
    } else {
      assert.equal(read(file('cpu', 'lim', 'cpu.max')), '150000 100000');
    }
    assert.equal(read(file('pids', 'lim', 'pids.max')), '64');

    await cg.prepare('lim', NO_LIMITS);
    assert.equal(read(file('pids', 'lim', 'pids.max')), 'max');
    if (h('cpu').version === 1) assert.equal(read(file('cpu', 'lim', 'cpu.cfs_quota_us')), '-1');
    if (h('memory').version === 1) assert.ok(Number(read(file('memory', 'lim', 'memory.limit_in_bytes'))) > 2 ** 60, 'no memory limit');

    await cg.remove('lim');
    assert.deepEqual(cg.procsFiles('lim'), []);
    assert.ok(!existsSync(`${h('pids').mount}/${parent}/lim`));
  });

  it('a fork bomb joined to a cgroup with pids.max=64 stops at 64 tasks, and the host keeps forking', async function () {
    if (!cg.capabilities().pids) this.skip();
    const files = await cg.prepare('bomb', { memoryBytes: 0, cpus: 0, pids: 64 });
    const log = `${tmp}/bomb.log`;
    // Bounded even without the limit (200 sleeps of 20 s) and by the run's deadline; the log file lets
    // the run end with the shell, while its sleeps still hold its output.
    const bomb = runner.run({ argv: ['sh', '-c', 'i=0; while [ $i -lt 200 ]; do sleep 20 & i=$((i + 1)); done; wait'], joinCgroups: files, logFile: log, timeoutMs: 15_000 });
    await assert.rejects(bomb, (e: unknown) => e instanceof CommandFailedError && !e.timedOut);
    assert.match(readFileSync(log, 'utf8'), /Cannot fork/, 'the shell was refused a fork');
    assert.match(read(file('pids', 'bomb', 'pids.events')), /^max [1-9]/m, 'the kernel refused forks at the limit');
    // The shell had forked until it and its sleeps were 64 tasks, then died of the refusal.
    const left = tasksIn(cg, 'bomb');
    assert.equal(left.length, 63, `${left.length} tasks left`);
    // (Some may still be between fork and exec of sleep: counted, named sh.)
    const host = await runner.run({ argv: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do true & done; wait; echo fine'] });
    assert.equal(host.stdout, 'fine\n', 'the host (outside the cgroup) still forks');
  });

  it('a process allocating past its memory limit is killed by the OOM killer (and not without the limit)', async function () {
    if (!cg.capabilities().memory) this.skip();
    const files = await cg.prepare('mem', { memoryBytes: 32 << 20, cpus: 0, pids: 0 });
    // dd reads 64 MiB of zeros into one buffer: every page of it is touched.
    const alloc = { argv: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], timeoutMs: 20_000 };
    await runner.run(alloc);
    await assert.rejects(runner.run({ ...alloc, joinCgroups: files }), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError);
      assert.ok(!e.timedOut);
      return true;
    });
    if (h('memory').version === 1) {
      assert.match(read(file('memory', 'mem', 'memory.oom_control')), /^oom_kill [1-9]/m);
    } else {
      assert.match(read(file('memory', 'mem', 'memory.events')), /^oom_kill [1-9]/m);
    }
  });
});
