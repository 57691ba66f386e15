import { strict as assert } from 'node:assert';
import type { DriverClock } from '../../../../agent/drivers/host-driver.js';
import { jailCreateArgv, jailName, parseJls, rctlRules, saysJailNotFound } from '../../../../agent/drivers/freebsd/jail.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../../agent/errors.js';
import { ref } from '../../../support/container-ref.js';
import { C, Rig } from './rig.js';
import { block, sample } from './samples.js';

// Golden transcripts of jail mode (jail(8), jls(8), jexec(8), rctl(8), pgrep/pkill -j), on the
// simulated host, and the jls parser on real captures (test/fixtures/freebsd/jls-libxo-json.txt).

const MIB = 1024 * 1024;
const JAIL = ref('web', { isolation: 'jail' });
const LIMITED = ref('web', { isolation: 'jail', limits: { memoryBytes: 512 * MIB, cpus: 1.5, pids: 256 } });
const JLS = 'jls --libxo json -v';
const MOUNT = 'mount -p --libxo json';
const JAIL_C = `jail -c name=qfleet_web path=${C} host.hostname=web persist ip4=inherit ip6=inherit mount.devfs devfs_ruleset=4 enforce_statfs=2 children.max=0`;
const jexec = (verb: string, svc = 'cron') => `jexec -l qfleet_web /usr/sbin/service ${svc} ${verb}`;
/** Before jail -c: what mountForJail reads and mounts (sharedfs only: jail(8) mounts devfs). */
const MOUNT_FOR_JAIL = [
  `test -d ${C}`, MOUNT, `realpath ${C}/sharedfs`, `realpath ${C}/dev`, 'devfs rule showsets', 'uname -r',
  `mount_nullfs -o ro,nocover,emptydir /q/sharedfs ${C}/sharedfs`, MOUNT,
];

/** A clock that advances only when slept on, so a grace period passes without waiting. */
function fakeClock(): DriverClock & { slept: number } {
  let t = 0;
  const c = { slept: 0, now: () => new Date(t), sleep: async (ms: number) => { t += ms; c.slept += ms; } };
  return c;
}

const unsupported = (field: string, text: RegExp) => (e: unknown) =>
  e instanceof FailedPreconditionError && e.reason === 'unsupported' && e.fields.field === field && text.test(e.message);

