import sinon from 'sinon';
import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { CommandFailedError, FailedPreconditionError, InvalidArgumentError } from '../../../../agent/errors.js';
import { isUnder, ProcessTable, type DriverClock } from '../../../../agent/drivers/host-driver.js';
import type { ContainerConfig, ContainerRef } from '../../../../agent/drivers/container-config.js';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import type { SpawnedCommand } from '../../../../agent/runner/command-runner.js';
import { BUSYBOX, pickTestPort } from '../../../support/busybox-base.js';
import { ref } from '../../../support/container-ref.js';
import { makeRealSetup, type RealSetup } from './real-harness.js';

// Proofs of isolation namespaces, for real: each assertion is something a
// chroot container lets happen (several are run against one for contrast).

const realClock: DriverClock = { now: () => new Date(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

/** A service whose daemon ignores SIGTERM, and one that double-forks away from its starter. */
const STUBBORN = `#!/bin/sh
case "$1" in
start) ( trap "" TERM; exec sleep 100000 ) </dev/null >/dev/null 2>&1 & echo started ;;
stop) echo "stop does nothing" ;;
status) exit 0 ;;
esac
`;
const DOUBLE_FORK = `#!/bin/sh
case "$1" in
start) ( setsid sh -c 'while :; do sleep 1; done' </dev/null >/dev/null 2>&1 & ) ; echo started ;;
stop) echo "stop does nothing" ;;
status) exit 0 ;;
esac
`;

describe('LinuxDriver isolation namespaces, for real @root', function () {
  this.timeout(180_000);
  let s: RealSetup;
  const d = () => s.driver;
  const root = (n: string) => s.driver.layout.containerRoot(n);
  const ns = (name: string, config: Partial<ContainerConfig> = {}) => ref(name, { isolation: 'namespaces', ...config });
  const inside = (r: ContainerRef, script: string) =>
    s.runner.run(d().execSpec(r, { argv: ['/bin/sh', '-c', script], tty: false, console: false, env: {} }));
  const hostMountsUnder = (dir: string) =>
    readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] !== undefined && isUnder(l.split(' ')[4]!, dir));
  const started: ContainerRef[] = [];
  const spawned: SpawnedCommand[] = [];

  async function upNew(r: ContainerRef): Promise<void> {
    if (!existsSync(root(r.name))) await d().createContainer(r.name);
    await d().checkConfig(r);
    started.push(r);
    await d().up(r);
  }

  before(async function () {
    s = await makeRealSetup('qf-ns-');
    if (!d().capabilities().isolation.includes('namespaces')) {
      throw new Error(`this host cannot run namespaces: ${d().capabilities().missing.join('; ')}`);
    }
    const base = await d().prepareBase({ method: 'directory', source: s.baseDir, mirror: '' }, () => undefined);
    await d().activateBase(base, () => undefined);
  });
  afterEach(async () => {
    for (const c of spawned.splice(0)) c.kill('SIGKILL');
    for (const r of started.splice(0)) {
      if (r.config.isolation === 'namespaces') await d().down(r, 0, realClock).catch(() => undefined);
      else await d().unmountContainer(r.name).catch(() => undefined);
    }
  });
  after(async () => {
    await s?.cleanup();
  });

  it('offers namespaces first, and it is the default', () => {
    const caps = d().capabilities();
    assert.deepEqual(caps.isolation, ['namespaces', 'chroot']);
    assert.equal(caps.defaultIsolation, 'namespaces');
    assert.ok(!caps.missing.some((m) => m.startsWith('namespaces:')), caps.missing.join('; '));
  });

  it('shows inside only the container: its processes, its hostname, its mounts; root inside cannot remount sharedfs, mknod or signal the host', async () => {
    const r = ns('nsview');
    const before = hostMountsUnder(root(r.name));
    await upNew(r);
    const rt = await d().runtime(r);
    assert.equal(rt.up, true);
    assert.ok(rt.initPid && rt.initPid > 1);
    const ps = (await inside(r, 'ps -o pid,comm')).stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.ok(ps.length <= 5, `only the init, its keeper and this session: ${JSON.stringify(ps)}`);
    assert.ok(ps.some(([pid]) => pid === '1'), 'its own pid 1');
    await assert.rejects(inside(r, `kill -0 ${process.pid}`), CommandFailedError, 'the agent is not visible');
    assert.equal((await inside(r, 'hostname')).stdout.trim(), 'nsview');
    const mountPoints = (await inside(r, 'cat /proc/self/mountinfo')).stdout.trim().split('\n').map((l) => l.split(' ')[4]!);
    assert.ok(mountPoints.includes('/sharedfs') && mountPoints.includes('/proc') && mountPoints.includes('/dev'), mountPoints.join(' '));
    assert.ok(!mountPoints.some((p) => p.startsWith(s.tmp) || p.startsWith('/tmp/qf-') || p === '/etc' || p.startsWith('/dev/.qfleet/old')), mountPoints.join(' '));
    await assert.rejects(inside(r, 'mount -o remount,rw /sharedfs'), CommandFailedError);
    await assert.rejects(inside(r, 'touch /sharedfs/x'), CommandFailedError);
    await assert.rejects(inside(r, 'umount /sharedfs'), CommandFailedError, 'a locked mount cannot be taken away to show what is under it');
    await assert.rejects(inside(r, 'mknod /tmp/x c 1 3'), CommandFailedError);
    await assert.rejects(inside(r, 'echo 4 > /proc/sys/kernel/printk'), CommandFailedError, 'host sysctls stay the host\'s');
    assert.equal((await inside(r, 'id -u')).stdout.trim(), '0', 'root inside');
    assert.deepEqual(hostMountsUnder(root(r.name)), before, 'nothing of it is mounted on the host');
    assert.deepEqual(before, []);
  });

  it('a chroot container, by contrast, sees and can signal the host', async () => {
    const r = ref('chview');
    await upNew(r);
    await inside(r, `kill -0 ${process.pid}`);
  });

  it('network none: only a loopback of its own, up; the host\'s ports are out of reach', async () => {
    const port = pickTestPort();
    mkdirSync(`${s.tmp}/www`, { recursive: true });
    writeFileSync(`${s.tmp}/www/index.html`, 'host\n');
    const host = s.runner.spawn({ argv: [BUSYBOX, 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', `${s.tmp}/www`] });
    spawned.push(host);
    const r = ns('nsnet', { network: 'none' });
    await upNew(r);
    const links = (await inside(r, 'busybox ip -o link')).stdout.trim().split('\n');
    assert.equal(links.length, 1, links.join('\n'));
    assert.match(links[0]!, /^1: lo: <LOOPBACK,UP/);
    await inside(r, 'busybox httpd -p 127.0.0.1:81 -h /etc && busybox wget -q -O /dev/null http://127.0.0.1:81/passwd');
    await assert.rejects(inside(r, `busybox wget -q -O /dev/null http://127.0.0.1:${port}/`), CommandFailedError);
    const c = ns('nshostnet');
    await upNew(c);
    await waitFor(() => inside(c, `busybox wget -q -O /dev/null http://127.0.0.1:${port}/`).then(() => true, () => false));
  });

  it('runs services and exec as the configured user and group, in the workdir, with the environment', async () => {
    const r = ns('nsuser', { user: 'www-data', group: 'nogroup', workdir: '/var/www', env: { GREETING: 'hello there' } });
    await upNew(r);
    const out = (await inside(r, 'echo "$(id -u):$(id -g) $(pwd) $GREETING $HOME"')).stdout.trim();
    assert.equal(out, '33:65534 /var/www hello there /var/www');
    writeFileSync(`${root(r.name)}/etc/init.d/whoami`, '#!/bin/sh\nid -u > /tmp/svc-uid\n', { mode: 0o755 });
    await d().startService(r, 'whoami');
    assert.equal(readFileSync(`${root(r.name)}/tmp/svc-uid`, 'utf8'), '33\n');
    assert.equal(statSync(`${root(r.name)}/tmp/svc-uid`).uid, 100_033, 'www-data inside is 100033 on the host under the default map');
  });

  it('opens a console on a terminal inside, its prompt naming the container, resized from the host', async () => {
    const r = ns('nscons');
    await upNew(r);
    const child = s.runner.spawn(d().execSpec(r, { argv: [], tty: true, console: true, env: { TERM: 'dumb' } }));
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdin.write('cd /etc\nhostname\n');
    await waitFor(async () => out.includes('nscons:/etc# '));
    // Resized from the host: stty on the pty the shell inside holds.
    await d().resizeTerminal(child.pid!, 33, 101);
    child.stdin.write('stty size\nexit\n');
    const res = await child.exited;
    clearTimeout(timer);
    assert.equal(res.code, 0, out);
    assert.match(out, /nscons:\/etc# /);
    assert.match(out, /^nscons\r?$/m);
    assert.match(out, /^33 101\r?$/m);
  });

  it('killall of a service in one container leaves the same service in another and on the host running', async () => {
    const [pa, pb, ph] = [pickTestPort(), pickTestPort(), pickTestPort()];
    const a = ns('kila');
    const b = ns('kilb');
    for (const [r, port] of [[a, pa], [b, pb]] as const) {
      await d().createContainer(r.name);
      writeFileSync(`${root(r.name)}/etc/qfleet-httpd.port`, `${port}\n`);
      await upNew(r);
      await d().startService(r, 'httpd');
    }
    // A host process named httpd: busybox through a link of that name.
    mkdirSync(`${s.tmp}/hostbin`, { recursive: true });
    symlinkSync(BUSYBOX, `${s.tmp}/hostbin/httpd`);
    const host = s.runner.spawn({ argv: [`${s.tmp}/hostbin/httpd`, '-f', '-p', `127.0.0.1:${ph}`, '-h', s.tmp] });
    spawned.push(host);
    const answers = async (port: number) => {
      try {
        await s.runner.run({ argv: [BUSYBOX, 'wget', '-q', '-O', '/dev/null', `http://127.0.0.1:${port}/`], timeoutMs: 5000 });
        return true;
      } catch {
        return false;
      }
    };
    assert.equal(await answers(pb), true, 'the network is the host\'s (network host)');
    await inside(a, 'busybox killall httpd');
    const deadline = Date.now() + 10_000;
    while ((await d().probeService(a, 'httpd')).running && Date.now() < deadline) await realClock.sleep(100);
    assert.equal((await d().probeService(a, 'httpd')).running, false, 'its own httpd is gone');
    assert.equal((await d().probeService(b, 'httpd')).running, true);
    assert.equal(await answers(pb), true, 'the other container still serves');
    assert.ok(host.pid && existsSync(`/proc/${host.pid}`) && readFileSync(`/proc/${host.pid}/comm`, 'utf8').trim() === 'httpd', 'the host httpd lives');
  });

  it('a List answers a running service from memory while the container\'s processes are the same, and asks its rc script again once they change', async () => {
    const r = ns('nsmemo');
    await d().createContainer(r.name);
    writeFileSync(`${root(r.name)}/etc/qfleet-httpd.port`, `${pickTestPort()}\n`);
    await upNew(r);
    await d().startService(r, 'httpd');
    // As a List hands it: a table (empty: a namespaces container's processes are read from its init).
    const table = new ProcessTable(d().layout.containersDir, []);
    assert.equal((await d().probeService(r, 'httpd', table)).running, true);
    const run = sinon.spy(s.runner, 'run');
    try {
      assert.equal((await d().probeService(r, 'httpd', table)).running, true);
      assert.equal(run.callCount, 0, 'no status script spawned while nothing changed');
      await inside(r, 'busybox killall httpd');
      run.resetHistory();
      const deadline = Date.now() + 10_000;
      while ((await d().probeService(r, 'httpd', table)).running && Date.now() < deadline) await realClock.sleep(100);
      assert.equal((await d().probeService(r, 'httpd', table)).running, false, 'the change is seen');
      assert.ok(run.callCount >= 1, 'the script was asked again');
    } finally {
      run.restore();
    }
  });

  it('stop ends a service that ignores SIGTERM, a double-forked daemon and an exec session; nothing is mounted on the host before, during or after', async () => {
    const r = ns('nsstop');
    await d().createContainer(r.name);
    writeFileSync(`${root(r.name)}/etc/init.d/stubborn`, STUBBORN, { mode: 0o755 });
    writeFileSync(`${root(r.name)}/etc/init.d/forker`, DOUBLE_FORK, { mode: 0o755 });
    assert.deepEqual(hostMountsUnder(root(r.name)), []);
    await upNew(r);
    await d().startService(r, 'stubborn');
    await d().startService(r, 'forker');
    assert.deepEqual(hostMountsUnder(root(r.name)), []);
    const init = (await d().runtime(r)).initPid!;
    const tree = descendants(init);
    assert.ok(tree.length >= 3, `keeper, stubborn sleep, forker loop: ${tree.join(' ')}`);
    const starts = new Map(tree.map((p) => [p, startOf(p)]));
    // An exec session: entered from the host with nsenter, so not the init's descendant, yet in its pid namespace.
    const session = s.runner.spawn(d().execSpec(r, { argv: ['sleep', '99999'], tty: false, console: false, env: {} }));
    spawned.push(session);
    await waitFor(async () => (await inside(r, 'ps -o args')).stdout.split('\n').some((l) => l.trim() === 'sleep 99999'));
    await d().down(r, 500, realClock);
    const ended = await Promise.race([session.exited.then(() => true), realClock.sleep(5000).then(() => false)]);
    assert.equal(ended, true, 'the exec session ended with the container');
    started.splice(started.indexOf(r), 1);
    for (const [pid, start] of [[init, startOf(init)], ...starts] as const) {
      assert.ok(start === undefined || startOf(pid) !== start, `pid ${pid} is gone`);
    }
    assert.deepEqual(await d().runtime(r), { up: false, problems: [] });
    assert.deepEqual(hostMountsUnder(root(r.name)), []);
  });

  it('maps ids: a file root makes inside is owned on the host by the mapped uid, and the tree goes back at a chroot start', async () => {
    const map = [{ inside: 0, outside: 200_000, count: 65_536 }];
    const r = ns('nsmap', { uidMap: map, gidMap: map });
    await upNew(r);
    await inside(r, 'touch /tmp/made-inside');
    const st = statSync(`${root(r.name)}/tmp/made-inside`);
    assert.equal(st.uid, 200_000);
    assert.equal(st.gid, 200_000);
    assert.equal(statSync(`${root(r.name)}/etc/passwd`).uid, 200_000, 'the container\'s own tree was re-owned');
    assert.equal(statSync(d().layout.sharedfs).uid, 0, 'sharedfs is not');
    await d().down(r, 0, realClock);
    started.splice(started.indexOf(r), 1);
    const c = ref('nsmap');
    await upNew(c);
    assert.equal(statSync(`${root(r.name)}/tmp/made-inside`).uid, 0);
    assert.equal(statSync(`${root(r.name)}/etc/passwd`).uid, 0);
  });

  it('refuses maps that give the host\'s root, and bind sources that are not directories or are the agent\'s own tree', async () => {
    await d().createContainer('nsbad');
    await assert.rejects(d().checkConfig(ns('nsbad', { uidMap: [{ inside: 0, outside: 0, count: 65_536 }] })), InvalidArgumentError);
    const bind = (source: string) => ns('nsbad', { mounts: [{ kind: 'bind', source, target: '/data', readOnly: true, sizeBytes: 0 }] });
    await assert.rejects(d().checkConfig(bind(`${s.tmp}/missing`)), FailedPreconditionError);
    await assert.rejects(d().checkConfig(bind(root('nsview'))), FailedPreconditionError);
    await assert.rejects(d().checkConfig(bind(d().layout.sharedfs)), FailedPreconditionError);
    await assert.rejects(d().checkConfig(ns('nsbad', { user: 'nosuchuser' })), FailedPreconditionError);
    await d().checkConfig(ns('nsbad', { user: 'www-data' }));
  });

  it('binds fstab mounts: read-only cannot be written, read-write can, and delete never reaches into a source', async () => {
    const ro = `${s.tmp}/bind-ro`;
    const rw = `${s.tmp}/bind-rw`;
    for (const dir of [ro, rw]) {
      mkdirSync(`${dir}/sub`, { recursive: true });
      writeFileSync(`${dir}/sub/keep`, 'precious\n');
    }
    chmodSync(rw, 0o777);
    const r = ns('nsbind', {
      mounts: [
        { kind: 'bind', source: ro, target: '/srv/ro', readOnly: true, sizeBytes: 0 },
        { kind: 'bind', source: rw, target: '/srv/rw', readOnly: false, sizeBytes: 0 },
        { kind: 'tmpfs', source: '', target: '/scratch', readOnly: false, sizeBytes: 1 << 20 },
      ],
    });
    await upNew(r);
    assert.equal((await inside(r, 'cat /srv/ro/sub/keep')).stdout, 'precious\n');
    await assert.rejects(inside(r, 'echo x > /srv/ro/new'), CommandFailedError);
    await assert.rejects(inside(r, 'mount -o remount,rw /srv/ro'), CommandFailedError);
    await inside(r, 'echo written > /srv/rw/new && echo t > /scratch/t');
    assert.equal(readFileSync(`${rw}/new`, 'utf8'), 'written\n');
    assert.deepEqual(hostMountsUnder(root(r.name)), []);
    await d().down(r, 0, realClock);
    started.splice(started.indexOf(r), 1);
    // A bind an older agent's crash left mounted on the host: delete refuses rather than walk into it.
    await s.runner.run({ argv: ['mount', '--bind', rw, `${root(r.name)}/srv/rw`] });
    try {
      await assert.rejects(d().removeContainer(r.name), FailedPreconditionError);
    } finally {
      await s.runner.run({ argv: ['umount', `${root(r.name)}/srv/rw`] });
    }
    await d().removeContainer(r.name);
    assert.equal(existsSync(root(r.name)), false);
    assert.deepEqual(readdirSync(rw).sort(), ['new', 'sub']);
    assert.equal(readFileSync(`${rw}/sub/keep`, 'utf8'), 'precious\n');
    assert.equal(readFileSync(`${ro}/sub/keep`, 'utf8'), 'precious\n');
  });

  it('keeps running when the agent that started it is killed -9', async () => {
    const r = ns('nskill9');
    await d().createContainer(r.name);
    started.push(r);
    // An agent in a process of its own, with the runner it has in production (children die with it).
    const agent = `
      const { LinuxDriver } = await import(${JSON.stringify(new URL('../../../../agent/drivers/linux/linux-driver.js', import.meta.url).href)});
      const { ExecaRunner, dieWithAgentWrapper } = await import(${JSON.stringify(new URL('../../../../agent/runner/execa-runner.js', import.meta.url).href)});
      const d = new LinuxDriver({ runner: new ExecaRunner({ wrapper: dieWithAgentWrapper() }), rootDir: ${JSON.stringify(d().layout.rootDir)}, logDir: ${JSON.stringify(`${s.tmp}/log`)} });
      await d.up(${JSON.stringify(r)});
      process.stdout.write('up' + String.fromCharCode(10));
      setInterval(() => undefined, 1000);`;
    const child = s.runner.spawn({ argv: [process.execPath, '--input-type=module', '-e', agent], timeoutMs: 60_000 });
    spawned.push(child);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('up\n')) resolve(); });
      child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
      void child.exited.then(() => reject(new Error(`the agent ended before its container was up: ${out}`)));
    });
    const before = await d().runtime(r);
    assert.equal(before.up, true);
    child.kill('SIGKILL');
    await child.exited;
    await realClock.sleep(200);
    assert.deepEqual(await d().runtime(r), before);
    assert.equal((await inside(r, 'hostname')).stdout.trim(), 'nskill9');
  });

  it('a start the agent did not finish (its init up, no pidfile yet) is found by its launcher, reported, and ended by stop or the next start', async () => {
    const r = ns('nsorphan');
    await upNew(r);
    const init = (await d().runtime(r)).initPid!;
    const ppid = Number(readFileSync(`/proc/${init}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    const pidfile = `${d().layout.rootDir}/.run/nsorphan.pid`;
    const launcher = `${d().layout.rootDir}/.run/nsorphan.launcher`;
    assert.ok(existsSync(pidfile) && !existsSync(launcher), 'a finished start leaves the pidfile only');
    // As the agent would leave it, killed between starting the init and writing its pidfile.
    rmSync(pidfile);
    writeFileSync(launcher, `${ppid} ${startOf(ppid)}\n`);
    const seen = await d().runtime(r);
    assert.equal(seen.up, false);
    assert.match(seen.problems.join(), new RegExp(`an interrupted start left its namespaces running \\(launcher pid ${ppid}\\)`));
    await d().down(r, 0, realClock);
    assert.equal(startOf(init), undefined, 'the init is gone with its launcher');
    assert.ok(!existsSync(launcher));
    assert.deepEqual(await d().runtime(r), { up: false, problems: [] });
    // The next start is a fresh one.
    await d().up(r);
    assert.equal((await d().runtime(r)).up, true);
  });

  it('after an agent restart, a new driver finds a running container, and tells one whose init was killed -9', async () => {
    const r = ns('nsrestart');
    await upNew(r);
    const again = new LinuxDriver({ runner: s.runner, rootDir: d().layout.rootDir, logDir: `${s.tmp}/log` });
    const seen = await again.runtime(r);
    assert.equal(seen.up, true);
    assert.equal(seen.initPid, (await d().runtime(r)).initPid);
    process.kill(seen.initPid!, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while ((await again.runtime(r)).up && Date.now() < deadline) await realClock.sleep(50);
    assert.deepEqual(await again.runtime(r), { up: false, problems: [`its init (pid ${seen.initPid}) is gone`] });
    await again.down(r, 0, realClock);
    assert.deepEqual(await again.runtime(r), { up: false, problems: [] });
  });
});

/** Polls `ok` (a bounded number of times) until it answers true; fails otherwise. */
async function waitFor(ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('condition not met in 5 s');
}

/** The host pids below `pid`, from /proc/PID/task/*\/children. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  let frontier = [pid];
  for (let depth = 0; depth < 32 && frontier.length; depth++) {
    const next: number[] = [];
    for (const p of frontier) {
      let tasks: string[] = [];
      try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; }
      for (const t of tasks) {
        try {
          for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) next.push(Number(c));
        } catch { /* gone */ }
      }
    }
    out.push(...next);
    frontier = next;
  }
  return out;
}

function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? undefined : f[19];
  } catch {
    return undefined;
  }
}
