import { strict as assert } from 'node:assert';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../../../agent/errors.js';
import { SimulatedFreeBSD } from './simulated-host.js';
import { C, DOWNLOAD, quiet, Rig, S1 } from './rig.js';
import { sample } from './samples.js';

// Golden transcripts: the exact FreeBSD command lines each install verb runs,
// answered by the simulated host (and by overrides for the failure cases).

const DIST = 'https://download.freebsd.org/releases/amd64/amd64/14.1-RELEASE';

/** freebsd-update(8) on the staged tree, as Bastille's `update` runs it on a release (usr/local/share/bastille/update.sh). */
const FREEBSD_UPDATE = (dir: string, from: string) =>
  `freebsd-update --not-running-from-cron -b ${dir}/tree -d ${dir}/freebsd-update -f ${dir}/tree/etc/freebsd-update.conf --currently-running ${from} fetch install`;

/** Reads the tree's release, the host's userland, and patches the tree when it is behind. */
const PATCH = (dir: string) => [
  `sh ${dir}/tree/bin/freebsd-version -u`,
  'freebsd-version -u',
  `mkdir -p ${dir}/freebsd-update`,
  FREEBSD_UPDATE(dir, '14.1-RELEASE'),
  `sh ${dir}/tree/bin/freebsd-version -u`,
];

const PREPARE_DOWNLOAD = [
  'uname -r',
  'uname -m',
  'uname -p',
  'sysctl -n kern.securelevel',
  'mkdir -p /q/.staging',
  'mktemp -d /q/.staging/base.XXXXXXXX',
  `fetch -a -T 60 -o ${S1}/MANIFEST ${DIST}/MANIFEST`,
  `cat ${S1}/MANIFEST`,
  `fetch -a -T 60 -o ${S1}/base.txz ${DIST}/base.txz`,
  `sha256 -q ${S1}/base.txz`,
  `fetch -a -T 60 -o ${S1}/lib32.txz ${DIST}/lib32.txz`,
  `sha256 -q ${S1}/lib32.txz`,
  `mkdir ${S1}/tree`,
  `tar -xpf ${S1}/base.txz -C ${S1}/tree`,
  `tar -xpf ${S1}/lib32.txz -C ${S1}/tree`,
  ...PATCH(S1),
];

/** What cleaning up a staging directory runs: check mounts, the securelevel, clear flags, remove. */
const CLEANUP = (dir: string) => ['mount -p --libxo json', `test -e ${dir}`, 'sysctl -n kern.securelevel', `chflags -R -x 0 ${dir}`, `rm -rf -x ${dir}`];