describe('FreeBSD jails', () => {
  describe('parseJls on real jls --libxo json output', () => {
    const text = sample('jls-libxo-json.txt');

    it('reads jid, name, path and state from jls -v (envelope "2", a jail named by its jid)', () => {
      const [line] = block(text, 'jls --libxo json -v -j 83');
      assert.deepEqual(parseJls(line!), [{ jid: 83, name: '83', path: '/zroot/kleene_basejail', hostname: '', state: 'ACTIVE' }]);
    });

    it('reads the 2017 jls (envelope "1") the same way', () => {
      const [line] = block(text, 'jls --libxo=json (FreeBSD 11.x');
      assert.deepEqual(parseJls(line!), [{ jid: 1, name: 'irc', path: '/usr/jails/irc', hostname: 'irc', state: 'ACTIVE' }]);
    });

    it('skips rows without a jid (the parameter form without jid) rather than inventing one', () => {
      const [line] = block(text, 'jls -j jail1 --libxo json name meta');
      assert.deepEqual(parseJls(line!), []);
    });

    it('reads an empty list as no jails, and anything else as not a jls document', () => {
      const [line] = block(text, 'on a host with no jails');
      assert.deepEqual(parseJls(line!), []);
      assert.equal(parseJls('jls: unknown parameter: x\n'), undefined);
      assert.equal(parseJls('{"mount":{"fstab":[]}}'), undefined);
    });

    it('recognises libjail\'s "not found"', () => {
      assert.equal(saysJailNotFound(block(text, 'no such jail')[0]!), true);
      assert.equal(saysJailNotFound('jail: qfleet_web: already exists'), false);
    });
  });

  describe('names and command lines', () => {
    it('names a jail qfleet_<container>: never an operator\'s jail name by accident, never all digits, no dots', () => {
      assert.equal(jailName('web'), 'qfleet_web');
      assert.equal(jailName('123-a'), 'qfleet_123-a');
      assert.throws(() => jailName('a.b'), InvalidArgumentError);
      assert.throws(() => jailName('42'), InvalidArgumentError);
    });

    it('creates with qjail\'s parameters; network none disables IPv4 and IPv6; securelevel and hostname when asked', () => {
      assert.deepEqual(jailCreateArgv(JAIL, C, 4).join(' '), JAIL_C);
      const none = ref('web', { isolation: 'jail', network: 'none', hostname: 'www.example.org', securelevel: 3 });
      assert.equal(
        jailCreateArgv(none, C, 5).join(' '),
        `jail -c name=qfleet_web path=${C} host.hostname=www.example.org persist ip4=disable ip6=disable mount.devfs devfs_ruleset=5 enforce_statfs=2 children.max=0 securelevel=3`,
      );
    });

    it('writes rctl rules in rctl(8)\'s units: bytes, percent of one core, processes', () => {
      assert.deepEqual(rctlRules('web', LIMITED.config.limits), [
        'jail:qfleet_web:memoryuse:deny=536870912', 'jail:qfleet_web:pcpu:deny=150', 'jail:qfleet_web:maxproc:deny=256',
      ]);
      assert.deepEqual(rctlRules('web', { memoryBytes: 0, cpus: 0.25, pids: 0 }), ['jail:qfleet_web:pcpu:deny=25']);
      assert.deepEqual(rctlRules('web', { memoryBytes: 0, cpus: 0, pids: 0 }), []);
    });
  });

  describe('capabilities', () => {
    it('offers jail (the default) and chroot, and limits once kern.racct.enable reads 1', async () => {
      const r = new Rig({ racct: 1 });
      await r.driver.facts();
      const caps = r.driver.capabilities();
      assert.deepEqual([caps.isolation, caps.defaultIsolation, caps.limits, caps.missing], [['jail', 'chroot'], 'jail', { memory: true, cpu: true, pids: true }, []]);
      assert.deepEqual(r.take().filter((l) => l.startsWith('sysctl')), ['sysctl -n kern.racct.enable'], 'read once');
    });

    it('says why limits are missing when kern.racct.enable is 0, and when the kernel has no RACCT', async () => {
      const off = new Rig({ racct: 0 });
      await off.driver.facts();
      assert.deepEqual(off.driver.capabilities().limits, { memory: false, cpu: false, pids: false });
      assert.ok(off.driver.capabilities().missing.includes('limit memory: kern.racct.enable is 0 (set kern.racct.enable=1 in /boot/loader.conf and reboot)'));
      const absent = new Rig({ racct: 'absent' });
      await absent.driver.facts();
      assert.match(absent.driver.capabilities().missing.join('\n'), /^limit pids: kern\.racct\.enable is not there \(sysctl: unknown oid 'kern\.racct\.enable'\)/m);
    });
  });

  describe('checkConfig', () => {
    it('refuses uid/gid maps: a Linux user namespace', async () => {
      const r = await new Rig().created();
      await assert.rejects(r.driver.checkConfig(ref('web', { isolation: 'jail', uidMap: [{ inside: 0, outside: 100000, count: 65536 }] })), unsupported('uid_map', /Linux user namespaces/));
    });

    it('refuses user, group, env and workdir: rc scripts run as root from service(8), rc.conf has NAME_user etc.', async () => {
      const r = await new Rig().created();
      await assert.rejects(r.driver.checkConfig(ref('web', { isolation: 'jail', user: 'www' })), unsupported('user', /NAME_user/));
      await assert.rejects(r.driver.checkConfig(ref('web', { isolation: 'jail', env: { A: '1' } })), unsupported('env', /NAME_env/));
      await assert.rejects(r.driver.checkConfig(ref('web', { workdir: '/srv' })), unsupported('workdir', /NAME_chdir/));
    });

    it('refuses limits in chroot mode even where rctl works: FreeBSD limits no chroot', async () => {
      const r = new Rig({ racct: 1 });
      await assert.rejects(r.driver.checkConfig(ref('web', { limits: { memoryBytes: MIB, cpus: 0, pids: 0 } })), unsupported('limits', /enforces no limits on a chroot/));
      await assert.rejects(r.driver.checkConfig(ref('web', { network: 'none' })), unsupported('network', /needs isolation jail/));
      assert.deepEqual(r.take(), [], 'refused before any command');
    });

    it('refuses jail limits where kern.racct.enable is 0, saying how to enable it', async () => {
      const r = new Rig({ racct: 0 });
      await assert.rejects(r.driver.checkConfig(LIMITED), (e: unknown) =>
        e instanceof FailedPreconditionError && e.reason === 'unsupported' && /set kern\.racct\.enable=1 in \/boot\/loader\.conf and reboot/.test(e.message));
      assert.deepEqual(r.take(), ['sysctl -n kern.racct.enable']);
    });

    it('refuses a bind source that is not a directory on the host', async () => {
      const r = await new Rig().created();
      const bad = ref('web', { isolation: 'jail', mounts: [{ kind: 'bind', source: '/srv/nothere', target: '/data', readOnly: true, sizeBytes: 0 }] });
      await assert.rejects(r.driver.checkConfig(bad), /bind source \/srv\/nothere is not a directory/);
    });
  });

  describe('up', () => {
    it('mounts sharedfs, then jail -c (which mounts devfs with the ruleset); no rctl where racct is off', async () => {
      const r = await new Rig().created();
      await r.driver.up(JAIL);
      // kern.racct.enable is read (once) after jail -c: only where it is 1 can the jail have rules to clear.
      assert.deepEqual(r.take(), [JLS, ...MOUNT_FOR_JAIL, JAIL_C, 'sysctl -n kern.racct.enable']);
      assert.deepEqual(r.host.jails.map((j) => [j.jid, j.name, j.path, j.hostname]), [[1, 'qfleet_web', C, 'web']]);
      assert.equal(r.host.mountList.find((m) => m.target === `${C}/dev`)?.ruleset, 4, 'jail(8) mounted devfs with ruleset 4');
    });

    it('clears the jail\'s old rctl rules, then adds one per limit', async () => {
      const r = await new Rig({ racct: 1 }).created();
      await r.driver.up(LIMITED);
      assert.deepEqual(r.take(), [
        'sysctl -n kern.racct.enable', JLS, ...MOUNT_FOR_JAIL, JAIL_C,
        'rctl -r jail:qfleet_web',
        'rctl -a jail:qfleet_web:memoryuse:deny=536870912', 'rctl -a jail:qfleet_web:pcpu:deny=150', 'rctl -a jail:qfleet_web:maxproc:deny=256',
      ]);
      assert.deepEqual(r.host.rctl.length, 3);
    });

    it('leaves a jail that is already up as it is', async () => {
      const r = await new Rig().created();
      await r.driver.up(JAIL);
      r.take();
      await r.driver.up(JAIL);
      assert.deepEqual(r.take(), [JLS]);
    });

    it('refuses a jail of its name at another path (another agent\'s or the operator\'s), touching nothing', async () => {
      const r = await new Rig().created();
      r.host.jails.push({ jid: 7, name: 'qfleet_web', path: '/usr/jails/web', hostname: 'web', params: [] });
      await assert.rejects(r.driver.up(JAIL), (e: unknown) => e instanceof FailedPreconditionError && /runs at \/usr\/jails\/web, not at \/q\/containers\/web/.test(e.message));
      assert.deepEqual(r.take(), [JLS], 'refused after one jls');
      await assert.rejects(r.driver.down(JAIL, 1000, fakeClock()), /not this container's/);
      assert.equal(r.host.jails.length, 1, 'its jail is still there');
    });

    it('mounts the fstab\'s nullfs binds (ro/rw) and tmpfs (with a size) before jail -c, shallowest first', async () => {
      const r = await new Rig().created();
      r.host.mkdirP('/srv/www/cache');
      r.host.mkdirP(`${C}/data`);
      const withMounts = ref('web', {
        isolation: 'jail',
        mounts: [
          { kind: 'tmpfs', source: '', target: '/data/cache', readOnly: false, sizeBytes: 64 * MIB },
          { kind: 'bind', source: '/srv/www', target: '/data', readOnly: true, sizeBytes: 0 },
        ],
      });
      await r.driver.up(withMounts);
      const t = r.take();
      assert.deepEqual(t.slice(t.indexOf(`mount_nullfs -o ro,nocover,emptydir /q/sharedfs ${C}/sharedfs`)), [
        `mount_nullfs -o ro,nocover,emptydir /q/sharedfs ${C}/sharedfs`,
        `mount_nullfs -o ro /srv/www ${C}/data`,
        // /data/cache is now /srv/www/cache: checked only once /data is mounted.
        `realpath ${C}/data/cache`,
        `mount -t tmpfs -o rw,size=67108864 tmpfs ${C}/data/cache`,
        MOUNT, JAIL_C, 'sysctl -n kern.racct.enable',
      ]);
      assert.ok(t.indexOf(`realpath ${C}/data`) < t.indexOf(`mount_nullfs -o ro,nocover,emptydir /q/sharedfs ${C}/sharedfs`), 'checked before the first mount');
    });

    it('refuses an fstab target missing in the container before mounting anything', async () => {
      const r = await new Rig().created();
      r.host.mkdirP('/srv/www');
      const missing = ref('web', { isolation: 'jail', mounts: [{ kind: 'bind', source: '/srv/www', target: '/nothere', readOnly: false, sizeBytes: 0 }] });
      await assert.rejects(r.driver.up(missing), /mount point \/q\/containers\/web\/nothere is missing/);
      assert.deepEqual(r.host.mountedUnder(C), []);
    });
  });

  describe('services, exec and console', () => {
    it('runs rc scripts with jexec -l JAIL /usr/sbin/service (what service -j runs)', async () => {
      const r = await new Rig().created();
      await r.driver.up(JAIL);
      r.take();
      await r.driver.startService(JAIL, 'cron');
      assert.deepEqual(r.take(), [jexec('onestatus'), jexec('onestart')]);
      assert.deepEqual((await r.driver.probeService(JAIL, 'cron')).running, true);
      assert.equal(r.host.procs.find((p) => p.comm === 'cron')?.jid, 1);
      r.take();
      await r.driver.stopService(JAIL, 'cron');
      assert.deepEqual(r.take(), [jexec('onestatus'), jexec('onestop')]);
    });

    it('answers "not running" for a jail that is gone (jexec: jail not found)', async () => {
      const r = await new Rig().created();
      assert.deepEqual(await r.driver.probeService(JAIL, 'cron'), { running: false, pids: [] });
      assert.deepEqual(r.take(), [jexec('onestatus')]);
    });

    it('execs and opens the console with jexec -l, adding the environment inside with env(1)', async () => {
      const r = await new Rig().created();
      const spec = r.driver.execSpec(JAIL, { argv: [], tty: true, console: true, env: { LANG: 'C.UTF-8' } });
      assert.deepEqual(spec.argv, [
        'jexec', '-l', 'qfleet_web', '/usr/bin/env',
        'PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin', 'LANG=C.UTF-8', 'PS1=web:\\w\\$ ', '/bin/sh', '-i',
      ]);
      assert.deepEqual(spec.env, { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', TERM: 'xterm' }, 'jexec -l keeps TERM only');
      assert.ok(spec.terminal);
      assert.deepEqual(r.driver.execSpec(JAIL, { argv: ['ls', '-l'], tty: false, console: false, env: {} }).argv.slice(-2), ['ls', '-l']);
      assert.throws(() => r.driver.execSpec(JAIL, { argv: ['A=1'], tty: false, console: false, env: {} }), InvalidArgumentError);
    });
  });

  describe('down', () => {
    it('TERMs the jail\'s processes, removes the jail (jail -R), clears rctl rules and unmounts', async () => {
      const clock = fakeClock();
      const r = await new Rig({ racct: 1 }).created();
      await r.driver.up(LIMITED);
      await r.driver.startService(LIMITED, 'cron');
      r.take();
      await r.driver.down(LIMITED, 10_000, clock);
      assert.deepEqual(r.take(), [
        JLS, 'pgrep -j 1', 'pkill -TERM -j 1', 'pgrep -j 1', 'jail -R qfleet_web', 'pgrep -j 1',
        'rctl -r jail:qfleet_web', MOUNT, `umount ${C}/dev`, `umount ${C}/sharedfs`, MOUNT,
      ]);
      assert.deepEqual([r.host.jails, r.host.rctl, r.host.mountedUnder(C)], [[], [], []]);
      assert.equal(clock.slept, 0, 'nothing to wait for');
    });

    it('waits out the grace on the clock for a process that ignores SIGTERM, then jail_remove kills it', async () => {
      const clock = fakeClock();
      const warned: unknown[] = [];
      const r = await new Rig({}, { warn: (m, f) => warned.push({ m, f }) }).created();
      await r.driver.up(JAIL);
      const stubborn = r.host.spawnStray(C, 'stubborn', { jid: 1, ignoresTerm: true });
      r.take();
      await r.driver.down(JAIL, 1000, clock);
      const t = r.take();
      assert.deepEqual(t.slice(0, 3), [JLS, 'pgrep -j 1', 'pkill -TERM -j 1']);
      assert.ok(clock.slept >= 1000, 'the whole grace period passed on the clock');
      assert.ok(t.indexOf('jail -R qfleet_web') > t.lastIndexOf('pkill -TERM -j 1'));
      assert.equal(r.host.procs.some((p) => p.pid === stubborn), false);
      assert.equal(warned.length, 1);
    });

    it('is idempotent: a jail already gone only unmounts what is left (and its rules where rctl works)', async () => {
      const r = await new Rig().created();
      await r.driver.down(JAIL, 1000, fakeClock());
      assert.deepEqual(r.take(), [JLS, 'sysctl -n kern.racct.enable', MOUNT]);
      const on = await new Rig({ racct: 1 }).created();
      await on.driver.down(JAIL, 1000, fakeClock());
      await on.driver.down(JAIL, 1000, fakeClock());
      // The second rctl -r matches nothing: rctl says "No such process" (ESRCH), which is fine.
      assert.deepEqual(on.take(), [JLS, 'sysctl -n kern.racct.enable', 'rctl -r jail:qfleet_web', MOUNT, JLS, 'rctl -r jail:qfleet_web', MOUNT]);
    });
  });

  describe('what rctl and jail(8) answer (test/fixtures/freebsd)', () => {
    it('takes rctl\'s ESRCH for a filter that matched nothing, and a jail that went away during down, as done', async () => {
      const esrch = block(sample('rctl-racct.txt'), 'rctl -r jail:qfleet_web when no rule matches')[0]!;
      const gone = block(sample('jls-libxo-json.txt'), 'no such jail')[0]!.replace(/^jls:/, 'jail:');
      const r = await new Rig({ racct: 1 }).created();
      await r.driver.up(JAIL);
      r.take();
      r.when(['rctl', '-r'], { stderr: `${esrch}\n`, exitCode: 1 }).when(['jail', '-R'], { stderr: `${gone}\n`, exitCode: 1 });
      await r.driver.down(JAIL, 1000, fakeClock());
      assert.ok(r.take().includes('jail -R qfleet_web'));
    });

    it('fails on any other rctl error, saying what rctl said', async () => {
      const disabled = block(sample('rctl-racct.txt'), 'with kern.racct.enable=0')[0]!;
      const r = await new Rig({ racct: 1 }).created();
      r.when(['rctl', '-r'], { stderr: `${disabled}\n`, exitCode: 1 });
      await assert.rejects(r.driver.up(LIMITED), /RACCT\/RCTL present, but disabled/);
    });

    it('reads kern.racct.enable as sysctl -n prints it on a GENERIC kernel', async () => {
      const value = block(sample('rctl-racct.txt'), 'sysctl -n kern.racct.enable, GENERIC kernel')[0]!;
      const r = new Rig({ racct: 1 }).when(['sysctl', '-n', 'kern.racct.enable'], { stdout: `${value}\n` });
      await r.driver.facts();
      assert.deepEqual(r.driver.capabilities().limits, { memory: false, cpu: false, pids: false });
    });
  });

  describe('runtime', () => {
    it('is up with its jid while the jail runs, down when it does not; no process scan', async () => {
      const r = await new Rig().created();
      assert.deepEqual(await r.driver.runtime(JAIL), { up: false, problems: [] });
      await r.driver.up(JAIL);
      r.take();
      assert.deepEqual(await r.driver.runtime(JAIL), { up: true, problems: [], jid: 1 });
      assert.deepEqual(r.take(), [JLS, MOUNT]);
    });

    it('names the mounts the jail needs that are missing', async () => {
      const r = await new Rig().created();
      await r.driver.up(JAIL);
      r.host.mountList.splice(r.host.mountList.findIndex((m) => m.target === `${C}/sharedfs`), 1);
      assert.deepEqual(await r.driver.runtime(JAIL), { up: true, problems: [`${C}/sharedfs is not mounted`], jid: 1 });
    });

    it('is not for chroot containers', async () => {
      const r = new Rig();
      await assert.rejects(r.driver.runtime(ref('web')), /isolated/);
      await assert.rejects(r.driver.down(ref('web'), 0, fakeClock()), /isolated/);
      assert.deepEqual(r.take(), []);
    });
  });

  describe('chroot rc stop never signals a process outside the container', () => {
    it('with a same-named process on the host, does not run onestop: TERMs only the container\'s pid', async () => {
      const warned: { m: string; f: Record<string, unknown> }[] = [];
      // cron's script here keeps no pidfile: rc.subr matches "cron" in jail 0, the host's cron included.
      const r = await new Rig({ noPidfile: ['cron'] }, { warn: (m, f) => warned.push({ m, f }), clock: fakeClock() }).running();
      const hostCron = r.host.spawnStray('/', 'cron');
      const mine = r.host.procs.find((p) => p.root === C && p.comm === 'cron')!.pid;
      await r.driver.stopService(ref('web'), 'cron');
      assert.deepEqual(r.take(), [
        `chroot ${C} /usr/sbin/service cron onestatus`,
        `procstat -f ${mine} ${hostCron}`,
        `kill -TERM ${mine}`,
        `procstat -f ${mine}`,
      ]);
      assert.ok(r.host.procs.some((p) => p.pid === hostCron), 'the host\'s cron still runs');
      assert.ok(!r.host.procs.some((p) => p.pid === mine), 'the container\'s cron is stopped');
      assert.match(warned[0]!.m, /not running the rc stop/);
      assert.deepEqual(warned[0]!.f.outside, [`${hostCron} (root /)`]);
    });

    it('the same script without the filter would have stopped the host\'s cron (the model is faithful to rc.subr)', async () => {
      const r = await new Rig({ noPidfile: ['cron'] }).running();
      const hostCron = r.host.spawnStray('/', 'cron');
      await r.runner.run({ argv: ['chroot', C, '/usr/sbin/service', 'cron', 'onestop'] });
      assert.ok(!r.host.procs.some((p) => p.pid === hostCron));
    });

    it('KILLs a container pid that outlives SIGTERM past the service grace', async () => {
      const clock = fakeClock();
      const r = await new Rig({ noPidfile: ['cron'] }, { clock, serviceGraceMs: 500 }).mounted();
      const mine = r.host.spawnStray(C, 'cron', { ignoresTerm: true });
      r.host.spawnStray('/', 'cron');
      r.take();
      await r.driver.stopService(ref('web'), 'cron');
      const t = r.take();
      assert.equal(t[2], `kill -TERM ${mine}`);
      assert.equal(t[t.length - 1], `kill -KILL ${mine}`);
      assert.ok(clock.slept >= 500);
    });
  });
});
