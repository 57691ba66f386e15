import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import { CommandFailedError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../../../agent/errors.js';
import type { InstallProgressEvent } from '../../../../agent/drivers/host-driver.js';
import type { CommandSpec } from '../../../../agent/runner/command-runner.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { ref } from '../../../support/container-ref.js';

// The Linux driver's command plans, against a FakeRunner on a temp directory
// (no root needed). The kernel-facing parts (mounts, mount ids) are tested for
// real in the @root suites.

/** Pretends to extract a base: writes an os-release into the target dir the command names. */
function fakeExtract(dirArg: (spec: CommandSpec) => string) {
  return (spec: CommandSpec) => {
    const dir = dirArg(spec);
    mkdirSync(`${dir}/etc`, { recursive: true });
    writeFileSync(`${dir}/etc/os-release`, 'ID=debian\nVERSION_ID="12"\n');
    return {};
  };
}

describe('LinuxDriver plans (fake runner)', () => {
  let tmp: string;
  let runner: FakeRunner;
  let driver: LinuxDriver;
  const events: InstallProgressEvent[] = [];
  const progress = (e: InstallProgressEvent) => { events.push(e); };

  beforeEach(() => {
    tmp = mkdtempSync(`${tmpdir()}/qf-plan-`);
    runner = new FakeRunner();
    events.length = 0;
    writeFileSync(`${tmp}/os-release`, 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n');
    driver = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, osReleasePath: `${tmp}/os-release` });
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  describe('facts', () => {
    it('reports the host release as "ID VERSION_ID", the machine and the hostname', async () => {
      const f = await driver.facts();
      assert.equal(f.os, 'Linux');
      assert.equal(f.release, 'debian 12');
      assert.ok(f.machine.length > 0 && f.hostname.length > 0);
    });

    it('matches releases exactly', () => {
      assert.equal(driver.releasesMatch('debian 12', 'debian 12'), true);
      assert.equal(driver.releasesMatch('debian 12', 'debian 11'), false);
      assert.equal(driver.releasesMatch('debian 12', 'ubuntu 12'), false);
    });

    it('offers directory, tarball and debootstrap installs and a console', () => {
      assert.deepEqual(driver.capabilities().installMethods, ['directory', 'tarball', 'debootstrap']);
      assert.equal(driver.capabilities().console, true);
    });
  });

  describe('prepareBase', () => {
    it('debootstraps a minbase of the suite from the mirror into a fresh staging dir', async () => {
      runner.on(['debootstrap'], fakeExtract((s) => s.argv[3]!));
      const base = await driver.prepareBase({ method: 'debootstrap', source: 'bookworm', mirror: 'http://deb.debian.org/debian' }, progress);
      assert.equal(runner.calls.length, 1);
      assert.deepEqual(runner.calls[0]!.argv, ['debootstrap', '--variant=minbase', 'bookworm', base.stagingDir, 'http://deb.debian.org/debian']);
      assert.ok(base.stagingDir.startsWith(`${driver.layout.stagingDir}/base-`));
      assert.equal(base.release, 'debian 12');
      assert.deepEqual(events.map((e) => e.phase), ['fetch', 'extract']);
      assert.ok((runner.calls[0]!.timeoutMs ?? 0) >= 10 * 60_000, 'debootstrap gets a long timeout');
    });

    it('leaves the mirror out when none is given (debootstrap picks the default)', async () => {
      runner.on(['debootstrap'], fakeExtract((s) => s.argv[3]!));
      const base = await driver.prepareBase({ method: 'debootstrap', source: 'bookworm', mirror: '' }, progress);
      assert.deepEqual(runner.calls[0]!.argv, ['debootstrap', '--variant=minbase', 'bookworm', base.stagingDir]);
    });

    for (const file of ['/srv/base.tar', '/srv/base.tar.gz', '/srv/base.tar.xz']) {
      it(`extracts ${file.slice(10)} with tar, keeping permissions and numeric owners`, async () => {
        runner.on(['tar'], fakeExtract((s) => s.argv[4]!));
        const base = await driver.prepareBase({ method: 'tarball', source: file, mirror: '' }, progress);
        assert.deepEqual(runner.transcript, [`tar -xpf ${file} -C ${base.stagingDir} --numeric-owner`]);
        assert.deepEqual(events.map((e) => e.phase), ['extract', 'verify']);
      });
    }

    it('copies a directory base with cp -a of its contents', async () => {
      runner.on(['cp'], fakeExtract((s) => s.argv[4]!));
      const base = await driver.prepareBase({ method: 'directory', source: '/srv/rootfs/', mirror: '' }, progress);
      assert.deepEqual(runner.calls[0]!.argv, ['cp', '-a', '--', '/srv/rootfs/.', base.stagingDir]);
    });

    it('refuses a bad suite, a bad mirror, a relative path and the download method before running anything', async () => {
      const bad = [
        { method: 'debootstrap', source: 'bookworm; rm -rf /', mirror: '' },
        { method: 'debootstrap', source: 'bookworm', mirror: 'ftp://x y' },
        { method: 'tarball', source: 'base.tar', mirror: '' },
        { method: 'download', source: '', mirror: '' },
      ] as const;
      for (const spec of bad) await assert.rejects(driver.prepareBase(spec, progress), InvalidArgumentError);
      assert.deepEqual(runner.calls, []);
    });

    it('removes the staging dir when extraction fails or the tree has no os-release', async () => {
      runner.on(['tar'], { exitCode: 2, stderr: 'tar: not a tarball' });
      await assert.rejects(driver.prepareBase({ method: 'tarball', source: '/srv/x.tar', mirror: '' }, progress), CommandFailedError);
      runner.on(['cp'], {});
      await assert.rejects(driver.prepareBase({ method: 'directory', source: '/srv/empty', mirror: '' }, progress), FailedPreconditionError);
      assert.deepEqual(readdirSync(driver.layout.stagingDir), []);
    });
  });

  describe('services', () => {
    const root = () => driver.layout.containerRoot('web1');
    beforeEach(() => {
      mkdirSync(`${root()}/etc/init.d`, { recursive: true });
      writeFileSync(`${root()}/etc/init.d/httpd`, '#!/bin/sh\n', { mode: 0o755 });
      writeFileSync(`${root()}/etc/init.d/notexec`, '#!/bin/sh\n', { mode: 0o644 });
      chmodSync(`${root()}/etc/init.d/notexec`, 0o644);
      symlinkSync('/etc/init.d/cron', `${root()}/etc/init.d/linked`);
    });

    it('starts through the init script in a chroot, with a minimal env and output to the container log', async () => {
      runner.on(['chroot', root(), '/etc/init.d/httpd', 'start']);
      await driver.startService(ref('web1'), 'httpd');
      const c = runner.calls[0]!;
      assert.deepEqual(c.argv, ['chroot', root(), '/etc/init.d/httpd', 'start']);
      assert.equal(c.logFile, `${tmp}/log/web1.log`);
      assert.deepEqual(Object.keys(c.env ?? {}).sort(), ['HOME', 'LANG', 'LC_ALL', 'PATH']);
      assert.ok(existsSync(`${tmp}/log`));
    });

    it('stops the same way', async () => {
      runner.on(['chroot', root(), '/etc/init.d/httpd', 'stop']);
      await driver.stopService(ref('web1'), 'httpd');
      assert.deepEqual(runner.transcript, [`chroot ${root()} /etc/init.d/httpd stop`]);
      assert.equal(runner.calls[0]!.logFile, `${tmp}/log/web1.log`);
    });

    it('start and stop alike refuse a service without an executable script of its own, running nothing', async () => {
      for (const service of ['notexec', 'linked', 'missing']) {
        await assert.rejects(driver.startService(ref('web1'), service), new RegExp(`container web1 has no executable /etc/init.d/${service}$`));
        await assert.rejects(driver.stopService(ref('web1'), service), new RegExp(`container web1 has no executable /etc/init.d/${service}$`));
      }
      assert.deepEqual(runner.transcript, []);
    });

    it('probes with status: exit 0 is running, anything else is not', async () => {
      runner.on(['chroot'], (s) => ({ exitCode: s.argv[3] === 'status' ? 0 : 1 }));
      assert.equal((await driver.probeService(ref('web1'), 'httpd')).running, true);
      const stopped = new FakeRunner().on(['chroot'], { exitCode: 3, stdout: 'httpd is not running' });
      const d2 = new LinuxDriver({ runner: stopped, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log` });
      assert.equal((await d2.probeService(ref('web1'), 'httpd')).running, false);
      assert.equal(stopped.calls[0]!.logFile, undefined, 'status output is captured, not logged');
    });

    it('knows a script only when it is an executable regular file, never through a symlink', async () => {
      assert.equal(await driver.hasServiceScript('web1', 'httpd'), true);
      assert.equal(await driver.hasServiceScript('web1', 'notexec'), false);
      assert.equal(await driver.hasServiceScript('web1', 'linked'), false);
      assert.equal(await driver.hasServiceScript('web1', 'missing'), false);
      assert.equal(await driver.hasServiceScript('nosuch', 'httpd'), false);
      rmSync(`${root()}/etc/init.d`, { recursive: true });
      symlinkSync('/etc/init.d', `${root()}/etc/init.d`);
      assert.equal(await driver.hasServiceScript('web1', 'httpd'), false, 'a symlinked init.d leads to the host');
    });

    it('refuses to start a service without a script, and bad names', async () => {
      await assert.rejects(driver.startService(ref('web1'), 'missing'), NotFoundError);
      await assert.rejects(driver.startService(ref('web1'), '../../bin/sh'), InvalidArgumentError);
      await assert.rejects(driver.startService(ref('../web1'), 'httpd'), InvalidArgumentError);
      assert.deepEqual(runner.calls, []);
    });
  });

  describe('execSpec', () => {
    const root = () => driver.layout.containerRoot('web1');

    it('runs a command with chroot and a clean environment', () => {
      const s = driver.execSpec(ref('web1'), { argv: ['ls', '-l', '/'], tty: false, console: false, env: {} });
      assert.deepEqual(s.argv, ['chroot', root(), 'ls', '-l', '/']);
      assert.deepEqual(s.env, { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' });
    });

    it('passes TERM and other given variables on', () => {
      const s = driver.execSpec(ref('web1'), { argv: ['env'], tty: false, console: false, env: { TERM: 'xterm', FOO: 'a b' } });
      assert.equal(s.env?.TERM, 'xterm');
      assert.equal(s.env?.FOO, 'a b');
      assert.throws(() => driver.execSpec(ref('web1'), { argv: ['env'], tty: false, console: false, env: { 'A=B': 'x' } }), InvalidArgumentError);
    });

    it('asks the runner for a terminal of the client\'s size, with the same argv and environment as without one', () => {
      const s = driver.execSpec(ref('web1'), { argv: ['echo', "it's $HOME"], tty: true, console: false, env: { TERM: 'vt100' }, rows: 40, cols: 120 });
      assert.deepEqual(s.argv, ['chroot', root(), 'echo', "it's $HOME"]);
      assert.deepEqual(s.env, { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', TERM: 'vt100' });
      assert.deepEqual(s.terminal, { rows: 40, cols: 120 });
      assert.deepEqual(driver.execSpec(ref('web1'), { argv: ['true'], tty: true, console: false, env: {} }).terminal, {}, 'no size: the terminal\'s own');
    });

    it('runs a console fed from a pipe (no tty) as a plain shell reading stdin, without a terminal', () => {
      const s = driver.execSpec(ref('web1'), { argv: [], tty: false, console: true, env: {} });
      assert.deepEqual(s.argv, ['chroot', driver.layout.containerRoot('web1'), '/bin/sh']);
      assert.equal(s.terminal, undefined);
    });

    it('opens a console as an interactive shell on a terminal, whose prompt shows the container and path', () => {
      const s = driver.execSpec(ref('web1'), { argv: [], tty: true, console: true, env: {} });
      assert.deepEqual(s.argv, ['chroot', root(), '/bin/sh', '-i']);
      assert.equal(s.env?.PS1, 'web1:\\w# ');
      assert.ok(s.terminal);
    });

    it('refuses container names that could escape the containers dir', () => {
      for (const bad of ['..', '.', 'a/b', '', 'a b', '-rf']) {
        assert.throws(() => driver.execSpec(ref(bad), { argv: ['true'], tty: false, console: false, env: {} }), InvalidArgumentError, bad);
      }
    });
  });

  describe('guards', () => {
    it('refuses a root dir a command line or script -c could not carry safely', () => {
      for (const bad of ['relative/dir', '/tmp/a b', "/tmp/it's", '/tmp/$x']) {
        assert.throws(() => new LinuxDriver({ runner, rootDir: bad, logDir: '/tmp' }), InvalidArgumentError, bad);
      }
    });

    it('refuses to create before install and to discard anything outside staging', async () => {
      await assert.rejects(driver.createContainer('web1'), FailedPreconditionError);
      await assert.rejects(driver.discardBase({ stagingDir: `${tmp}`, release: 'x' }), InvalidArgumentError);
      await assert.rejects(driver.discardBase({ stagingDir: `${driver.layout.stagingDir}/../..`, release: 'x' }), InvalidArgumentError);
    });

    it('refuses to signal init or nonsense pids', async () => {
      await assert.rejects(driver.signalProcesses([1], 'SIGTERM'), InvalidArgumentError);
      await assert.rejects(driver.signalProcesses([0], 'SIGTERM'), InvalidArgumentError);
    });

    it('finds processes by their /proc/PID/root, including those chrooted deeper inside (from the configured proc dir)', async () => {
      const proc = `${tmp}/proc`;
      for (const [pid, rootLink] of [
        ['100', driver.layout.containerRoot('web1')],
        ['101', '/'],
        ['102', `${driver.layout.containerRoot('web1')}2`],
        ['103', `${driver.layout.containerRoot('web1')}/var/empty`], // a daemon that chrooted further (privilege separation)
      ] as const) {
        mkdirSync(`${proc}/${pid}`, { recursive: true });
        symlinkSync(rootLink, `${proc}/${pid}/root`);
      }
      mkdirSync(`${proc}/self`);
      const d = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, procDir: proc });
      assert.deepEqual(await d.processesIn('web1'), [100, 103]);
    });

    it('asks the status script again only when the container\'s processes changed (a pid, or its start time), given a process table', async () => {
      const proc = `${tmp}/proc`;
      const root = () => driver.layout.containerRoot('web1');
      mkdirSync(`${proc}/self`, { recursive: true });
      mkdirSync(`${root()}/etc/init.d`, { recursive: true });
      writeFileSync(`${root()}/etc/init.d/httpd`, '#!/bin/sh\n', { mode: 0o755 });
      /** /proc/PID/root and a /proc/PID/stat whose field 22 (starttime) is `start`. */
      const setProc = (pid: number, start: number, rootLink = root()) => {
        mkdirSync(`${proc}/${pid}`, { recursive: true });
        if (!existsSync(`${proc}/${pid}/root`)) symlinkSync(rootLink, `${proc}/${pid}/root`);
        writeFileSync(`${proc}/${pid}/stat`, `${pid} (httpd x) S 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 1\n`);
      };
      runner.on(['chroot'], { exitCode: 0 });
      const d = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, procDir: proc });
      const asked = () => runner.transcript.filter((t) => t.endsWith('/etc/init.d/httpd status')).length;
      const probe = async () => (await d.probeService(ref('web1'), 'httpd', await d.processTable())).running;
      setProc(100, 5000);
      setProc(200, 7000, '/'); // the host's own: no part of the fingerprint

      assert.equal(await probe(), true);
      assert.equal(await probe(), true);
      assert.equal(asked(), 1, 'the same processes: the answer holds');
      setProc(200, 7001, '/');
      assert.equal(await probe(), true);
      assert.equal(asked(), 1, 'a change outside the container does not matter');
      setProc(100, 5001);
      assert.equal(await probe(), true);
      assert.equal(asked(), 2, 'pid 100 was reused by another process');
      setProc(101, 5100);
      assert.equal(await probe(), true);
      assert.equal(asked(), 3, 'a process started');
      rmSync(`${proc}/101`, { recursive: true });
      assert.equal(await probe(), true);
      assert.equal(asked(), 4, 'a process exited');
      await d.probeService(ref('web1'), 'httpd');
      assert.equal(asked(), 5, 'without a table the script is always asked');
      assert.deepEqual((await d.processTable()).pidsIn('web1'), [100]);
    });

    it('reads the mount table from the configured proc dir', async () => {
      const proc = `${tmp}/proc`;
      mkdirSync(`${proc}/self`, { recursive: true });
      writeFileSync(`${proc}/self/mountinfo`, `42 27 254:0 /srv/sharedfs ${driver.layout.containerRoot('web1')}/sharedfs ro,relatime - ext4 /dev/vda rw\n`);
      const d = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, procDir: proc });
      assert.deepEqual(await d.mounts(), [{ source: '/dev/vda', target: `${driver.layout.containerRoot('web1')}/sharedfs`, fstype: 'ext4', options: ['ro', 'relatime', 'rw'] }]);
      await assert.rejects(d.removeContainer('web1'), (e: unknown) => e instanceof FailedPreconditionError && /sharedfs/.test(e.message));
      await assert.rejects(d.unmountContainer('web1'), FailedPreconditionError, 'a mount the fake cannot remove is reported, not ignored');
    });
  });
});