describe('FreeBSDDriver install (golden transcripts)', () => {
  describe('facts', () => {
    it('asks uname for each fact separately', async () => {
      const r = new Rig();
      assert.deepEqual(await r.driver.facts(), { os: 'FreeBSD', release: '14.1-RELEASE-p5', machine: 'amd64', hostname: 'fbsd1.example.net' });
      // Then kern.racct.enable, which capabilities() (asked next by `version`) reports limits from.
      assert.deepEqual(r.take(), ['uname -s', 'uname -r', 'uname -m', 'uname -n', 'sysctl -n kern.racct.enable']);
    });

    it('refuses to run on anything but FreeBSD', async () => {
      const r = new Rig().when(['uname', '-s'], { stdout: 'Linux\n' });
      await assert.rejects(r.driver.facts(), FailedPreconditionError);
      assert.deepEqual(r.take(), ['uname -s']);
    });

    it('matches releases ignoring the -pN patch level (qchroot "same release")', () => {
      const d = new Rig().driver;
      assert.equal(d.releasesMatch('14.1-RELEASE-p5', '14.1-RELEASE'), true);
      assert.equal(d.releasesMatch('14.1-RELEASE', '14.2-RELEASE'), false);
    });
  });

  describe('prepareBase: download', () => {
    it('reads uname, fetches MANIFEST, base.txz and lib32.txz, checks each sha256, extracts, patches to the host level', async () => {
      const r = new Rig();
      const phases: string[] = [];
      const base = await r.driver.prepareBase(DOWNLOAD, (e) => phases.push(e.phase));
      assert.deepEqual(base, { stagingDir: S1, release: '14.1-RELEASE-p5' }, "the base's freebsd-version -u after freebsd-update, -pN included");
      assert.deepEqual(r.take(), PREPARE_DOWNLOAD);
      assert.deepEqual(phases, ['fetch', 'fetch', 'verify', 'fetch', 'verify', 'extract', 'extract', 'fetch']);
      assert.equal(r.host.fs.get(`${S1}/tree/usr/lib32/libc.so.7`)?.kind, 'file', 'lib32.txz is extracted into the same tree');
    });

    it('fetches no lib32.txz where MANIFEST lists none, and runs no freebsd-update when the host is at -p0', async () => {
      const r = new Rig({ release: '14.1-RELEASE', machine: 'riscv', arch: 'riscv64' });
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      assert.equal(base.release, '14.1-RELEASE');
      const t = r.take();
      assert.deepEqual(t.filter((l) => /lib32|freebsd-update/.test(l)), []);
      assert.deepEqual(t.slice(-2), [`sh ${S1}/tree/bin/freebsd-version -u`, 'freebsd-version -u']);
    });

    it('refuses a lib32.txz whose sha256 differs from MANIFEST, before extracting anything', async () => {
      const r = new Rig();
      r.host.remote.set(`${DIST}/lib32.txz`, 'tampered\n');
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.startsWith(`lib32.txz from ${DIST} has sha256 ${SimulatedFreeBSD.sha256('tampered\n')}`));
      assert.deepEqual(r.take(), [...PREPARE_DOWNLOAD.slice(0, 12), ...CLEANUP(S1)]);
    });

    it('brings the base to the newest patch freebsd-update offers, telling it the release the tree holds', async () => {
      const r = new Rig({ release: '14.1-RELEASE-p3', userland: '14.1-RELEASE-p5', latestPatch: 6 });
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      assert.equal(base.release, '14.1-RELEASE-p6');
      const update = r.runner.calls.find((c) => c.argv[0] === 'freebsd-update');
      assert.deepEqual(update?.argv, FREEBSD_UPDATE(S1, '14.1-RELEASE').split(' '));
      assert.deepEqual(update?.env, { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', PAGER: '/bin/cat' }, 'no pager waits for a key');
    });

    it("passes freebsd-update only options its usage lists, each with the argument the usage names", async () => {
      const text = sample('freebsd-update.txt');
      const usage = text.slice(text.indexOf('$ freebsd-update\n'), text.indexOf('showconfig')).split('\n');
      // "  -b basedir   -- …" and "  --currently-running release": option, then its argument unless "--" follows.
      const known = new Map<string, boolean>();
      for (const l of usage) {
        const m = /^\s+(--?[A-Za-z-]+)(?:\s+(\S+))?/.exec(l);
        if (m && m[1] !== '--') known.set(m[1]!, m[2] !== undefined && m[2] !== '--');
      }
      const commands = usage.map((l) => /^  ([a-zA-Z]+)\s+-- /.exec(l)?.[1]).filter((c): c is string => !!c);
      const argv = FREEBSD_UPDATE(S1, '14.1-RELEASE').split(' ').slice(1);
      for (let i = 0; i < argv.length; i++) {
        const a = argv[i]!;
        if (a.startsWith('-')) {
          assert.ok(known.has(a), `${a} is in the usage`);
          if (known.get(a)) i++;
        } else {
          assert.ok(commands.includes(a), `${a} is a command`);
        }
      }
      assert.deepEqual(argv.slice(-2), ['fetch', 'install']);
    });

    it('refuses, naming the fix, when freebsd-update fails, and leaves nothing', async () => {
      const r = new Rig().when(['freebsd-update'], { exitCode: 1, stdout: 'No mirrors remaining, giving up.\n' });
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), (e: unknown) =>
        e instanceof FailedPreconditionError && /from 14\.1-RELEASE to the host's 14\.1-RELEASE-p5/.test(e.message) &&
        e.message.includes('No mirrors remaining') && /install from a directory already at 14\.1-RELEASE-p5/.test(e.message));
      assert.deepEqual(r.take().slice(-5), CLEANUP(S1));
      assert.equal(r.host.resolve(S1)?.node, undefined);
    });

    it('uses uname -m and -p for the path (arm64/aarch64) and a mirror when one is given', async () => {
      const mirror = 'https://mirror.example.org/pub/FreeBSD/releases';
      const r = new Rig({ machine: 'arm64', arch: 'aarch64', mirror });
      await r.driver.prepareBase({ method: 'download', source: '', mirror: `${mirror}/` }, quiet);
      const t = r.take();
      assert.equal(t[6], `fetch -a -T 60 -o ${S1}/MANIFEST ${mirror}/arm64/aarch64/14.1-RELEASE/MANIFEST`);
      assert.equal(t[8], `fetch -a -T 60 -o ${S1}/base.txz ${mirror}/arm64/aarch64/14.1-RELEASE/base.txz`);
    });

    it('refuses a plain-http mirror before creating anything, naming https as the fix', async () => {
      const mirror = 'http://mirror.example.org/pub/FreeBSD/releases';
      const r = new Rig({ mirror });
      await assert.rejects(r.driver.prepareBase({ method: 'download', source: '', mirror }, quiet), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`refusing the plain-http mirror ${mirror}`) &&
        e.message.includes('proves nothing') && e.message.includes('use an https:// mirror') && e.message.includes(`pin the sha256 of ${mirror}/amd64/amd64/14.1-RELEASE/MANIFEST in the agent's config (freebsd_manifest_sha256)`));
      assert.deepEqual(r.take(), ['uname -r', 'uname -m', 'uname -p']);
    });

    it('accepts a plain-http mirror whose MANIFEST digest is pinned, and checks MANIFEST against it first', async () => {
      const mirror = 'http://mirror.example.org/pub/FreeBSD/releases';
      const url = `${mirror}/amd64/amd64/14.1-RELEASE/MANIFEST`;
      const host = new SimulatedFreeBSD({ mirror });
      const pin = SimulatedFreeBSD.sha256(host.remote.get(url)!);
      const r = new Rig({ mirror }, { pinnedManifests: { [url]: pin } });
      await r.driver.prepareBase({ method: 'download', source: '', mirror }, quiet);
      assert.deepEqual(r.take().slice(6, 9), [`fetch -a -T 60 -o ${S1}/MANIFEST ${url}`, `sha256 -q ${S1}/MANIFEST`, `cat ${S1}/MANIFEST`]);

      const tampered = new Rig({ mirror }, { pinnedManifests: { [url]: pin } });
      tampered.host.remote.set(url, 'base.txz\tdeadbeef\n');
      await assert.rejects(tampered.driver.prepareBase({ method: 'download', source: '', mirror }, quiet), /the digest pinned for it says/);
    });

    it('reports a release the mirror does not have ("Not Found") as NOT_FOUND and leaves nothing', async () => {
      const r = new Rig({ release: '12.1-RELEASE-p3' });
      r.host.remote.clear();
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), (e: unknown) =>
        e instanceof NotFoundError && e.message.includes('fetch: https://download.freebsd.org/releases/amd64/amd64/12.1-RELEASE/MANIFEST: Not Found'));
      assert.deepEqual(r.take(), [
        'uname -r', 'uname -m', 'uname -p', 'sysctl -n kern.securelevel', 'mkdir -p /q/.staging', 'mktemp -d /q/.staging/base.XXXXXXXX',
        `fetch -a -T 60 -o ${S1}/MANIFEST https://download.freebsd.org/releases/amd64/amd64/12.1-RELEASE/MANIFEST`,
        'mount -p --libxo json', // 12.x mount(8) has no libxo: falls back to text, once
        'mount -p',
        ...CLEANUP(S1).slice(1),
      ]);
      assert.equal(r.host.resolve(S1)?.node, undefined);
    });

    it('refuses a base.txz whose sha256 differs from MANIFEST: never extracts it, leaves nothing', async () => {
      const r = new Rig();
      r.host.remote.set(`${DIST}/base.txz`, 'tampered\n');
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), (e: unknown) =>
        e instanceof FailedPreconditionError &&
        e.message.includes(`sha256 ${SimulatedFreeBSD.sha256('tampered\n')}`) &&
        e.message.includes(`MANIFEST says ${SimulatedFreeBSD.sha256(r.host.tarball('14.1-RELEASE'))}`));
      assert.deepEqual(r.take(), [...PREPARE_DOWNLOAD.slice(0, 10), ...CLEANUP(S1)], 'nothing extracted, lib32 not even fetched');
      assert.equal(r.host.resolve(S1)?.node, undefined);
    });

    it('refuses a MANIFEST without base.txz', async () => {
      const r = new Rig();
      r.host.remote.set(`${DIST}/MANIFEST`, 'kernel.txz\tf05c0a74f101ee5638185c36003ed4d3dd6972826de6a64d91ec5cd0fdd3a0a6\t877\tkernel\t"Kernel (MANDATORY)"\ton\n');
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), /lists no base\.txz/);
      assert.deepEqual(r.take(), [...PREPARE_DOWNLOAD.slice(0, 8), ...CLEANUP(S1)]);
    });

    it('refuses at kern.securelevel >= 1 before creating anything (tar -xp could not set the schg flags, nor chflags clear them)', async () => {
      const r = new Rig({ securelevel: 2 });
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.startsWith('cannot install a base: kern.securelevel is 2'));
      assert.deepEqual(r.take(), ['uname -r', 'uname -m', 'uname -p', 'sysctl -n kern.securelevel']);
    });

    it('refuses to download for a host that is not on a -RELEASE, before creating anything', async () => {
      const r = new Rig({ release: '15.0-CURRENT' });
      await assert.rejects(r.driver.prepareBase(DOWNLOAD, quiet), (e: unknown) => e instanceof FailedPreconditionError && /only -RELEASE/.test(e.message));
      assert.deepEqual(r.take(), ['uname -r']);
    });
  });

  describe('prepareBase: tarball and directory', () => {
    it('extracts a local base.txz', async () => {
      const r = new Rig();
      r.host.writeFile('/var/tmp/base.txz', r.host.tarball('14.1-RELEASE'));
      const base = await r.driver.prepareBase({ method: 'tarball', source: '/var/tmp/base.txz', mirror: '' }, quiet);
      assert.equal(base.release, '14.1-RELEASE-p5');
      assert.deepEqual(r.take(), [
        'sysctl -n kern.securelevel', 'mkdir -p /q/.staging', 'mktemp -d /q/.staging/base.XXXXXXXX', `mkdir ${S1}/tree`,
        `tar -xpf /var/tmp/base.txz -C ${S1}/tree`, ...PATCH(S1),
      ]);
    });

    it('copies a directory tree through an archive (hard links stay links, flags kept), and patches nothing already current', async () => {
      const r = new Rig();
      r.host.populateBase('/srv/base-14.1', '14.1-RELEASE-p5');
      const base = await r.driver.prepareBase({ method: 'directory', source: '/srv/base-14.1', mirror: '' }, quiet);
      assert.equal(base.release, '14.1-RELEASE-p5');
      assert.deepEqual(r.take(), [
        'sysctl -n kern.securelevel', 'mkdir -p /q/.staging', 'mktemp -d /q/.staging/base.XXXXXXXX',
        `tar -cpf ${S1}/source.tar -C /srv/base-14.1 .`, `mkdir ${S1}/tree`, `tar -xpf ${S1}/source.tar -C ${S1}/tree`,
        `sh ${S1}/tree/bin/freebsd-version -u`, 'freebsd-version -u',
      ]);
      assert.deepEqual(r.host.fs.get(`${S1}/tree/rescue/rescue`), { kind: 'file', data: 'ELF rescue\n', schg: true });
    });

    it('refuses a tree that is not a FreeBSD base and removes the copy', async () => {
      const r = new Rig();
      r.host.mkdirP('/srv/empty');
      await assert.rejects(r.driver.prepareBase({ method: 'directory', source: '/srv/empty', mirror: '' }, quiet), /not a FreeBSD base/);
      assert.deepEqual(r.take().slice(-5), CLEANUP(S1));
    });

    it('refuses sources with whitespace and unknown methods before running anything', async () => {
      const r = new Rig();
      await assert.rejects(r.driver.prepareBase({ method: 'tarball', source: '/var/tmp/my base.txz', mirror: '' }, quiet), InvalidArgumentError);
      await assert.rejects(r.driver.prepareBase({ method: 'tarball', source: 'base.txz', mirror: '' }, quiet), InvalidArgumentError);
      await assert.rejects(r.driver.prepareBase({ method: 'debootstrap', source: 'bookworm', mirror: '' }, quiet), InvalidArgumentError);
      await assert.rejects(r.driver.prepareBase({ method: 'download', source: '', mirror: 'ftp://x y' }, quiet), InvalidArgumentError);
      assert.deepEqual(r.take().filter((l) => !l.startsWith('uname')), [], 'refused before even the securelevel is read');
    });
  });

  describe('activateBase', () => {
    const SPLIT = [
      `ls -A ${S1}/tree`,
      `ls -A ${S1}/tree/usr`,
      `mkdir -p ${S1}/sharedfs/usr`,
      ...['bin', 'boot', 'lib', 'libexec', 'rescue', 'sbin', 'usr/bin', 'usr/include', 'usr/lib', 'usr/lib32', 'usr/libdata', 'usr/libexec', 'usr/sbin', 'usr/share']
        .map((d) => `mv ${S1}/tree/${d} ${S1}/sharedfs/${d}`),
      `mv ${S1}/tree/usr/src ${S1}/unused-usr-src`,
      `mkdir -p ${S1}/sharedfs/usr/src ${S1}/sharedfs/usr/ports`,
      `mkdir ${S1}/tree/sharedfs`,
      `ln -s /sharedfs/bin /sharedfs/boot /sharedfs/lib /sharedfs/libexec /sharedfs/rescue /sharedfs/sbin ${S1}/tree`,
      `ln -s /sharedfs/usr/bin /sharedfs/usr/include /sharedfs/usr/lib /sharedfs/usr/lib32 /sharedfs/usr/libdata /sharedfs/usr/libexec /sharedfs/usr/sbin /sharedfs/usr/share /sharedfs/usr/src /sharedfs/usr/ports ${S1}/tree/usr`,
      `tar -cpf ${S1}/template.tar -C ${S1}/tree .`,
    ];

    it('splits qjail-style into sharedfs and template and swaps them in by rename', async () => {
      const r = new Rig();
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      r.take();
      const phases: string[] = [];
      assert.deepEqual(await r.driver.activateBase(base, (e) => phases.push(e.phase)), { notes: [] });
      assert.deepEqual(r.take(), [
        ...SPLIT,
        'mount -p --libxo json',
        'test -e /q/sharedfs',
        'test -e /q/template',
        'test -e /q/template.tar',
        'mkdir -p /q/containers',
        `mv ${S1}/sharedfs /q/sharedfs`,
        `mv ${S1}/tree /q/template`,
        `mv ${S1}/template.tar /q/template.tar`,
        ...CLEANUP(S1),
      ]);
      assert.deepEqual(phases, ['split', 'swap']);
      // The result: links into /sharedfs, an empty mount point, empty usr/src and usr/ports.
      const h = r.host;
      assert.deepEqual(h.fs.get('/q/template/bin'), { kind: 'link', target: '/sharedfs/bin' });
      assert.deepEqual(h.fs.get('/q/template/rescue'), { kind: 'link', target: '/sharedfs/rescue' }, 'rescue (one binary, ~150 names) is shared');
      assert.deepEqual(h.fs.get('/q/template/boot'), { kind: 'link', target: '/sharedfs/boot' });
      assert.equal(h.fs.get('/q/sharedfs/rescue/rescue')?.kind, 'file');
      assert.equal(h.fs.get('/q/template.tar')?.kind, 'file');
      assert.deepEqual(h.fs.get('/q/template/usr/ports'), { kind: 'link', target: '/sharedfs/usr/ports' });
      assert.deepEqual(h.fs.get('/q/template/sharedfs'), { kind: 'dir' });
      assert.equal(h.fs.get('/q/template/etc/rc.d/cron')?.kind, 'file');
      assert.equal(h.fs.get('/q/sharedfs/usr/sbin/service')?.kind, 'file');
      assert.equal([...h.fs.keys()].filter((k) => k.startsWith('/q/sharedfs/usr/src/') || k.startsWith('/q/sharedfs/usr/ports/')).length, 0);
      assert.equal(await r.driver.installedRelease(), '14.1-RELEASE-p5');
    });

    it('replaces an unused previous sharedfs and template and removes them (chflags, rm -x)', async () => {
      const r = await new Rig().installed();
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      const S2 = base.stagingDir;
      r.take();
      assert.deepEqual(await r.driver.activateBase(base, quiet), { notes: [] });
      assert.deepEqual(r.take().slice(-16), [
        'mount -p --libxo json',
        'test -e /q/sharedfs',
        'test -e /q/template',
        'test -e /q/template.tar',
        'mkdir -p /q/containers',
        `mv /q/sharedfs ${S2}/old-sharedfs`,
        `mv ${S2}/sharedfs /q/sharedfs`,
        `mv /q/template ${S2}/old-template`,
        `mv ${S2}/tree /q/template`,
        `mv /q/template.tar ${S2}/old-template.tar`,
        `mv ${S2}/template.tar /q/template.tar`,
        ...CLEANUP(S2),
      ]);
    });

    it('keeps a previous sharedfs that a started container still mounts, and names it in the notes', async () => {
      const r = await new Rig().mounted();
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      const S2 = base.stagingDir;
      const kept = `/q/.retired/${S2.slice(S2.lastIndexOf('/') + 1)}-sharedfs`;
      r.take();
      const { notes } = await r.driver.activateBase(base, quiet);
      assert.equal(notes.length, 1);
      assert.match(notes[0]!, new RegExp(`kept at ${kept}: still mounted at ${C}/sharedfs`));
      assert.deepEqual(r.take().slice(-13), [
        `mv /q/sharedfs ${S2}/old-sharedfs`,
        `mv ${S2}/sharedfs /q/sharedfs`,
        `mv /q/template ${S2}/old-template`,
        `mv ${S2}/tree /q/template`,
        `mv /q/template.tar ${S2}/old-template.tar`,
        `mv ${S2}/template.tar /q/template.tar`,
        'mkdir -p /q/.retired',
        `mv ${S2}/old-sharedfs ${kept}`,
        ...CLEANUP(S2),
      ]);
      // The container still sees the old tree (now at its new name).
      assert.equal(r.host.resolve(`${C}/sharedfs/usr/sbin/service`)?.store, `${kept}/usr/sbin/service`);
    });

    it('renames the old base back when a swap step fails, and leaves the staging dir for discardBase', async () => {
      const r = await new Rig().installed();
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      const S2 = base.stagingDir;
      r.take();
      r.when(['mv', `${S2}/template.tar`, '/q/template.tar'], { exitCode: 1, stderr: `mv: rename ${S2}/template.tar to /q/template.tar: No space left on device\n` });
      await assert.rejects(r.driver.activateBase(base, quiet), /No space left on device/);
      assert.deepEqual(r.take().slice(-11), [
        `mv /q/sharedfs ${S2}/old-sharedfs`,
        `mv ${S2}/sharedfs /q/sharedfs`,
        `mv /q/template ${S2}/old-template`,
        `mv ${S2}/tree /q/template`,
        `mv /q/template.tar ${S2}/old-template.tar`,
        `mv ${S2}/template.tar /q/template.tar`,
        `mv ${S2}/old-template.tar /q/template.tar`,
        `mv /q/template ${S2}/tree`,
        `mv ${S2}/old-template /q/template`,
        `mv /q/sharedfs ${S2}/sharedfs`,
        `mv ${S2}/old-sharedfs /q/sharedfs`,
      ]);
      assert.equal(await r.driver.installedRelease(), '14.1-RELEASE-p5');
      assert.equal(r.host.fs.get('/q/template/etc/rc.d/cron')?.kind, 'file');
    });

    it('refuses a staging directory it did not make', async () => {
      const r = new Rig();
      await assert.rejects(r.driver.activateBase({ stagingDir: '/etc', release: '14.1-RELEASE' }, quiet), InvalidArgumentError);
      await assert.rejects(r.driver.activateBase({ stagingDir: '/q/.staging/base.x/../..', release: '14.1-RELEASE' }, quiet), InvalidArgumentError);
      assert.deepEqual(r.take(), []);
    });
  });

  describe('discardBase and installedRelease', () => {
    it('discards a staged base: mount check, chflags, rm -x', async () => {
      const r = new Rig();
      const base = await r.driver.prepareBase(DOWNLOAD, quiet);
      r.take();
      await r.driver.discardBase(base);
      assert.deepEqual(r.take(), CLEANUP(S1));
      assert.equal(r.host.resolve(S1)?.node, undefined);
    });

    it('refuses to discard anything outside the staging area', async () => {
      const r = new Rig();
      await assert.rejects(r.driver.discardBase({ stagingDir: '/q/sharedfs', release: 'x' }), InvalidArgumentError);
      assert.deepEqual(r.take(), []);
    });

    it('reports a base behind the running kernel (version and list show it), reading uname -r once', async () => {
      // freebsd-update offered -p3 only (the host's kernel came from elsewhere, at -p5).
      const r = await new Rig({ release: '14.1-RELEASE-p5', latestPatch: 3 }).installed();
      const base = (await r.driver.installedRelease())!;
      assert.equal(base, '14.1-RELEASE-p3');
      r.take();
      assert.equal(await r.driver.baseBehind(base), "base 14.1-RELEASE-p3 is behind the running kernel 14.1-RELEASE-p5: run qfleet install to bring it to the host's patch level");
      assert.equal(await r.driver.baseBehind('14.1-RELEASE-p5'), undefined);
      assert.equal(await r.driver.baseBehind(''), undefined, 'no base, nothing to say');
      assert.deepEqual(r.take(), ['uname -r']);
    });

    it('has no release before install (one test -f), and reads sharedfs/bin/freebsd-version after', async () => {
      const r = new Rig();
      assert.equal(await r.driver.installedRelease(), undefined);
      assert.deepEqual(r.take(), ['test -f /q/sharedfs/bin/freebsd-version']);
      await r.installed();
      assert.equal(await r.driver.installedRelease(), '14.1-RELEASE-p5');
      assert.deepEqual(r.take(), ['test -f /q/sharedfs/bin/freebsd-version', 'sh /q/sharedfs/bin/freebsd-version -u']);
    });
  });
});
