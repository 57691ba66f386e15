import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { checkMap, mapText, toHost, toInside } from '../../../../agent/drivers/linux/id-shift.js';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import type { ProbeHost } from '../../../../agent/drivers/linux/ns-probe.js';
import { CD_SCRIPT } from '../../../../agent/runner/ns-scripts.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../../agent/errors.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { ref } from '../../../support/container-ref.js';

// Namespaces plans against a FakeRunner and a made-up /proc: how services and
// exec enter the init, what the pidfile means, and the checks made before up.
// Starting the init for real is in namespaces.root.test.ts.

const TOOLS: ProbeHost = {
  exists: (p) => ['/proc/self/ns/user', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/setpriv', '/usr/bin/tini-static', '/bin/busybox'].includes(p),
  readFile: (p) => {
    if (p === '/proc/sys/user/max_user_namespaces') return Buffer.from('100\n');
    // A static ELF: a 64-bit header with one PT_LOAD program header.
    const b = Buffer.alloc(120);
    b.writeUInt32BE(0x7f454c46, 0); b[4] = 2; b[5] = 1;
    b.writeBigUInt64LE(64n, 0x20); b.writeUInt16LE(56, 0x36); b.writeUInt16LE(1, 0x38); b.writeUInt32LE(1, 64);
    return b;
  },
  uid: () => 0,
};
const NSENTER = ['/usr/bin/nsenter', '--target', '4242', '--user', '--mount', '--uts', '--ipc', '--pid'];
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

describe('LinuxDriver namespaces plans (fake runner, made-up /proc)', () => {
  let tmp: string;
  let runner: FakeRunner;
  let driver: LinuxDriver;
  const root = (n = 'web') => driver.layout.containerRoot(n);
  const ns = (config = {}) => ref('web', { isolation: 'namespaces', ...config });
  /** The init as /proc shows it: pid 4242 started at tick 777 (stat field 22). */
  const initStat = (state = 'S', start = '777') =>
    writeFileSync(`${tmp}/proc/4242/stat`, `4242 (tini) ${state} 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 10\n`);

  beforeEach(() => {
    tmp = mkdtempSync(`${tmpdir()}/qf-nsplan-`);
    runner = new FakeRunner();
    mkdirSync(`${tmp}/proc/4242`, { recursive: true });
    mkdirSync(`${tmp}/run`);
    driver = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, runDir: `${tmp}/run`, procDir: `${tmp}/proc`, probeHost: TOOLS });
    mkdirSync(`${root()}/etc/init.d`, { recursive: true });
    writeFileSync(`${root()}/etc/passwd`, 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n');
    writeFileSync(`${root()}/etc/group`, 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n');
    writeFileSync(`${root()}/etc/init.d/httpd`, '#!/bin/sh\n', { mode: 0o755 });
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  describe('runtime (the pidfile and /proc/PID only)', () => {
    it('is down, with nothing wrong, without a pidfile', async () => {
      assert.deepEqual(await driver.runtime(ns()), { up: false, problems: [] });
    });

    it('is up when the pidfile names a live process with its start time', async () => {
      writeFileSync(`${tmp}/run/web.pid`, '4242 777\n');
      initStat();
      assert.deepEqual(await driver.runtime(ns()), { up: true, problems: [], initPid: 4242 });
    });

    it('reads the pidfile again only when its stat changes: a file replaced (the agent writes by rename) or removed is seen', async () => {
      const file = `${tmp}/run/web.pid`;
      writeFileSync(file, '4242 777\n');
      utimesSync(file, 1000, 1000);
      initStat();
      assert.equal((await driver.runtime(ns())).initPid, 4242);
      // The same inode, size and mtime with other bytes: taken as the file read before, unread.
      writeFileSync(file, '4243 778\n');
      utimesSync(file, 1000, 1000);
      assert.equal((await driver.runtime(ns())).initPid, 4242);
      mkdirSync(`${tmp}/proc/4243`);
      writeFileSync(`${tmp}/proc/4243/stat`, '4243 (tini) S 1 4243 4243 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 778 1000 10\n');
      writeFileSync(`${file}.new`, '4243 778\n');
      renameSync(`${file}.new`, file);
      assert.equal((await driver.runtime(ns())).initPid, 4243, 'a new file is read');
      rmSync(file);
      assert.deepEqual(await driver.runtime(ns()), { up: false, problems: [] });
    });

    for (const [what, make] of [
      ['gone', () => rmSync(`${tmp}/proc/4242`, { recursive: true })],
      ['a zombie', () => initStat('Z')],
      ['another process with the same pid', () => initStat('S', '9999')],
    ] as const) {
      it(`says the init is gone when its pid is ${what}`, async () => {
        writeFileSync(`${tmp}/run/web.pid`, '4242 777\n');
        initStat();
        make();
        assert.deepEqual(await driver.runtime(ns()), { up: false, problems: ['its init (pid 4242) is gone'] });
      });
    }
  });

  describe('runtimesOf (a List: one look at the run directory for all)', () => {
    it('answers down, with nothing wrong, for every container with neither a pidfile nor a launcher\'s file', async () => {
      assert.deepEqual(await driver.runtimesOf([ns(), ref('db', { isolation: 'namespaces' })]), new Map([
        ['web', { up: false, problems: [] }], ['db', { up: false, problems: [] }],
      ]));
    });

    it('leaves to runtime() each container that has either, and chroot containers', async () => {
      writeFileSync(`${tmp}/run/web.pid`, '4242 777\n');
      writeFileSync(`${tmp}/run/db.launcher`, '4243 778\n');
      const got = await driver.runtimesOf([ns(), ref('db', { isolation: 'namespaces' }), ref('old', { isolation: 'namespaces' }), ref('chr')]);
      assert.deepEqual([...got.keys()], ['old']);
    });

    it('answers down for all when the run directory was never made (nothing ever started)', async () => {
      rmSync(`${tmp}/run`, { recursive: true });
      assert.deepEqual([...(await driver.runtimesOf([ns()])).keys()], ['web']);
    });
  });

  describe('entering a running container', () => {
    beforeEach(() => {
      writeFileSync(`${tmp}/run/web.pid`, '4242 777\n');
      initStat();
    });

    it('runs exec with nsenter into all its namespaces, user namespace included, as root inside', () => {
      const s = driver.execSpec(ns(), { argv: ['ls', '/'], tty: false, console: false, env: { TERM: 'xterm' } });
      assert.deepEqual(s.argv, [...NSENTER, '--root', '--wd', '--', 'ls', '/']);
      assert.deepEqual(s.env, { PATH, HOME: '/root', TERM: 'xterm' });
    });

    it('joins its network namespace too when it has a network of its own', () => {
      const s = driver.execSpec(ns({ network: 'none' }), { argv: ['true'], tty: false, console: false, env: {} });
      assert.deepEqual(s.argv, [...NSENTER, '--net', '--root', '--wd', '--', 'true']);
    });

    it('runs as the configured user and group (numbers from the container\'s own files), in the workdir, with the environment', () => {
      const s = driver.execSpec(ns({ user: 'www-data', group: 'nogroup', workdir: '/var/www', env: { A: '1' } }), { argv: ['id'], tty: false, console: false, env: {} });
      assert.deepEqual(s.argv, [...NSENTER, '--root', '--wd', '-S', '33', '-G', '65534', '--', '/dev/.qfleet/busybox', 'sh', '-c', CD_SCRIPT, 'qfleet-cd', '/var/www', 'id']);
      assert.deepEqual(s.env, { PATH, HOME: '/var/www', A: '1' });
    });

    it('starts services the same way, their output to the container\'s log', async () => {
      runner.on(['/usr/bin/nsenter']);
      await driver.startService(ns(), 'httpd');
      assert.deepEqual(runner.calls[0]!.argv, [...NSENTER, '--root', '--wd', '--', '/etc/init.d/httpd', 'start']);
      assert.equal(runner.calls[0]!.logFile, `${tmp}/log/web.log`);
      assert.deepEqual(runner.calls[0]!.env, { PATH, HOME: '/root', LANG: 'C', LC_ALL: 'C' });
    });

    it('asks the status script again only when the init\'s tree changed (a pid or its start time), a thread\'s children included', async () => {
      const proc = `${tmp}/proc`;
      /** /proc/PID/stat with `threads` (field 20) and start time (field 22), and each thread's children file. */
      const setProc = (pid: number, start: number, children: Record<number, number[]> = { [pid]: [] }) => {
        rmSync(`${proc}/${pid}/task`, { recursive: true, force: true });
        for (const [tid, kids] of Object.entries(children)) {
          mkdirSync(`${proc}/${pid}/task/${tid}`, { recursive: true });
          writeFileSync(`${proc}/${pid}/task/${tid}/children`, kids.map((k) => `${k} `).join(''));
        }
        const threads = Object.keys(children).length;
        writeFileSync(`${proc}/${pid}/stat`, `${pid} (x y) S 1 ${pid} ${pid} 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 ${threads} 0 ${start} 1000 10\n`);
      };
      runner.on(['/usr/bin/nsenter'], { exitCode: 0 });
      const asked = () => runner.transcript.filter((t) => t.endsWith('/etc/init.d/httpd status')).length;
      const probe = async () => (await driver.probeService(ns(), 'httpd', await driver.processTable())).running;
      setProc(4242, 777, { 4242: [4300] });
      setProc(4300, 800, { 4300: [], 4301: [4400] });
      setProc(4400, 900);

      assert.equal(await probe(), true);
      assert.equal(await probe(), true);
      assert.equal(asked(), 1, 'the same processes: the answer holds');
      setProc(4400, 901);
      assert.equal(await probe(), true);
      assert.equal(asked(), 2, 'pid 4400 (a child of a second thread) was reused by another process');
      setProc(4242, 777, { 4242: [4300, 4500] });
      setProc(4500, 950);
      assert.equal(await probe(), true);
      assert.equal(asked(), 3, 'a process started');
      setProc(4242, 777, { 4242: [4300] });
      assert.equal(await probe(), true);
      assert.equal(asked(), 4, 'a process exited');
    });

    it('refuses a container whose init is gone, and probes its services as not running', async () => {
      initStat('S', '1');
      assert.throws(() => driver.execSpec(ns(), { argv: ['true'], tty: false, console: false, env: {} }), (e: unknown) =>
        e instanceof FailedPreconditionError && e.reason === 'stopped');
      assert.deepEqual(await driver.probeService(ns(), 'httpd'), { running: false, pids: [] });
      assert.deepEqual(runner.calls, []);
    });
  });

  describe('checks', () => {
    it('refuses in a chroot what only namespaces can do, rather than ignore it', async () => {
      for (const config of [{ network: 'none' as const }, { hostname: 'h' }, { uidMap: [{ inside: 0, outside: 100000, count: 10 }] },
        { mounts: [{ kind: 'tmpfs' as const, source: '', target: '/x', readOnly: false, sizeBytes: 0 }] }]) {
        await assert.rejects(driver.checkConfig(ref('web', config)), (e: unknown) => e instanceof FailedPreconditionError && e.reason === 'unsupported');
      }
    });

    it('runs a chroot\'s commands as its configured user with chroot --userspec', () => {
      const s = driver.execSpec(ref('web', { user: 'www-data' }), { argv: ['id'], tty: false, console: false, env: {} });
      assert.deepEqual(s.argv, ['chroot', '--userspec=33:33', root(), 'id']);
    });

    it('refuses mounts over what the container needs, and users its maps leave out', async () => {
      for (const target of ['/', '/dev', '/dev/pts', '/proc', '/sharedfs/usr']) {
        await assert.rejects(driver.checkConfig(ns({ mounts: [{ kind: 'tmpfs', source: '', target, readOnly: false, sizeBytes: 0 }] })), InvalidArgumentError, target);
      }
      await assert.rejects(driver.checkConfig(ns({ user: 'www-data', uidMap: [{ inside: 0, outside: 100000, count: 10 }] })), FailedPreconditionError);
      await driver.checkConfig(ns({ user: 'www-data' }));
    });
  });

  describe('id maps', () => {
    const M = [{ inside: 0, outside: 100000, count: 1000 }, { inside: 1000, outside: 300000, count: 10 }];

    it('maps ids both ways, range by range', () => {
      assert.equal(toHost(M, 0), 100000);
      assert.equal(toHost(M, 1005), 300005);
      assert.equal(toHost(M, 1010), undefined);
      assert.equal(toInside(M, 300009), 1009);
      assert.equal(toInside(M, 0), undefined);
      assert.equal(mapText(M), '0 100000 1000,1000 300000 10');
    });

    it('accepts a well-formed map and refuses what the kernel or safety would not take', () => {
      checkMap(M, 'uid');
      const bad: [string, { inside: number; outside: number; count: number }[]][] = [
        ['host root', [{ inside: 0, outside: 0, count: 65536 }]],
        ['root inside unmapped', [{ inside: 1, outside: 100000, count: 10 }]],
        ['overlap inside', [{ inside: 0, outside: 100000, count: 10 }, { inside: 5, outside: 200000, count: 10 }]],
        ['overlap outside', [{ inside: 0, outside: 100000, count: 10 }, { inside: 50, outside: 100005, count: 10 }]],
        ['zero count', [{ inside: 0, outside: 100000, count: 0 }]],
        ['past 32 bits', [{ inside: 0, outside: 0xffff_fff0, count: 100 }]],
      ];
      for (const [what, map] of bad) assert.throws(() => checkMap(map, 'uid'), InvalidArgumentError, what);
    });
  });
});
