import { strict as assert } from 'node:assert';
import { FreeBSDDriver } from '../../../../agent/drivers/freebsd/freebsd-driver.js';
import {
  AlreadyExistsError, CommandFailedError, FailedPreconditionError, InvalidArgumentError, NotFoundError,
} from '../../../../agent/errors.js';
import { onTerminal } from '../../../../agent/runner/terminal.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { C, LOG, Rig } from './rig.js';
import { ref } from '../../../support/container-ref.js';

// Golden transcripts for the container verbs, on the simulated host. Refusals
// must happen before any command that changes the host.

const MOUNT = 'mount -p --libxo json';
const MUTATING = /^(mount_nullfs|mount -t|devfs -m|umount|chflags|rm|mv|cp|kill|chroot \S+ \S+ \S+ onest(art|op))\b/;

describe('FreeBSDDriver containers (golden transcripts)', () => {
  describe('createContainer', () => {
    it('extracts the template archive made at install (tar -xpf keeps hard links and file flags)', async () => {
      const r = await new Rig().installed();
      await r.driver.createContainer('web');
      assert.deepEqual(r.take(), [
        'test -e /q/containers/web', 'test -d /q/template', 'mkdir -p /q/containers', 'test -f /q/template.tar',
        'mkdir /q/containers/web', 'tar -xpf /q/template.tar -C /q/containers/web',
      ]);
      assert.deepEqual(r.host.fs.get(`${C}/usr/sbin`), { kind: 'link', target: '/sharedfs/usr/sbin' });
      assert.deepEqual(r.host.fs.get(`${C}/var/empty/.keep`), { kind: 'file', data: '', schg: true }, 'schg survives');
    });

    it('copies the template with cp -a when the base was installed before the archive existed', async () => {
      const r = await new Rig().installed();
      r.host.fs.delete('/q/template.tar');
      await r.driver.createContainer('web');
      assert.deepEqual(r.take().slice(-2), ['test -f /q/template.tar', 'cp -a /q/template /q/containers/web']);
    });

    it('refuses an existing container (ALREADY_EXISTS) and a missing template (install first)', async () => {
      const r = await new Rig().created();
      await assert.rejects(r.driver.createContainer('web'), AlreadyExistsError);
      assert.deepEqual(r.take(), ['test -e /q/containers/web']);
      const fresh = new Rig();
      await assert.rejects(fresh.driver.createContainer('web'), (e: unknown) => e instanceof FailedPreconditionError && /install a base first/.test(e.message));
      assert.deepEqual(fresh.take(), ['test -e /q/containers/web', 'test -d /q/template']);
    });
  });

  describe('mountContainer', () => {
    const MOUNT_ALL = [
      'test -d /q/containers/web',
      MOUNT,
      `realpath ${C}/sharedfs`,
      `realpath ${C}/dev`,
      'devfs rule showsets',
      'uname -r',
      `mount_nullfs -o ro,nocover,emptydir /q/sharedfs ${C}/sharedfs`,
      `mount -t devfs -o ruleset=4 devfs ${C}/dev`,
      MOUNT,
    ];

    it('checks mount points with realpath first, mounts sharedfs ro (nocover, emptydir) and devfs with ruleset 4 as a mount option, then re-reads the table', async () => {
      const r = await new Rig().created();
      await r.driver.mountContainer('web');
      assert.deepEqual(r.take(), MOUNT_ALL);
      assert.match(r.host.mountP(), /^\/q\/sharedfs\t\t\/q\/containers\/web\/sharedfs nullfs\tro\t\t0 0$/m);
      // The ruleset belongs to the mount from the start (devfs nodes created later stay hidden); no applyset afterwards.
      assert.equal(r.host.mountList.find((m) => m.target === `${C}/dev`)?.ruleset, 4);
    });

    it('mounts sharedfs with ro alone on a release before 13.0 (no nocover/emptydir), reading uname -r once', async () => {
      const r = await new Rig({ release: '12.4-RELEASE-p9', libxo: false }).created();
      await r.driver.mountContainer('web');
      assert.ok(r.take().includes(`mount_nullfs -o ro /q/sharedfs ${C}/sharedfs`));
      await r.driver.unmountContainer('web');
      await r.driver.mountContainer('web');
      assert.deepEqual(r.take().filter((l) => l.startsWith('uname')), [], 'the kernel release is read once per agent');
    });

    it('refuses (emptydir) to mount sharedfs over files planted in its mount point, which the mount would hide', async () => {
      const r = await new Rig().created();
      r.host.writeFile(`${C}/sharedfs/planted`, 'x\n');
      await assert.rejects(r.driver.mountContainer('web'), /mount_nullfs: .*sharedfs: Directory not empty/);
      assert.deepEqual(r.host.mountedUnder(C), []);
    });

    it('mounts only what is missing', async () => {
      const r = await new Rig().mounted();
      await r.driver.mountContainer('web');
      assert.deepEqual(r.take(), ['test -d /q/containers/web', MOUNT]);
      await r.host.exec({ argv: ['umount', `${C}/dev`] });
      await r.driver.mountContainer('web');
      assert.deepEqual(r.take(), [
        'test -d /q/containers/web', MOUNT, `realpath ${C}/dev`, 'devfs rule showsets',
        `mount -t devfs -o ruleset=4 devfs ${C}/dev`, MOUNT,
      ]);
    });

    it('applies the configured ruleset', async () => {
      const r = await new Rig({ rulesets: [1, 2, 3, 4, 42] }, { devfsRuleset: 42 }).created();
      await r.driver.mountContainer('web');
      assert.ok(r.take().includes(`mount -t devfs -o ruleset=42 devfs ${C}/dev`));
    });

    for (const [what, target, link] of [
      ['sharedfs planted as a symlink out of the container', 'sharedfs', '/etc'],
      ['sharedfs planted as a symlink to elsewhere inside it', 'sharedfs', 'tmp'],
      ['dev planted as a symlink to the host /dev', 'dev', '/dev'],
    ] as const) {
      it(`refuses ${what} before any mount command runs`, async () => {
        const r = await new Rig().created();
        r.host.fs.delete(`${C}/${target}`);
        r.host.symlink(link, `${C}/${target}`);
        await assert.rejects(r.driver.mountContainer('web'), (e: unknown) =>
          e instanceof FailedPreconditionError && e.message.includes(`mount point ${C}/${target} resolves to`) && /refusing to mount/.test(e.message));
        const t = r.take();
        assert.deepEqual(t.filter((l) => MUTATING.test(l)), []);
        assert.ok(t.includes(`realpath ${C}/${target}`));
        assert.deepEqual(r.host.mountedUnder('/q'), []);
        assert.deepEqual(r.host.mountedUnder('/etc'), []);
      });
    }

    it('refuses when the devfs ruleset is not loaded, before mounting anything', async () => {
      const r = await new Rig({ rulesets: [1, 2, 3] }).created();
      await assert.rejects(r.driver.mountContainer('web'), (e: unknown) => e instanceof FailedPreconditionError && /ruleset 4 is not loaded/.test(e.message));
      assert.deepEqual(r.take(), MOUNT_ALL.slice(0, 5), 'refused before uname -r and any mount');
      assert.deepEqual(r.host.mountedUnder(C), []);
    });

    it('never runs devfs applyset (it filters only the nodes that exist when it runs)', async () => {
      const r = await new Rig().created();
      await r.driver.mountContainer('web');
      assert.deepEqual(r.take().filter((l) => l.startsWith('devfs -m')), []);
    });

    it('refuses a foreign filesystem already mounted on the sharedfs mount point', async () => {
      const r = await new Rig().created();
      r.host.mkdirP('/tmp/other');
      r.host.exec({ argv: ['mount_nullfs', '-o', 'rw', '/tmp/other', `${C}/sharedfs`] });
      await assert.rejects(r.driver.mountContainer('web'), /has \/tmp\/other \(nullfs\) mounted, not \/q\/sharedfs/);
      assert.deepEqual(r.take(), ['test -d /q/containers/web', MOUNT]);
    });

    it('says NOT_FOUND for a container that does not exist', async () => {
      const r = await new Rig().installed();
      await assert.rejects(r.driver.mountContainer('nope'), NotFoundError);
      assert.deepEqual(r.take(), ['test -d /q/containers/nope']);
    });
  });

  describe('unmountContainer', () => {
    it('unmounts everything under the root from the table, deepest first, and re-reads it', async () => {
      const r = await new Rig().mounted();
      await r.driver.unmountContainer('web');
      assert.deepEqual(r.take(), [MOUNT, `umount ${C}/dev`, `umount ${C}/sharedfs`, MOUNT]);
      await r.driver.unmountContainer('web');
      assert.deepEqual(r.take(), [MOUNT], 'nothing mounted: nothing to do');
    });

    it('stops at a busy mount (Device busy) with a clear error and unmounts nothing more', async () => {
      const r = await new Rig().running();
      await assert.rejects(r.driver.unmountContainer('web'), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`umount: unmount of ${C}/dev failed: Device busy`));
      assert.deepEqual(r.take(), [MOUNT, `umount ${C}/dev`]);
      assert.deepEqual(r.host.mountedUnder(C).sort(), [`${C}/dev`, `${C}/sharedfs`]);
    });

    it('unmounts devfs before sharedfs, and a mount below sharedfs before both', async () => {
      const r = await new Rig().mounted();
      r.host.mkdirP('/tmp/extra');
      r.host.exec({ argv: ['mount_nullfs', '-o', 'ro', '/tmp/extra', `${C}/sharedfs/usr/share`] });
      await r.driver.unmountContainer('web');
      assert.deepEqual(r.take(), [MOUNT, `umount ${C}/sharedfs/usr/share`, `umount ${C}/dev`, `umount ${C}/sharedfs`, MOUNT]);
    });

    it('refuses, naming leftovers, when the table still shows mounts after umount', async () => {
      const r = (await new Rig().mounted()).when(['umount'], { exitCode: 0 });
      await assert.rejects(r.driver.unmountContainer('web'), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`${C}/sharedfs (nullfs)`) && e.message.includes(`${C}/dev (devfs)`));
    });

    it('refuses when a mount -p line under the container cannot be split (whitespace in a path)', async () => {
      const r = new Rig({ release: '13.2-RELEASE-p4' });
      await r.created();
      r.when(['mount', '-p'], { stdout: `${r.host.mountP()}/tmp/my dir\t\t${C}/mnt\tnullfs\tro\t\t0 0\n` });
      await assert.rejects(r.driver.unmountContainer('web'), /cannot tell what is mounted/);
      assert.deepEqual(r.take(), ['mount -p']);
    });
  });

  describe('mount table', () => {
    it('reads mount -p --libxo json on 14.x', async () => {
      const r = await new Rig().mounted();
      const m = await r.driver.mounts();
      assert.deepEqual(m.find((e) => e.target === `${C}/sharedfs`), { source: '/q/sharedfs', target: `${C}/sharedfs`, fstype: 'nullfs', options: ['ro'] });
      assert.deepEqual(r.take(), [MOUNT]);
    });

    it('falls back to text mount -p once on 13.x, and stays with it', async () => {
      const r = new Rig({ release: '13.2-RELEASE-p4' });
      const first = await r.driver.mounts();
      await r.driver.mounts();
      assert.deepEqual(r.take(), [MOUNT, 'mount -p', 'mount -p']);
      assert.deepEqual(first[0], { source: '/dev/ada0p2', target: '/', fstype: 'ufs', options: ['rw'] });
    });
  });

  describe('services', () => {
    const svc = (verb: string, name = 'cron') => `chroot ${C} /usr/sbin/service ${name} ${verb}`;

    it('starts through the rc script with onestart, output to a log file (daemons keep pipes open)', async () => {
      const r = await new Rig().mounted();
      await r.driver.startService(ref('web'), 'cron');
      assert.deepEqual(r.take(), [svc('onestatus'), svc('onestart')]);
      assert.deepEqual(r.host.logFiles, [`${LOG}/web.cron.log`]);
    });

    it('passes the container root as cwd and a log file only to onestart', async () => {
      const r = await new Rig().mounted();
      await r.driver.startService(ref('web'), 'cron');
      const [status, start] = r.runner.calls;
      assert.equal(status?.cwd, C);
      assert.equal(status?.logFile, undefined);
      assert.deepEqual(status?.okExitCodes, [1]);
      assert.equal(start?.logFile, `${LOG}/web.cron.log`);
    });

    it('does not start a service that already runs', async () => {
      const r = await new Rig().running();
      await r.driver.startService(ref('web'), 'cron');
      assert.deepEqual(r.take(), [svc('onestatus')]);
    });

    it('probes with onestatus: running with its pid, or not running (exit 1)', async () => {
      const r = await new Rig().running();
      assert.deepEqual(await r.driver.probeService(ref('web'), 'cron'), { running: true, pids: [2000] });
      assert.deepEqual(await r.driver.probeService(ref('web'), 'sshd'), { running: false, pids: [] });
      assert.deepEqual(r.take(), [svc('onestatus'), svc('onestatus', 'sshd')]);
    });

    it('stops with onestop once procstat shows every pid onestatus reported is rooted in the container, and not at all when it is not running', async () => {
      const r = await new Rig().running();
      await r.driver.stopService(ref('web'), 'cron');
      assert.deepEqual(r.take(), [svc('onestatus'), 'procstat -f 2000', svc('onestop')]);
      await r.driver.stopService(ref('web'), 'cron');
      assert.deepEqual(r.take(), [svc('onestatus')]);
    });

    it('reports a service without an rc script as NOT_FOUND', async () => {
      const r = await new Rig().mounted();
      await assert.rejects(r.driver.probeService(ref('web'), 'nginx'), (e: unknown) => e instanceof NotFoundError && /no rc script nginx/.test(e.message));
    });

    it('says the container is not mounted when chroot cannot find service(8)', async () => {
      const r = await new Rig().created();
      await assert.rejects(r.driver.startService(ref('web'), 'cron'), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes('chroot: /usr/sbin/service: No such file or directory') && /mounted/.test(e.message));
      assert.deepEqual(r.take(), [svc('onestatus')]);
    });

    it('points at the log file when onestart fails', async () => {
      const r = (await new Rig().mounted()).when(['chroot', C, '/usr/sbin/service', 'cron', 'onestart'], { exitCode: 1 });
      await assert.rejects(r.driver.startService(ref('web'), 'cron'), (e: unknown) =>
        e instanceof CommandFailedError && e.exitCode === 1 && e.message.includes(`output in ${LOG}/web.cron.log`));
    });
  });

  describe('hasServiceScript', () => {
    it('finds /etc/rc.d/NAME in the container (realpath, then test -f on the resolved path)', async () => {
      const r = await new Rig().created();
      assert.equal(await r.driver.hasServiceScript('web', 'cron'), true);
      assert.deepEqual(r.take(), [`realpath ${C}/etc/rc.d/cron`, `test -f ${C}/etc/rc.d/cron`]);
    });

    it('finds /usr/local/etc/rc.d/NAME (ports and packages)', async () => {
      const r = await new Rig().created();
      r.host.writeFile(`${C}/usr/local/etc/rc.d/nginx`, '#!/bin/sh\n');
      assert.equal(await r.driver.hasServiceScript('web', 'nginx'), true);
      assert.deepEqual(r.take(), [`realpath ${C}/etc/rc.d/nginx`, `realpath ${C}/usr/local/etc/rc.d/nginx`, `test -f ${C}/usr/local/etc/rc.d/nginx`]);
    });

    it('never tests a path a planted symlink resolves to outside the container', async () => {
      const r = await new Rig().created();
      r.host.writeFile('/usr/local/etc/rc.d/hostonly', '#!/bin/sh\n');
      r.host.mkdirP(`${C}/usr/local/etc`);
      r.host.symlink('/usr/local/etc/rc.d', `${C}/usr/local/etc/rc.d`);
      assert.equal(await r.driver.hasServiceScript('web', 'hostonly'), false);
      const t = r.take();
      assert.deepEqual(t, [`realpath ${C}/etc/rc.d/hostonly`, `realpath ${C}/usr/local/etc/rc.d/hostonly`]);
    });

    it('is false for a container that does not exist', async () => {
      const r = await new Rig().installed();
      assert.equal(await r.driver.hasServiceScript('gone', 'cron'), false);
    });
  });

  describe('processes', () => {
    it('finds pids whose root directory is the container (procstat -af root rows), nested chroots included', async () => {
      const r = await new Rig().running();
      const nested = r.host.spawnStray(`${C}/var/jail`);
      r.host.spawnStray(`/q/containers/webby`);
      assert.deepEqual(await r.driver.processesIn('web'), [2000, nested]);
      assert.deepEqual(r.take(), ['procstat -af']);
    });

    it('reads every container\'s processes from one procstat -af', async () => {
      const r = await new Rig().running();
      const other = r.host.spawnStray('/q/containers/db');
      const table = await r.driver.processTable();
      assert.deepEqual(r.take(), ['procstat -af']);
      assert.deepEqual(table.pidsIn('web'), [2000]);
      assert.deepEqual(table.pidsIn('db'), [other]);
      assert.deepEqual(table.pidsIn('webby'), []);
    });

    it('answers onestatus from memory while the container has the same processes, and asks again once they change', async () => {
      const r = await new Rig().running();
      const svc = `chroot ${C} /usr/sbin/service sshd onestatus`;
      await r.driver.probeService(ref('web'), 'sshd', await r.driver.processTable());
      await r.driver.probeService(ref('web'), 'sshd', await r.driver.processTable());
      assert.deepEqual(r.take(), ['procstat -af', svc, 'procstat -af'], 'same processes: asked once');
      r.host.spawnStray(C);
      await r.driver.probeService(ref('web'), 'sshd', await r.driver.processTable());
      assert.deepEqual(r.take(), ['procstat -af', svc], 'a new process: asked again');
      await r.driver.probeService(ref('web'), 'sshd');
      assert.deepEqual(r.take(), [svc], 'without a table: always asked');
    });

    it('signals with kill -SIG pid…, tolerating processes that already exited', async () => {
      const r = await new Rig().running();
      const stray = r.host.spawnStray(C);
      await r.driver.signalProcesses([2000, stray, 4242], 'SIGTERM');
      assert.deepEqual(r.take(), [`kill -TERM 2000 ${stray} 4242`]);
      assert.deepEqual(await r.driver.processesIn('web'), []);
      await r.driver.signalProcesses([], 'SIGKILL');
      assert.deepEqual(r.take(), ['procstat -af'], 'no pids: no kill');
    });

    it('refuses to signal init, process groups or odd signal names', async () => {
      const r = new Rig();
      await assert.rejects(r.driver.signalProcesses([1], 'SIGTERM'), InvalidArgumentError);
      await assert.rejects(r.driver.signalProcesses([0], 'SIGTERM'), InvalidArgumentError);
      await assert.rejects(r.driver.signalProcesses([-5], 'SIGTERM'), InvalidArgumentError);
      await assert.rejects(r.driver.signalProcesses([5], '-9' as NodeJS.Signals), InvalidArgumentError);
      assert.deepEqual(r.take(), []);
    });
  });

  describe('removeContainer and diskUsage', () => {
    it('removes a stopped container: mount check, securelevel, chflags -R -x 0, rm -rf -x', async () => {
      const r = await new Rig().created();
      await r.driver.removeContainer('web');
      assert.deepEqual(r.take(), [MOUNT, `test -e ${C}`, 'sysctl -n kern.securelevel', `chflags -R -x 0 ${C}`, `rm -rf -x ${C}`]);
      assert.equal(r.host.resolve(C)?.node, undefined);
      await r.driver.removeContainer('web');
      assert.deepEqual(r.take(), [MOUNT, `test -e ${C}`], 'already gone: nothing to do');
    });

    it('refuses at kern.securelevel >= 1 before chflags, saying why and how to lower it', async () => {
      const r = await new Rig().created();
      r.host.securelevel = 1; // raised after boot (kern_securelevel_enable); it can only go up while running
      await assert.rejects(r.driver.removeContainer('web'), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`cannot remove container web at ${C}: kern.securelevel is 1`) &&
        e.message.includes('schg flags') && e.message.includes('kern_securelevel_enable="NO"'));
      assert.deepEqual(r.take(), [MOUNT, `test -e ${C}`, 'sysctl -n kern.securelevel']);
      assert.equal(r.host.fs.get(`${C}/var/empty/.keep`)?.kind, 'file', 'nothing removed');
    });

    it('refuses while anything is mounted in it, naming the mounts, and removes nothing', async () => {
      const r = await new Rig().mounted();
      await assert.rejects(r.driver.removeContainer('web'), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`${C}/sharedfs (nullfs)`) && e.message.includes(`${C}/dev (devfs)`));
      assert.deepEqual(r.take(), [MOUNT]);
    });

    it('refuses when the table has an unparsable line mentioning the container', async () => {
      const r = new Rig({ release: '13.2-RELEASE-p4' });
      await r.created();
      r.when(['mount', '-p'], { stdout: `${r.host.mountP()}/tmp/a b\t\t${C}/x\tnullfs\tro\t\t0 0\n` });
      await assert.rejects(r.driver.removeContainer('web'), FailedPreconditionError);
      assert.deepEqual(r.take(), ['mount -p']);
    });

    it('measures with du -sxk (not crossing into sharedfs or devfs), in bytes; under nice -n 19 unless a caller waits', async () => {
      const r = await new Rig().mounted();
      const bytes = await r.driver.diskUsage('web');
      assert.deepEqual(r.take(), [`nice -n 19 du -sxk -- ${C}`]);
      assert.ok(bytes > 0 && bytes % 1024 === 0);
      assert.equal(await r.driver.diskUsage('web', { urgent: true }), bytes);
      assert.deepEqual(r.take(), [`du -sxk -- ${C}`]);
    });

    it('measures the containers asked for at once with one du, and fails only one that is gone', async () => {
      const r = await new Rig().created();
      await r.driver.createContainer('db');
      r.take();
      const D = C.replace(/web$/, 'db');
      const G = C.replace(/web$/, 'gone');
      const [web, db, gone] = await Promise.allSettled([r.driver.diskUsage('web'), r.driver.diskUsage('db'), r.driver.diskUsage('gone')]);
      assert.deepEqual(r.take(), [`nice -n 19 du -sxk -- ${C} ${D} ${G}`]);
      assert.ok(web.status === 'fulfilled' && web.value > 0 && db.status === 'fulfilled' && db.value > 0);
      assert.ok(gone.status === 'rejected' && String(gone.reason).includes(`du: ${G}: No such file or directory`), String(gone.status === 'rejected' && gone.reason));
    });
  });

  describe('resizeTerminal', () => {
    it("finds the session shell's pty with pgrep -P and procstat -f, then sets its size with stty -f", async () => {
      const runner = new FakeRunner()
        .on(['pgrep', '-P', '4242'], { stdout: '4243\n' })
        .on(['procstat', '-f', '4243'], {
          stdout: [
            '  PID COMM                FD T V FLAGS    REF  OFFSET PRO NAME',
            ' 4243 sh                text v r r-------   -       - -   /sharedfs/bin/sh',
            ' 4243 sh                   0 v c rw------   4    1024 -   /dev/pts/7',
          ].join('\n'),
        })
        .on(['stty', '-f', '/dev/pts/7']);
      const d = new FreeBSDDriver({ runner, rootDir: '/q', logDir: LOG });
      await d.resizeTerminal(4242, 50, 132);
      assert.deepEqual(runner.transcript, ['pgrep -P 4242', 'procstat -f 4243', 'stty -f /dev/pts/7 rows 50 cols 132']);
    });

    it('refuses an absurd size before running anything', async () => {
      const runner = new FakeRunner();
      const d = new FreeBSDDriver({ runner, rootDir: '/q', logDir: LOG });
      await assert.rejects(d.resizeTerminal(4242, 0, 80), /out of range/);
      assert.deepEqual(runner.transcript, []);
    });
  });

  describe('execSpec', () => {
    const d = new FreeBSDDriver({ runner: new FakeRunner(), rootDir: '/q', logDir: LOG });

    it('runs a console fed from a pipe (no tty) as chroot ROOT /bin/sh, without script(1)', () => {
      const s = d.execSpec(ref('web'), { argv: [], tty: false, console: true, env: {} });
      assert.deepEqual(s.argv, ['chroot', C, '/bin/sh']);
    });

    it('runs a command with chroot, a clean environment and the caller env on top', () => {
      assert.deepEqual(d.execSpec(ref('web'), { argv: ['/usr/bin/id', '-u'], tty: false, console: false, env: { LANG: 'C.UTF-8' } }), {
        argv: ['chroot', C, '/usr/bin/id', '-u'],
        env: { PATH: '/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin', HOME: '/root', LANG: 'C.UTF-8' },
        cwd: C,
      });
    });

    it('gives a console an interactive sh under script(1) with the qchroot prompt NAME:PATH', () => {
      const spec = d.execSpec(ref('web'), { argv: [], tty: true, console: true, env: {} });
      // The driver asks for a terminal; the runner puts script(1) in front, so what runs is the same line as before.
      assert.deepEqual(spec.argv, ['chroot', C, '/bin/sh', '-i']);
      assert.deepEqual(spec.terminal, {});
      assert.deepEqual(onTerminal(spec, 'freebsd').argv, ['script', '-q', '/dev/null', 'chroot', C, '/bin/sh', '-i']);
      assert.equal(spec.env?.PS1, 'web:\\w\\$ ');
      assert.equal(spec.env?.TERM, 'xterm');
    });

    it('passes the window size the client gave on to the runner with the terminal', () => {
      const spec = d.execSpec(ref('web'), { argv: ['top'], tty: true, console: false, env: {}, rows: 40, cols: 120 });
      assert.deepEqual(spec.terminal, { rows: 40, cols: 120 });
      assert.deepEqual(onTerminal(spec, 'freebsd').argv, ['script', '-q', '/dev/null', 'chroot', C, 'top']);
    });

    it('refuses an empty command, bad env names and bad container names', () => {
      assert.throws(() => d.execSpec(ref('web'), { argv: [], tty: false, console: false, env: {} }), InvalidArgumentError);
      assert.throws(() => d.execSpec(ref('web'), { argv: ['id'], tty: false, console: false, env: { 'A B': '1' } }), InvalidArgumentError);
      assert.throws(() => d.execSpec(ref('../etc'), { argv: ['id'], tty: false, console: false, env: {} }), InvalidArgumentError);
    });
  });

  describe('validation of everything that reaches a command line', () => {
    for (const name of ['', '123', '-rf', '../x', 'a/b', 'a b', 'web.1', 'é', 'x\n']) {
      it(`refuses the container name ${JSON.stringify(name)} without running anything`, async () => {
        const r = new Rig();
        await assert.rejects(r.driver.createContainer(name), InvalidArgumentError);
        await assert.rejects(r.driver.removeContainer(name), InvalidArgumentError);
        await assert.rejects(r.driver.mountContainer(name), InvalidArgumentError);
        assert.throws(() => r.driver.expectedMounts(name), InvalidArgumentError);
        assert.deepEqual(r.take(), []);
      });
    }

    for (const service of ['', '-x', '.hidden', 'a/b', '../../bin/sh', 'a b']) {
      it(`refuses the service name ${JSON.stringify(service)} without running anything`, async () => {
        const r = new Rig();
        await assert.rejects(r.driver.startService(ref('web'), service), InvalidArgumentError);
        await assert.rejects(r.driver.hasServiceScript('web', service), InvalidArgumentError);
        assert.deepEqual(r.take(), []);
      });
    }

    it('accepts service names rc.d really uses (dots, dashes, digits)', async () => {
      const r = await new Rig().created();
      assert.equal(await r.driver.hasServiceScript('web', 'mysql-server'), false);
      assert.equal(await r.driver.hasServiceScript('web', 'php_fpm.8'), false);
    });

    it('refuses root and log directories with whitespace or relative parts', () => {
      const runner = new FakeRunner();
      assert.throws(() => new FreeBSDDriver({ runner, rootDir: '/usr/q fleet', logDir: LOG }), InvalidArgumentError);
      assert.throws(() => new FreeBSDDriver({ runner, rootDir: 'usr/qfleet', logDir: LOG }), InvalidArgumentError);
      assert.throws(() => new FreeBSDDriver({ runner, rootDir: '/usr/qfleet/', logDir: LOG }), InvalidArgumentError);
      assert.throws(() => new FreeBSDDriver({ runner, rootDir: '/usr/qfleet', logDir: '/var/../log' }), InvalidArgumentError);
      assert.throws(() => new FreeBSDDriver({ runner, rootDir: '/usr/qfleet', logDir: LOG, fetchBaseUrl: 'file:///x' }), InvalidArgumentError);
    });
  });
});
