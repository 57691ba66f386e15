import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { parseMountinfo, parseMountinfoLine, toMountEntry, unescapeMountField } from '../../../../agent/drivers/linux/mountinfo.js';

// Lines taken from /proc/self/mountinfo on the Debian 12 development machine.
const REAL = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 27 254:0 /tmp/qfx/src /tmp/qfx/dst ro,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
`;

describe('linux mountinfo parser', () => {
  it('reads ids, device, root, mount point, options, type, source and super options', () => {
    const [proc, root, , , bind] = parseMountinfo(REAL);
    assert.deepEqual(proc, {
      mountId: 22, parentId: 27, device: '0:21', root: '/', mountPoint: '/proc',
      mountOptions: ['rw', 'relatime'], optionalFields: [], fstype: 'proc', source: 'proc', superOptions: ['rw'],
    });
    assert.equal(root?.mountPoint, '/');
    assert.equal(root?.parentId, 1);
    assert.equal(root?.source, '/dev/vda');
    assert.deepEqual(root?.superOptions, ['rw', 'discard', 'resv_strict', 'resuid=65534', 'resgid=65534']);
    // A read-only bind mount: the bind source shows as root, ro only in the per-mount options.
    assert.equal(bind?.root, '/tmp/qfx/src');
    assert.equal(bind?.mountPoint, '/tmp/qfx/dst');
    assert.deepEqual(bind?.mountOptions, ['ro', 'relatime']);
  });

  it('decodes the octal escapes the kernel writes for space, tab, newline and backslash', () => {
    // Made on this machine with mount --bind onto directories named like that.
    const lines = [
      '42 27 254:0 /tmp/qfx2/src /tmp/qfx2/a\\040b rw,relatime - ext4 /dev/vda rw',
      '43 27 254:0 /tmp/qfx2/src /tmp/qfx2/t\\011ab rw,relatime - ext4 /dev/vda rw',
      '44 27 254:0 /tmp/qfx2/src /tmp/qfx2/back\\134slash rw,relatime - ext4 /dev/vda rw',
      '45 27 254:0 /tmp/qfx2/src /tmp/qfx2/new\\012line rw,relatime - ext4 /dev/vda rw',
    ];
    assert.deepEqual(lines.map((l) => parseMountinfoLine(l).mountPoint), [
      '/tmp/qfx2/a b', '/tmp/qfx2/t\tab', '/tmp/qfx2/back\\slash', '/tmp/qfx2/new\nline',
    ]);
  });

  it('decodes escapes in root and source too, and leaves lone backslashes and UTF-8 alone', () => {
    const e = parseMountinfoLine('50 27 0:40 /my\\040src /mnt/caf\u00e9\\040x rw - tmpfs my\\040tmpfs rw');
    assert.equal(e.root, '/my src');
    assert.equal(e.mountPoint, '/mnt/caf\u00e9 x');
    assert.equal(e.source, 'my tmpfs');
    assert.equal(unescapeMountField('a\\b\\12'), 'a\\b\\12');
  });

  it('collects optional fields up to the "-" separator', () => {
    // A shared tmpfs and a slave bind of it, made on this machine.
    const [shared, slave] = parseMountinfo(
      '42 27 0:39 / /tmp/qfx3/m rw,relatime shared:1 - tmpfs qfx-tmp rw,size=1024k,mode=755\n' +
      '43 27 0:39 / /tmp/qfx3/b rw,relatime master:1 - tmpfs qfx-tmp rw,size=1024k,mode=755\n' +
      '60 27 0:39 / /x rw shared:2 master:1 propagate_from:1 - tmpfs t rw\n',
    );
    assert.deepEqual(shared?.optionalFields, ['shared:1']);
    assert.equal(shared?.fstype, 'tmpfs');
    assert.deepEqual(slave?.optionalFields, ['master:1']);
    assert.deepEqual(parseMountinfoLine('60 27 0:39 / /x rw shared:2 master:1 propagate_from:1 - tmpfs t rw').optionalFields,
      ['shared:2', 'master:1', 'propagate_from:1']);
  });

  it('gives the driver-neutral entry per-mount options first, then super options, without duplicates', () => {
    const e = toMountEntry(parseMountinfoLine('42 27 254:0 /src /dst ro,relatime - ext4 /dev/vda rw,discard'));
    assert.deepEqual(e, { source: '/dev/vda', target: '/dst', fstype: 'ext4', options: ['ro', 'relatime', 'rw', 'discard'] });
  });

  it('parses the live table of this machine, which always has a root mount', () => {
    const table = parseMountinfo(readLive());
    assert.ok(table.some((e) => e.mountPoint === '/'));
  });

  it('rejects a line that is not mountinfo', () => {
    assert.throws(() => parseMountinfoLine('proc /proc proc rw 0 0'), /malformed/);
  });
});

function readLive(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}
