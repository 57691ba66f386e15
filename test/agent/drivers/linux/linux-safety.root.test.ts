import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { CommandFailedError, FailedPreconditionError } from '../../../../agent/errors.js';
import { isUnder } from '../../../../agent/drivers/host-driver.js';
import { removeTree } from '../../../../agent/drivers/linux/safe-remove.js';
import { makeRealSetup, type RealSetup } from './real-harness.js';
import { ref } from '../../../support/container-ref.js';

/** Every path, type, mode, link target and file content below `dir`, hashed (lstat only: never follows). */
function hashTree(dir: string): string {
  const h = createHash('sha256');
  const walk = (p: string, rel: string) => {
    const st = lstatSync(p);
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.size}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) h.update(readFileSync(p));
    else if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(`${p}/${n}`, `${rel}/${n}`);
  };
  walk(dir, '.');
  return h.digest('hex');
}

/** A host directory with nested content the tests must never damage. */
function makeHostDir(path: string): string {
  mkdirSync(`${path}/sub/deeper`, { recursive: true });
  writeFileSync(`${path}/file`, 'precious\n');
  writeFileSync(`${path}/sub/deeper/data`, Buffer.alloc(8192, 7));
  symlinkSync('/etc/passwd', `${path}/sub/link`);
  return path;
}

/** What about the host's /etc and / a redirected mount would change. */
function hostSnapshot(): string {
  const mountsAt = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / \/(etc)? /.test(l)).join('\n');
  return JSON.stringify({ etc: readdirSync('/etc').sort(), etcMtime: statSync('/etc').mtimeMs, rootMtime: statSync('/').mtimeMs, mountsAt });
}

