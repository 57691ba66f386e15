import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectCgroups, LinuxCgroups } from '../../../../agent/drivers/linux/cgroups.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../../agent/errors.js';
import { NO_LIMITS } from '../../../../agent/drivers/container-config.js';
import { repoRoot } from '../../../support/repo-root.js';

/** This host's real mount table (test/fixtures/linux), moved onto a fake root. */
function hybridMountinfo(root: string): string {
  return readFileSync(join(repoRoot(), 'test/fixtures/linux/cgroup-hybrid-mountinfo.txt'), 'utf8')
    .split('\n').filter((l) => !l.startsWith('#')).join('\n')
    .replaceAll('/sys/fs/cgroup', root);
}

/**
 * Constructed from the mountinfo format (not captures): a systemd host on the
 * unified hierarchy, and a systemd hybrid host with cpu and cpuacct co-mounted.
 */
const pureV2 = (root: string) => `25 21 0:22 / ${root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
const systemdHybrid = (root: string) => [
  `25 21 0:22 / ${root} ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755`,
  `26 25 0:23 / ${root}/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate`,
  `30 25 0:27 / ${root}/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct`,
  `31 25 0:28 / ${root}/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory`,
  `32 25 0:29 / ${root}/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids`,
].join('\n');

/** Files the kernel would show in a directory (a fake tree has to be given them). */
function kernelFiles(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
}

/** The fake tree of this host: v1 memory (with memsw), cpu (with CFS bandwidth) and pids; v2 with no controllers. */
function hybridTree(root: string): void {
  kernelFiles(`${root}/memory`, { 'memory.limit_in_bytes': '9223372036854771712\n', 'cgroup.procs': '', tasks: '' });
  kernelFiles(`${root}/cpu`, { 'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n', 'cgroup.procs': '', tasks: '' });
  kernelFiles(`${root}/pids`, { 'cgroup.procs': '', tasks: '' });
  kernelFiles(`${root}/unified`, { 'cgroup.controllers': '\n', 'cgroup.subtree_control': '' });
}

const read = (p: string) => readFileSync(p, 'utf8');

/** What mkdir in each v1 hierarchy of this host makes (memsw only with swap accounting). */
function v1Cgroup(root: string, at: string, opts: { memsw?: boolean } = {}): void {
  kernelFiles(`${root}/memory/${at}`, { 'cgroup.procs': '', 'memory.limit_in_bytes': '', ...(opts.memsw ? { 'memory.memsw.limit_in_bytes': '' } : {}) });
  kernelFiles(`${root}/cpu/${at}`, { 'cgroup.procs': '', 'cpu.cfs_quota_us': '', 'cpu.cfs_period_us': '' });
  kernelFiles(`${root}/pids/${at}`, { 'cgroup.procs': '', 'pids.max': '' });
}

describe('cgroups: which hierarchy holds each controller (fake trees)', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'qf-cgroups-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('on this host\'s hybrid layout, takes memory, cpu and pids from their v1 hierarchies (v2 has none of them)', () => {
    hybridTree(root);
    const l = detectCgroups(root, hybridMountinfo(root));
    assert.deepEqual(l.hierarchies, {
      memory: { controller: 'memory', version: 1, mount: `${root}/memory` },
      cpu: { controller: 'cpu', version: 1, mount: `${root}/cpu` },
      pids: { controller: 'pids', version: 1, mount: `${root}/pids` },
    });
    assert.deepEqual(l.missing, []);
  });

  it('prefers v2 at root/unified for a controller it offers, v1 for the others', () => {
    hybridTree(root);
    writeFileSync(`${root}/unified/cgroup.controllers`, 'pids hugetlb\n');
    const l = detectCgroups(root, hybridMountinfo(root));
    assert.deepEqual(l.hierarchies.pids, { controller: 'pids', version: 2, mount: `${root}/unified` });
    assert.equal(l.hierarchies.memory?.version, 1);
  });

  it('on a unified host, takes every controller cgroup.controllers lists from the root', () => {
    kernelFiles(root, { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n', 'cgroup.subtree_control': '' });
    const l = detectCgroups(root, pureV2(root));
    assert.deepEqual(Object.values(l.hierarchies).map((h) => [h.controller, h.version, h.mount]), [
      ['memory', 2, root], ['cpu', 2, root], ['pids', 2, root],
    ]);
  });

  it('finds cpu in a co-mounted cpu,cpuacct hierarchy by its mount options, not by a directory name', () => {
    kernelFiles(`${root}/cpu,cpuacct`, { 'cpu.cfs_quota_us': '-1\n' });
    symlinkSync('cpu,cpuacct', `${root}/cpu`);
    kernelFiles(`${root}/memory`, { 'memory.limit_in_bytes': '1\n' });
    mkdirSync(`${root}/pids`);
    kernelFiles(`${root}/unified`, { 'cgroup.controllers': '' });
    const l = detectCgroups(root, systemdHybrid(root));
    assert.equal(l.hierarchies.cpu?.mount, `${root}/cpu,cpuacct`);
  });

  it('says per controller why one is missing: no hierarchy has it, or v1 cpu without CFS bandwidth', () => {
    kernelFiles(root, { 'cgroup.controllers': 'cpu io\n' });
    const v2Only = detectCgroups(root, pureV2(root));
    assert.deepEqual(Object.keys(v2Only.hierarchies), ['cpu']);
    assert.deepEqual(v2Only.missing, [
      `limit memory: no memory controller in ${root} (cgroup v2 at ${root} does not offer it, and no cgroup v1 hierarchy has it)`,
      `limit pids: no pids controller in ${root} (cgroup v2 at ${root} does not offer it, and no cgroup v1 hierarchy has it)`,
    ]);

    rmSync(`${root}/cgroup.controllers`);
    hybridTree(root);
    rmSync(`${root}/cpu/cpu.cfs_quota_us`);
    const noCfs = detectCgroups(root, hybridMountinfo(root));
    assert.equal(noCfs.hierarchies.cpu, undefined);
    assert.deepEqual(noCfs.missing, [`limit cpu: the cpu controller at ${root}/cpu has no cpu.cfs_quota_us (cgroup v2 at ${root}/unified does not offer it)`]);
  });

  it('offers nothing when the mount table has no cgroup filesystem below the root', () => {
    hybridTree(root);
    const caps = new LinuxCgroups({ root, parent: 'qfleet', mountinfo: () => hybridMountinfo('/elsewhere') }).capabilities();
    assert.deepEqual([caps.memory, caps.cpu, caps.pids], [false, false, false]);
    assert.equal(caps.missing.length, 3);
    assert.match(caps.missing[0]!, /^limit memory: no memory controller in /);
    const unreadable = new LinuxCgroups({ root, parent: 'qfleet', mountinfo: () => { throw new Error('EACCES: permission denied'); } }).capabilities();
    assert.deepEqual(unreadable.missing, ['memory', 'cpu', 'pids'].map((c) => `limit ${c}: cannot read the mount table: EACCES: permission denied`));
  });
});

describe('LinuxCgroups on fake trees (the files a kernel would make are given)', () => {
  let root: string;
  const cg = (opts: { parent?: string } = {}) => new LinuxCgroups({ root, parent: opts.parent ?? 'qfleet-t', mountinfo: () => hybridMountinfo(root) });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'qf-cgroups-'));
    hybridTree(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('v1: writes each limit, memsw only where the kernel has it, and answers one cgroup.procs per hierarchy', async () => {
    v1Cgroup(root, 'qfleet-t/web1', { memsw: true });
    const files = await cg().prepare('web1', { memoryBytes: 64 << 20, cpus: 1.5, pids: 64 });
    assert.equal(read(`${root}/memory/qfleet-t/web1/memory.limit_in_bytes`), String(64 << 20));
    assert.equal(read(`${root}/memory/qfleet-t/web1/memory.memsw.limit_in_bytes`), String(64 << 20));
    assert.equal(read(`${root}/cpu/qfleet-t/web1/cpu.cfs_quota_us`), '150000');
    assert.equal(read(`${root}/cpu/qfleet-t/web1/cpu.cfs_period_us`), '100000');
    assert.equal(read(`${root}/pids/qfleet-t/web1/pids.max`), '64');
    assert.deepEqual(files, ['memory', 'cpu', 'pids'].map((h) => `${root}/${h}/qfleet-t/web1/cgroup.procs`));
    assert.deepEqual(cg().procsFiles('web1'), files);
  });

  it('v1: a limit of 0 is no limit (-1, max), and memsw is never made where the kernel has none', async () => {
    v1Cgroup(root, 'qfleet-t/web1');
    await cg().prepare('web1', { memoryBytes: 0, cpus: 0, pids: 8 });
    assert.equal(read(`${root}/memory/qfleet-t/web1/memory.limit_in_bytes`), '-1');
    assert.ok(!existsSync(`${root}/memory/qfleet-t/web1/memory.memsw.limit_in_bytes`));
    assert.equal(read(`${root}/cpu/qfleet-t/web1/cpu.cfs_quota_us`), '-1');
    assert.equal(read(`${root}/pids/qfleet-t/web1/pids.max`), '8');
  });

  it('v2: enables the controllers in the root and the parent, then writes memory.max, cpu.max and pids.max', async () => {
    rmSync(`${root}/memory`, { recursive: true });
    writeFileSync(`${root}/unified/cgroup.controllers`, 'cpu memory pids\n');
    kernelFiles(`${root}/unified/qfleet-t`, { 'cgroup.subtree_control': '' });
    kernelFiles(`${root}/unified/qfleet-t/web1`, { 'memory.max': 'max\n', 'memory.swap.max': 'max\n', 'cpu.max': 'max 100000\n', 'pids.max': 'max\n' });
    const files = await cg().prepare('web1', { memoryBytes: 32 << 20, cpus: 0.5, pids: 0 });
    assert.equal(read(`${root}/unified/cgroup.subtree_control`), '+memory +cpu +pids');
    assert.equal(read(`${root}/unified/qfleet-t/cgroup.subtree_control`), '+memory +cpu +pids');
    assert.equal(read(`${root}/unified/qfleet-t/web1/memory.max`), String(32 << 20));
    assert.equal(read(`${root}/unified/qfleet-t/web1/memory.swap.max`), '0');
    assert.equal(read(`${root}/unified/qfleet-t/web1/cpu.max`), '50000 100000');
    assert.equal(read(`${root}/unified/qfleet-t/web1/pids.max`), 'max');
    assert.deepEqual(files, [`${root}/unified/qfleet-t/web1/cgroup.procs`], 'one directory holds every v2 controller');
  });

  it('makes no cgroup for a container without limits, but lifts the limits of one a former configuration left', async () => {
    assert.deepEqual(await cg().prepare('plain', NO_LIMITS), []);
    assert.ok(!existsSync(`${root}/pids/qfleet-t/plain`));
    v1Cgroup(root, 'qfleet-t/web1');
    await cg().prepare('web1', { memoryBytes: 0, cpus: 0, pids: 8 });
    const files = await cg().prepare('web1', NO_LIMITS);
    assert.equal(read(`${root}/pids/qfleet-t/web1/pids.max`), 'max');
    assert.equal(files.length, 3);
  });

  it('reports a control file the kernel did not make (the controller is not there) instead of creating it', async () => {
    await assert.rejects(cg().prepare('web1', { memoryBytes: 0, cpus: 0, pids: 8 }), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.match(e.message, /^cannot write "-1" to .*\/memory\/qfleet-t\/web1\/memory\.limit_in_bytes: ENOENT/);
      return true;
    });
    assert.ok(!existsSync(`${root}/memory/qfleet-t/web1/memory.limit_in_bytes`));
  });

  it('refuses a limit the host cannot enforce, in words, before making anything', async () => {
    rmSync(`${root}/cpu/cpu.cfs_quota_us`);
    await assert.rejects(cg().prepare('web1', { memoryBytes: 0, cpus: 1, pids: 8 }), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.equal(e.reason, 'unsupported');
      assert.match(e.message, /limit cpu: the cpu controller at .* has no cpu\.cfs_quota_us/);
      return true;
    });
    assert.ok(!existsSync(`${root}/pids/qfleet-t`));
  });

  it('refuses names that are not one plain component, before they reach a path', async () => {
    for (const bad of ['..', '../x', 'a/b', '', '.hidden', 'a..b']) {
      await assert.rejects(cg().prepare(bad, { memoryBytes: 0, cpus: 0, pids: 8 }), InvalidArgumentError, bad);
      assert.throws(() => cg().procsFiles(bad), InvalidArgumentError);
      await assert.rejects(cg().remove(bad), InvalidArgumentError);
    }
    assert.throws(() => cg({ parent: '../etc' }), InvalidArgumentError);
  });

  it('never follows a symlink out of the cgroup root', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'qf-outside-'));
    try {
      symlinkSync(outside, `${root}/pids/qfleet-t`);
      await assert.rejects(cg().prepare('web1', { memoryBytes: 0, cpus: 0, pids: 8 }), /symlink/);
      assert.throws(() => cg().procsFiles('web1'), /symlink/);
      await assert.rejects(cg().remove('web1'), /symlink/);
      assert.ok(!existsSync(`${outside}/web1`));
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('remove: takes away every directory, and reports one that stays busy past the deadline with its tasks', async () => {
    for (const h of ['memory', 'cpu', 'pids']) mkdirSync(`${root}/${h}/qfleet-t/web1`, { recursive: true });
    // A non-empty directory stands for a cgroup with tasks: rmdir refuses it.
    writeFileSync(`${root}/pids/qfleet-t/web1/cgroup.procs`, '4242\n');
    let t = 0;
    let sleeps = 0;
    const clock = { now: () => new Date(t), sleep: async (ms: number) => { sleeps++; t += ms; } };
    const c = new LinuxCgroups({ root, parent: 'qfleet-t', mountinfo: () => hybridMountinfo(root), clock, removeDeadlineMs: 500 });
    await assert.rejects(c.remove('web1'), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.equal(e.message, `cgroups of web1 not removed, still in use: ${root}/pids/qfleet-t/web1 (tasks: 4242)`);
      return true;
    });
    assert.equal(sleeps, 10, 'retried until the deadline, then stopped');
    assert.ok(!existsSync(`${root}/memory/qfleet-t/web1`) && !existsSync(`${root}/cpu/qfleet-t/web1`));
    rmSync(`${root}/pids/qfleet-t/web1/cgroup.procs`);
    await c.remove('web1');
    assert.deepEqual(c.procsFiles('web1'), []);
    await c.remove('web1'); // nothing there: nothing to do
  });
});
