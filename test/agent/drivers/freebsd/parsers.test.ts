import { strict as assert } from 'node:assert';
import { parseManifest } from '../../../../agent/drivers/freebsd/manifest.js';
import { parseMdconfigList } from '../../../../agent/drivers/freebsd/mdconfig.js';
import { parseMountLibxo, parseMountP } from '../../../../agent/drivers/freebsd/mount-table.js';
import { parseDevfsShowsets, parseOnestatus, parseSha256q, parseSysctlInt } from '../../../../agent/drivers/freebsd/outputs.js';
import { parseDuLines } from '../../../../agent/drivers/du-batches.js';
import { parseProcstatFiles, pidsRootedAt } from '../../../../agent/drivers/freebsd/procstat.js';
import { baseBehindKernel, parseFreebsdVersionKru, parseRelease, parseUnameA, stripPatchLevel } from '../../../../agent/drivers/freebsd/release.js';
import { putfsent } from './putfsent.js';
import { block, sample } from './samples.js';

// Every fixture here is a real capture from test/fixtures/freebsd (each file
// records its source and confidence); reconstructed ones are said to be so.

describe('FreeBSD output parsers (real captures)', () => {
  describe('MANIFEST', () => {
    it('reads the 14.1 amd64 MANIFEST: base.txz with its sha256, file count and description', () => {
      const m = parseManifest(sample('MANIFEST-14.1-RELEASE-amd64.txt'));
      assert.equal(m.length, 9, 'the header comments of the sample file are skipped');
      const base = m.find((e) => e.file === 'base.txz');
      assert.deepEqual(base, {
        file: 'base.txz',
        sha256: 'bb451694e8435e646b5ff7ddc5e94d5c6c9649f125837a34b2a2dd419732f347',
        nfiles: 29832,
        dist: 'base',
        description: 'Base system (MANDATORY)',
        selected: true,
      });
      assert.equal(m.find((e) => e.file === 'base-dbg.txz')?.selected, false);
    });

    for (const [file, sha] of [
      ['MANIFEST-13.2-RELEASE-amd64.txt', '3a9250f7afd730bbe274691859756948b3c57a99bcda30d65d46ae30025906f0'],
      ['MANIFEST-14.1-RELEASE-arm64.txt', 'b25830252e0dce0161004a5b69a159cbbd92d5e92ae362b06158dbb3f2568d32'],
      ['MANIFEST-14.2-RELEASE-amd64.txt', 'e3971a3d4f36ed1ac67d2e7a5501726de79dd3695aa76bfad2a4ebe91a88a134'],
    ] as const) {
      it(`finds base.txz in ${file}`, () => {
        const m = parseManifest(sample(file));
        assert.equal(m.length, 9);
        assert.equal(m.find((e) => e.file === 'base.txz')?.sha256, sha);
        assert.ok(m.every((e) => /^[0-9a-f]{64}$/.test(e.sha256) && e.nfiles > 0));
      });
    }

    for (const [file, sha] of [
      ['MANIFEST-14.1-RELEASE-amd64.txt', '238972769de2ce2d432edc9b56c9870e021905497eb7a11945b48726e714b477'],
      ['MANIFEST-14.1-RELEASE-arm64.txt', 'ea7456d83d41ddeb21569e297d330b401bc6766937f760f2549fddf49bcfe66a'],
      ['MANIFEST-13.2-RELEASE-amd64.txt', 'c6f2d6958a33fbd190cc3d5e9b1c6b0f89d898083f3e511a1894e22147e4b99e'],
    ] as const) {
      it(`finds lib32.txz, apart from lib32-dbg.txz, in ${file}`, () => {
        const m = parseManifest(sample(file));
        assert.equal(m.find((e) => e.file === 'lib32.txz')?.sha256, sha);
        assert.equal(m.find((e) => e.file === 'lib32.txz')?.dist, 'lib32');
        assert.equal(m.find((e) => e.file === 'lib32-dbg.txz')?.selected, false);
      });
    }

    it('skips lines that are not six TAB-separated fields instead of misreading them', () => {
      const m = parseManifest('base.txz  abc  1  base  "x"  on\nbase.txz\tnot-a-sha\t1\tbase\t"x"\ton\n');
      assert.deepEqual(m, []);
    });
  });

  describe('mount -p', () => {
    const text = sample('mount-p.txt');

    it('splits the TAB-padded 14.4 lines (A) and their space-expanded copy identically', () => {
      const tabs = parseMountP(block(text, '# A-reconstructed').join('\n'));
      const spaces = parseMountP(block(text, 'Verbatim text:').join('\n'));
      assert.deepEqual(tabs.entries, spaces.entries);
      assert.deepEqual(tabs.unparsable, []);
      assert.deepEqual(tabs.entries, [
        { source: '/dev/mirror/root', target: '/', fstype: 'ufs', options: ['rw'] },
        { source: 'devfs', target: '/dev', fstype: 'devfs', options: ['rw'] },
        { source: 'procfs', target: '/proc', fstype: 'procfs', options: ['rw'] },
        { source: 'fdescfs', target: '/dev/fd', fstype: 'fdescfs', options: ['rw'] },
      ]);
    });

    it('splits a 24+ char device followed by ONE space (zfs, C) and the TAB-reconstructed block alike', () => {
      const spaces = parseMountP(block(text, 'byte-for-byte.').join('\n'));
      const tabs = parseMountP(block(text, '# C-reconstructed').join('\n'));
      assert.equal(spaces.entries.length, 13);
      assert.deepEqual(tabs, spaces);
      assert.deepEqual(spaces.entries[0], { source: 'zroot/ROOT/nomadbsd-1.3.1', target: '/', fstype: 'zfs', options: ['rw', 'noatime', 'nfsv4acls'] });
      assert.deepEqual(spaces.entries[5]?.options, ['rw', 'noexec', 'nosuid', 'noatime', 'nfsv4acls']);
    });

    it('reads nullfs ro mounts whose 24+ char mount points are followed by one space (B)', () => {
      const t = parseMountP(block(text, 'field order/values are verbatim').join('\n'));
      assert.deepEqual(t.unparsable, []);
      const nullfs = t.entries.filter((e) => e.fstype === 'nullfs');
      assert.equal(nullfs.length, 14);
      assert.deepEqual(nullfs[2], { source: '/libexec', target: '/home/mkushnir/my-test-chroot/libexec', fstype: 'nullfs', options: ['ro'] });
      assert.deepEqual(t.entries.at(-1), { source: 'devfs', target: '/home/mkushnir/my-test-chroot/dev', fstype: 'devfs', options: ['rw'] });
    });

    it('putfsent() as modelled for the simulated host reproduces the TAB-reconstructed lines byte for byte', () => {
      for (const marker of ['# A-reconstructed', '# C-reconstructed']) {
        const lines = block(text, marker);
        const again = parseMountP(lines.join('\n')).entries.map((e, i) => putfsent({ ...e, dump: Number(lines[i]!.at(-3)), pass: Number(lines[i]!.at(-1)) }));
        assert.deepEqual(again, lines);
      }
    });

    it('flags a line with a space in a path as unparsable rather than guessing the split', () => {
      const t = parseMountP('/dev/ada0p2\t\t/\t\t\tufs\trw\t\t1 1\n/data/my disk\t\t/mnt/x\t\t\tnullfs\tro\t\t0 0\n');
      assert.equal(t.entries.length, 1);
      assert.deepEqual(t.unparsable, ['/data/my disk\t\t/mnt/x\t\t\tnullfs\tro\t\t0 0']);
    });
  });

  describe('mount -p --libxo json (reconstructed from mount.c: no capture exists)', () => {
    it('reads the fstab list with comma-joined opts and numeric dump/pass', () => {
      const json = '{"__version": "1", "mount": {"fstab": [{"device":"/dev/ada0p2","mntpoint":"/","fstype":"ufs","opts":"rw","dump":1,"pass":1},' +
        '{"device":"/usr/qfleet/sharedfs","mntpoint":"/usr/qfleet/containers/my web/sharedfs","fstype":"nullfs","opts":"ro","dump":0,"pass":0}]}}';
      assert.deepEqual(parseMountLibxo(json), {
        entries: [
          { source: '/dev/ada0p2', target: '/', fstype: 'ufs', options: ['rw'] },
          { source: '/usr/qfleet/sharedfs', target: '/usr/qfleet/containers/my web/sharedfs', fstype: 'nullfs', options: ['ro'] },
        ],
        unparsable: [],
      });
    });

    it('answers undefined (fall back to text) for anything else: usage errors, the plain "mounted" listing', () => {
      assert.equal(parseMountLibxo('mount: illegal option -- -'), undefined);
      assert.equal(parseMountLibxo('{"mount":{"mounted":[{"special":"devfs","node":"/dev","fstype":"devfs","opts":[]}]}}'), undefined);
      assert.equal(parseMountLibxo('{"mount":{"fstab":[{"device":"x"}]}}'), undefined);
      assert.equal(parseMountLibxo('{"mount":{"fstab":[]}}'), undefined, 'a live host always has / mounted');
    });
  });

  describe('uname and freebsd-version', () => {
    const text = sample('uname-freebsd-version.txt');

    it('parses releases with and without a patch level, and strips -pN for the download directory', () => {
      assert.deepEqual(parseRelease('14.1-RELEASE-p5'), { version: '14.1', major: 14, minor: 1, branch: 'RELEASE', patch: 5 });
      assert.deepEqual(parseRelease('13.0-RC2'), { version: '13.0', major: 13, minor: 0, branch: 'RC2', patch: 0 });
      assert.equal(parseRelease('FreeBSD'), undefined);
      assert.equal(stripPatchLevel('14.4-RELEASE-p10'), '14.4-RELEASE');
      assert.equal(stripPatchLevel('14.2-RELEASE'), '14.2-RELEASE');
    });

    it('reads `uname -a; freebsd-version -ku` from a 14.4-p10 host (kernel string with a releng hash)', () => {
      const [a, k, u] = block(text, '$ uname -a; freebsd-version -ku') as [string, string, string];
      assert.deepEqual(parseUnameA(a), { sysname: 'FreeBSD', nodename: 'tech.trouble-free.net', release: '14.4-RELEASE-p10', machine: 'amd64' });
      assert.equal(parseRelease(k)?.patch, 10);
      assert.equal(u, '14.4-RELEASE-p10');
    });

    it('reads a freebsd-update patched kernel without a hash (14.1-RELEASE-p5)', () => {
      const [line] = block(text, '# version: 14.1-RELEASE-p5');
      assert.deepEqual(parseUnameA(line!), { sysname: 'FreeBSD', nodename: 'summer', release: '14.1-RELEASE-p5', machine: 'amd64' });
    });

    it('reads freebsd-version -kru (kernel, running, userland)', () => {
      assert.deepEqual(parseFreebsdVersionKru(block(text, '# version: FreeBSD 13.2-RELEASE-p4').slice(1).join('\n')), {
        kernel: '13.2-RELEASE-p4', running: '13.2-RELEASE-p4', userland: '13.2-RELEASE-p4',
      });
    });
  });

  describe('a base behind the running kernel', () => {
    it('reads freebsd-version before and after freebsd-update (14.3-RELEASE -> -p2): the unpatched base is behind', () => {
      const text = sample('freebsd-update.txt');
      const before = parseFreebsdVersionKru(block(text, '# version: FreeBSD 14.3-RELEASE').slice(1, 4).join('\n'))!;
      const after = parseFreebsdVersionKru(block(text.slice(text.indexOf('14.3-RELEASE\n\n')), '% freebsd-version -kru').join('\n'))!;
      assert.equal(after.userland, '14.3-RELEASE-p2');
      assert.match(baseBehindKernel(after.running, before.userland)!, /^base 14\.3-RELEASE is behind the running kernel 14\.3-RELEASE-p2: run qfleet install/);
      assert.equal(baseBehindKernel(after.running, after.userland), undefined);
    });

    it('says nothing for a base ahead of the kernel (a userland-only patch), another release, or unparsable text', () => {
      const [, k, u] = block(sample('uname-freebsd-version.txt'), '$ uname -a; freebsd-version -ku') as [string, string, string];
      assert.equal(baseBehindKernel(k, u), undefined, '14.4-RELEASE-p10 on both sides');
      assert.equal(baseBehindKernel('14.1-RELEASE-p3', '14.1-RELEASE-p5'), undefined);
      assert.equal(baseBehindKernel('14.2-RELEASE-p1', '14.1-RELEASE'), undefined);
      assert.equal(baseBehindKernel('15.0-CURRENT', 'x'), undefined);
    });
  });

  describe('sysctl kern.securelevel', () => {
    it('reads the value from a `sysctl -a` screen line and from `sysctl kern.securelevel`', () => {
      const text = sample('sysctl-securelevel.txt');
      const screen = text.slice(text.indexOf('% sysctl -a'), text.indexOf('kern.hostname: server1'));
      const line = screen.split('\n').find((l) => l.startsWith('kern.securelevel:'))!;
      assert.equal(parseSysctlInt(line), -1);
      assert.equal(parseSysctlInt(block(text, '# sysctl kern.securelevel').join('\n')), -1);
    });

    it('reads the bare value `sysctl -n` prints, and nothing else', () => {
      assert.equal(parseSysctlInt('1\n'), 1);
      assert.equal(parseSysctlInt('-1\n'), -1);
      assert.equal(parseSysctlInt('sysctl: unknown oid \'kern.securelevel\'\n'), undefined);
      assert.equal(parseSysctlInt(''), undefined);
    });
  });

  describe('service onestatus (rc.subr)', () => {
    const text = sample('service-rc.txt');

    it('a running service: exit 0, "NAME is running as pid N."', () => {
      const [, out] = block(text, '# source: smoke-test notes');
      assert.equal(out, 'sshd is running as pid 788.');
      assert.deepEqual(parseOnestatus(0, `${out}\n`), { running: true, pids: [788] });
    });

    it('a stopped service: exit 1, "NAME is not running."', () => {
      const lines = block(text, '$ service ntpd status');
      assert.deepEqual(lines.slice(3), ['$ service ntpd onestatus', 'ntpd is not running.', '$ echo $?', '1']);
      assert.deepEqual(parseOnestatus(Number(lines[6]), `${lines[4]}\n`), { running: false, pids: [] });
    });

    it('takes the pid even when rc.subr names the service differently (mysql-server prints "mysql")', () => {
      assert.deepEqual(parseOnestatus(0, 'mysql is running as pid 2076.\n'), { running: true, pids: [2076] });
    });
  });

  describe('procstat -f', () => {
    const text = sample('procstat-f.txt');

    it('picks the root row out of a 14.4 capture that mixes procstat -a, -f and -r tables', () => {
      const rows = parseProcstatFiles(block(text, '$ procstat -a | head -5').join('\n'));
      assert.equal(rows.length, 8, 'only the eight -f rows have the file-row shape');
      assert.deepEqual(rows.find((r) => r.fd === 'root'), { pid: 34179, comm: 'bash', fd: 'root', type: 'v', path: '/' });
      assert.deepEqual(rows.find((r) => r.fd === 'cwd')?.path, '/usr/home/detain');
      assert.deepEqual(pidsRootedAt(rows, '/'), [34179]);
      assert.deepEqual(pidsRootedAt(rows, '/usr/home/detain'), [], 'a cwd row is not a root');
    });

    it('reads the man page example', () => {
      const rows = parseProcstatFiles(block(text, '$ procstat files $$').join('\n'));
      assert.deepEqual(rows.map((r) => r.fd), ['text', 'ctty', 'cwd', 'root', '0', '1', '2', '255']);
      assert.deepEqual(pidsRootedAt(rows, '/'), [46620]);
    });
  });

  describe('mdconfig -l -v', () => {
    it('reads the 10.x-era capture (no label column)', () => {
      const [line] = block(sample('mdconfig.txt'), '# confidence: exact (TABs preserved');
      assert.deepEqual(parseMdconfigList(line!), [{ unit: 'md0', type: 'vnode', size: '1024M', file: '/root/big.img', label: undefined }]);
    });

    it('reads 13+/14 lines that end with an empty label column (format from mdconfig.c, no capture)', () => {
      assert.deepEqual(parseMdconfigList('md0\tvnode\t  2.0G\t/usr/qfleet/images/web.img\t\nmd1\tmalloc\t 1024M\t-\tscratch\n'), [
        { unit: 'md0', type: 'vnode', size: '2.0G', file: '/usr/qfleet/images/web.img', label: undefined },
        { unit: 'md1', type: 'malloc', size: '1024M', file: undefined, label: 'scratch' },
      ]);
    });
  });

  describe('one-value outputs', () => {
    it('sha256 -q: the digest is the first token (capture with a trailing remark)', () => {
      const [line] = block(sample('fetch-sha256.txt'), '$ sha256 -q ');
      assert.equal(parseSha256q(line!), 'c14f7eedb58a36ef873be59f18dff9cc7483d503b907f6c9e80e062d1148f965');
      assert.equal(parseSha256q('sha256: /x: No such file or directory'), undefined);
    });

    it('devfs rule showsets: one number per line', () => {
      assert.deepEqual(parseDevfsShowsets('1\n2\n3\n4\n5\n'), [1, 2, 3, 4, 5]);
    });

    it('du -sxk of several trees: KiB then the path, a line each', () => {
      const out = '155648\t/usr/qfleet/containers/web\n2048\t/usr/qfleet/containers/db\n';
      assert.deepEqual([...parseDuLines(out, ['/usr/qfleet/containers/web', '/usr/qfleet/containers/db'], 1024, '\n')],
        [['/usr/qfleet/containers/web', 155648 * 1024], ['/usr/qfleet/containers/db', 2048 * 1024]]);
      assert.deepEqual([...parseDuLines('', ['/usr/qfleet/containers/web'], 1024, '\n')], []);
    });
  });
});