describe('LinuxDriver safety, for real @root', function () {
  this.timeout(120_000);
  let s: RealSetup;
  const d = () => s.driver;
  const root = (n: string) => s.driver.layout.containerRoot(n);
  const mountsUnder = async (r: string) => (await d().mounts()).filter((m) => isUnder(m.target, r)).map((m) => m.target);
  const inside = (n: string, script: string) => s.runner.run(d().execSpec(ref(n), { argv: ['/bin/sh', '-c', script], tty: false, console: false, env: {} }));

  before(async () => {
    s = await makeRealSetup('qf-safety-');
    const base = await d().prepareBase({ method: 'directory', source: s.baseDir, mirror: '' }, () => undefined);
    await d().activateBase(base, () => undefined);
  });
  after(async () => {
    await s?.cleanup();
  });

  describe('the split base', () => {
    it('puts binaries in sharedfs and leaves links to them, keeping merged-/usr style symlinks', () => {
      const t = d().layout.template;
      assert.equal(readlinkSync(`${t}/bin`), '/sharedfs/bin');
      assert.equal(readlinkSync(`${t}/usr/bin`), '/sharedfs/usr/bin');
      assert.equal(readlinkSync(`${t}/usr/lib`), '/sharedfs/usr/lib');
      assert.equal(readlinkSync(`${t}/lib`), 'usr/lib', 'lib -> usr/lib stays as the base had it');
      assert.ok(lstatSync(`${t}/sharedfs`).isDirectory() && readdirSync(`${t}/sharedfs`).length === 0);
      assert.ok(lstatSync(`${t}/etc/init.d/httpd`).isFile(), 'configuration stays in the template');
      assert.ok(lstatSync(`${t}/usr/local/bin`).isDirectory(), 'usr/local is not shared');
      assert.ok(lstatSync(`${d().layout.sharedfs}/bin/busybox`).isFile());
    });
  });

  describe('a mounted container', () => {
    const n = 'ro1';
    before(async () => {
      await d().createContainer(n);
      await d().mountContainer(n);
    });
    after(async () => {
      await d().unmountContainer(n).catch(() => undefined);
    });

    it('runs its binaries from sharedfs', async () => {
      assert.equal((await inside(n, 'cat /etc/hostname')).stdout, 'busybox\n');
    });

    it('cannot write into sharedfs, directly or through the /bin link', async () => {
      for (const target of ['/sharedfs/bin/x', '/bin/x', '/usr/lib/x']) {
        await assert.rejects(inside(n, `echo x > ${target}`), (e: unknown) =>
          e instanceof CommandFailedError && /read-only/i.test(e.stderr), target);
      }
      assert.equal(existsSync(`${d().layout.sharedfs}/bin/x`), false);
      await assert.rejects(inside(n, 'rm /bin/busybox'), CommandFailedError);
      assert.ok(existsSync(`${d().layout.sharedfs}/bin/busybox`));
    });

    it('has a private /dev: tmpfs, nosuid and noexec, with working null, zero and urandom', async () => {
      const dev = (await d().mounts()).find((m) => m.target === `${root(n)}/dev`);
      assert.equal(dev?.fstype, 'tmpfs');
      for (const o of ['nosuid', 'noexec', 'mode=755']) assert.ok(dev?.options.includes(o), o);
      const out = await inside(n, 'echo gone > /dev/null && head -c 4 /dev/zero | wc -c 2>/dev/null; ls /dev');
      assert.match(out.stdout, /full\nnull\nrandom\ntty\nurandom\nzero\n$/);
    });

    it('is writable where it is its own (the template copy)', async () => {
      await inside(n, 'echo mine > /etc/motd');
      assert.equal(readFileSync(`${root(n)}/etc/motd`, 'utf8'), 'mine\n');
    });

    it('opens a console whose prompt shows the container name and path (busybox ash expands \\w)', async () => {
      const child = s.runner.spawn(d().execSpec(ref(n), { argv: [], tty: true, console: true, env: { TERM: 'dumb' } }));
      let out = '';
      child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.stdin.write('cd /etc/init.d\nexit\n');
      const r = await child.exited;
      clearTimeout(timer);
      assert.equal(r.code, 0, out);
      assert.match(out, /ro1:\/# /);
      assert.match(out, /ro1:\/etc\/init\.d# /);
    });
  });

  describe('symlinks planted at mount points', () => {
    for (const [label, target] of [['/etc', '/etc'], ['/', '/'], ['..', '..']] as const) {
      for (const point of ['sharedfs', 'dev']) {
        it(`refuses ${point} -> ${label}, naming it, and mounts nothing`, async () => {
          const n = `pl${point === 'dev' ? 'd' : 's'}${label === '..' ? 'up' : label === '/' ? 'root' : 'etc'}`;
          await d().createContainer(n);
          try {
            rmSync(`${root(n)}/${point}`, { recursive: true, force: true });
            symlinkSync(target, `${root(n)}/${point}`);
            const before = hostSnapshot();
            const tableBefore = (await d().mounts()).length;
            await assert.rejects(d().mountContainer(n), (e: unknown) =>
              e instanceof FailedPreconditionError && e.message.includes(`${root(n)}/${point}`));
            assert.equal((await d().mounts()).length, tableBefore, 'nothing mounted anywhere');
            assert.deepEqual(await mountsUnder(root(n)), []);
            assert.equal(hostSnapshot(), before, 'host /etc and / untouched');
          } finally {
            await d().unmountContainer(n).catch(() => undefined);
            await d().removeContainer(n);
          }
          assert.ok(existsSync('/etc/passwd'));
        });
      }
    }
  });

  describe('removal', () => {
    it('refuses while a host directory is bind-mounted inside, and after unmount leaves it byte for byte intact', async () => {
      const n = 'rm1';
      const host = makeHostDir(`${s.tmp}/host-data`);
      const hash = hashTree(host);
      await d().createContainer(n);
      await d().mountContainer(n);
      mkdirSync(`${root(n)}/data`);
      await s.runner.run({ argv: ['mount', '--bind', host, `${root(n)}/data`] });
      await assert.rejects(d().removeContainer(n), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`${root(n)}/data`) && e.message.includes(`${root(n)}/sharedfs`));
      assert.equal(hashTree(host), hash);
      await d().unmountContainer(n);
      assert.deepEqual(await mountsUnder(root(n)), []);
      await d().removeContainer(n);
      assert.equal(existsSync(root(n)), false);
      assert.equal(hashTree(host), hash);
    });

    it('refuses, even when the mount table is not consulted, to descend into a bind mount (mount ids, not st_dev)', async () => {
      const host = makeHostDir(`${s.tmp}/host-data2`);
      const hash = hashTree(host);
      const victim = `${s.tmp}/victim`;
      mkdirSync(`${victim}/a/mnt`, { recursive: true });
      writeFileSync(`${victim}/a/before`, 'x');
      // Same filesystem as the victim, so st_dev could not tell them apart.
      await s.runner.run({ argv: ['mount', '--bind', host, `${victim}/a/mnt`] });
      try {
        assert.equal(statSync(`${victim}/a/mnt`).dev, statSync(victim).dev);
        await assert.rejects(removeTree(victim), (e: unknown) => e instanceof FailedPreconditionError && e.message.includes(`${victim}/a/mnt`));
        assert.equal(hashTree(host), hash);
      } finally {
        await s.runner.run({ argv: ['umount', `${victim}/a/mnt`] });
      }
      await removeTree(victim);
      assert.equal(hashTree(host), hash);
    });

    it('measures disk use without counting sharedfs, /dev or a bind mount of the same filesystem inside', async () => {
      const n = 'du1';
      const host = makeHostDir(`${s.tmp}/host-du`);
      writeFileSync(`${host}/big`, Buffer.alloc(2 << 20, 1));
      await d().createContainer(n);
      mkdirSync(`${root(n)}/data`);
      const stopped = await d().diskUsage(n);
      await d().mountContainer(n);
      await s.runner.run({ argv: ['mount', '--bind', host, `${root(n)}/data`] });
      try {
        assert.equal(statSync(`${root(n)}/data`).dev, statSync(root(n)).dev, 'same filesystem: only the mount table tells');
        const running = await d().diskUsage(n);
        assert.ok(Math.abs(running - stopped) < 64 * 1024, `stopped ${stopped} bytes, mounted ${running} bytes`);
      } finally {
        await s.runner.run({ argv: ['umount', `${root(n)}/data`] });
        await d().unmountContainer(n);
      }
      await d().removeContainer(n);
    });

    it('deletes a planted symlink to a host directory, not the directory', async () => {
      const n = 'rm2';
      const host = makeHostDir(`${s.tmp}/host-data3`);
      const hash = hashTree(host);
      await d().createContainer(n);
      symlinkSync(host, `${root(n)}/var/hostlink`);
      symlinkSync(host, `${root(n)}/etc/init.d`.replace('init.d', 'abs-link'));
      symlinkSync('../../../host-data3', `${root(n)}/root/rel-link`);
      await d().removeContainer(n);
      assert.equal(existsSync(root(n)), false);
      assert.equal(hashTree(host), hash);
    });

    it('refuses to unmount busy mounts quietly: the failure names them and they stay in the table', async () => {
      const n = 'busy1';
      const host = makeHostDir(`${s.tmp}/host-busy`);
      await d().createContainer(n);
      await d().mountContainer(n);
      mkdirSync(`${root(n)}/data`);
      await s.runner.run({ argv: ['mount', '--bind', host, `${root(n)}/data`] });
      const holder = s.runner.spawn({ argv: ['sleep', '60'], cwd: `${root(n)}/data` });
      try {
        await new Promise((r) => setTimeout(r, 200));
        await assert.rejects(d().unmountContainer(n), (e: unknown) =>
          e instanceof FailedPreconditionError && e.message.includes(`${root(n)}/data`));
        assert.ok((await mountsUnder(root(n))).includes(`${root(n)}/data`), 'not lazily detached');
      } finally {
        holder.kill('SIGKILL');
        await holder.exited;
      }
      await d().unmountContainer(n);
      assert.deepEqual(await mountsUnder(root(n)), []);
      await d().removeContainer(n);
    });
  });

  describe('services', () => {
    it('lets several containers serve their own port', async () => {
      const a = 'web1';
      const b = 'web2';
      await d().createContainer(a);
      await d().createContainer(b);
      writeFileSync(`${root(b)}/etc/qfleet-httpd.port`, `${s.port + 7}\n`);
      writeFileSync(`${root(b)}/var/www/index.html`, 'web2\n');
      try {
        for (const n of [a, b]) {
          await d().mountContainer(n);
          await d().startService(ref(n), 'httpd');
        }
        assert.match(await (await fetch(`http://127.0.0.1:${s.port}/`)).text(), /qfleet busybox httpd/);
        assert.equal(await (await fetch(`http://127.0.0.1:${s.port + 7}/`)).text(), 'web2\n');
        const pa = await d().processesIn(a);
        const pb = await d().processesIn(b);
        assert.equal(pa.length, 1);
        assert.equal(pb.length, 1);
        assert.notEqual(pa[0], pb[0]);
        assert.match(readFileSync(`${s.tmp}/log/${a}.log`, 'utf8'), /httpd started on port/);
      } finally {
        for (const n of [a, b]) {
          await d().stopService(ref(n), 'httpd').catch(() => undefined);
          await d().unmountContainer(n).catch(() => undefined);
        }
      }
      assert.equal((await d().probeService(ref(a), 'httpd')).running, false);
    });
  });

  describe('hostile bases and foreign mounts', () => {
    it('installs a base whose usr is a symlink to / without moving anything of the host', async () => {
      const hostile = `${s.tmp}/hostile`;
      await s.runner.run({ argv: ['cp', '-a', s.baseDir, hostile] });
      rmSync(`${hostile}/usr`, { recursive: true });
      symlinkSync('/', `${hostile}/usr`);
      const usrBin = readdirSync('/usr/bin').length;
      const staged = await d().prepareBase({ method: 'directory', source: hostile, mirror: '' }, () => undefined);
      assert.equal(readlinkSync(`${staged.stagingDir}/usr`), '/', 'copied as a link, not followed');
      await d().discardBase(staged);
      assert.equal(readdirSync('/usr/bin').length, usrBin);
      assert.ok(existsSync('/usr/bin/env'));
    });

    it('refuses to populate a /dev that something else is mounted on', async () => {
      const n = 'fdev1';
      const host = `${s.tmp}/fake-dev`;
      mkdirSync(host);
      await d().createContainer(n);
      await s.runner.run({ argv: ['mount', '--bind', host, `${root(n)}/dev`] });
      try {
        await assert.rejects(d().mountContainer(n), (e: unknown) => e instanceof FailedPreconditionError && e.message.includes(`${root(n)}/dev`));
        assert.deepEqual(readdirSync(host), [], 'no device nodes made in the foreign directory');
        assert.deepEqual(await mountsUnder(root(n)), [`${root(n)}/dev`], 'the sharedfs mount was rolled back');
      } finally {
        await d().unmountContainer(n);
      }
      await d().removeContainer(n);
    });
  });

  describe('re-install while containers run', () => {
    it('keeps the old sharedfs while containers still mount it, says so, and removes it once the last one stops', async () => {
      const names = ['old1', 'old2'];
      for (const n of names) {
        await d().createContainer(n);
        await d().mountContainer(n);
      }
      const kept = () => readdirSync(d().layout.rootDir).filter((f) => f.startsWith('sharedfs.old-'));
      try {
        const base = await d().prepareBase({ method: 'directory', source: s.baseDir, mirror: '' }, () => undefined);
        const { notes } = await d().activateBase(base, () => undefined);
        assert.equal(notes.length, 1);
        assert.ok(notes[0]!.includes(`${root('old1')}/sharedfs`), notes[0]);
        assert.equal(kept().length, 1);
        assert.equal((await inside('old1', 'cat /sharedfs/.qfleet-release')).stdout.trim(), await d().installedRelease());
        await d().unmountContainer('old1');
        assert.equal(kept().length, 1, 'old2 still mounts it');
      } finally {
        for (const n of names) await d().unmountContainer(n);
      }
      assert.deepEqual(kept(), [], 'removed once nothing mounts it');
      assert.ok(await d().installedRelease(), 'the installed sharedfs is untouched');
      for (const n of names) await d().removeContainer(n);
      const base = await d().prepareBase({ method: 'directory', source: s.baseDir, mirror: '' }, () => undefined);
      assert.deepEqual((await d().activateBase(base, () => undefined)).notes, [], 'an unused sharedfs is simply replaced');
      assert.deepEqual(readdirSync(d().layout.stagingDir), [], 'staging is left empty');
    });
  });
});
