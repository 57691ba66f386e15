import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import { isStatic, probeNamespaces, type ProbeHost } from '../../../../agent/drivers/linux/ns-probe.js';
import { FailedPreconditionError } from '../../../../agent/errors.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { ref } from '../../../support/container-ref.js';

/** A 64-bit little-endian ELF header with program headers of these types (3 = PT_INTERP: dynamically linked). */
function elf(types: readonly number[]): Buffer {
  const b = Buffer.alloc(64 + 56 * types.length);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2;
  b[5] = 1;
  b.writeBigUInt64LE(64n, 0x20);
  b.writeUInt16LE(56, 0x36);
  b.writeUInt16LE(types.length, 0x38);
  types.forEach((t, i) => b.writeUInt32LE(t, 64 + i * 56));
  return b;
}

const STATIC = elf([1, 1, 4]);
const DYNAMIC = elf([6, 3, 1, 1]);

/** A host with exactly these files (path → contents), as root unless told otherwise. */
function host(files: Record<string, Buffer | string>, uid = 0): ProbeHost {
  return {
    exists: (p) => p in files,
    readFile: (p) => (p in files ? Buffer.from(files[p]!) : undefined),
    uid: () => uid,
  };
}

const FULL: Record<string, Buffer | string> = {
  '/proc/self/ns/user': '',
  '/proc/sys/user/max_user_namespaces': '15000\n',
  '/usr/bin/unshare': DYNAMIC,
  '/usr/bin/nsenter': DYNAMIC,
  '/usr/bin/setpriv': DYNAMIC,
  '/usr/bin/tini-static': STATIC,
  '/bin/busybox': STATIC,
};

describe('linux namespaces probe (files only)', () => {
  it('tells a static ELF from one that needs the dynamic loader', () => {
    assert.equal(isStatic(STATIC), true);
    assert.equal(isStatic(DYNAMIC), false);
    assert.equal(isStatic(Buffer.from('#!/bin/sh\n')), false);
    assert.equal(isStatic(undefined), false);
  });

  it('finds the tools on a host that has them, and nothing missing', () => {
    const p = probeNamespaces(host(FULL));
    assert.deepEqual(p.missing, []);
    assert.deepEqual(p.tools, { unshare: '/usr/bin/unshare', nsenter: '/usr/bin/nsenter', setpriv: '/usr/bin/setpriv', tini: '/usr/bin/tini-static', busybox: '/bin/busybox' });
  });

  const cases: [string, Record<string, Buffer | string | undefined>, string][] = [
    ['no tini-static', { '/usr/bin/tini-static': undefined }, 'namespaces: tini-static not found (apt-get install tini)'],
    ['a dynamic busybox', { '/bin/busybox': DYNAMIC }, 'namespaces: a statically linked busybox not found (apt-get install busybox-static)'],
    ['no nsenter', { '/usr/bin/nsenter': undefined }, 'namespaces: nsenter not found (apt-get install util-linux)'],
    ['user namespaces switched off', { '/proc/sys/user/max_user_namespaces': '0\n' }, 'namespaces: user namespaces are disabled (sysctl user.max_user_namespaces is 0)'],
    ['a kernel without user namespaces', { '/proc/self/ns/user': undefined }, 'namespaces: this kernel has no user namespaces (CONFIG_USER_NS)'],
  ];
  for (const [what, change, message] of cases) {
    it(`says why on a host with ${what}`, () => {
      const files: Record<string, Buffer | string> = { ...FULL };
      for (const [k, v] of Object.entries(change)) if (v === undefined) delete files[k]; else files[k] = v;
      const p = probeNamespaces(host(files));
      assert.equal(p.tools, undefined);
      assert.deepEqual(p.missing, [message]);
    });
  }

  it('needs root', () => {
    assert.deepEqual(probeNamespaces(host(FULL, 1000)).missing, ['namespaces: the agent does not run as root']);
  });

  describe('in capabilities()', () => {
    let tmp: string;
    beforeEach(() => { tmp = mkdtempSync(`${tmpdir()}/qf-nsprobe-`); });
    afterEach(() => rmSync(tmp, { recursive: true, force: true }));
    const driver = (files: Record<string, Buffer | string>) =>
      new LinuxDriver({ runner: new FakeRunner(), rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, probeHost: host(files) });

    it('offers namespaces first, as the default, where the host can run it', () => {
      const c = driver(FULL).capabilities();
      assert.deepEqual(c.isolation, ['namespaces', 'chroot']);
      assert.equal(c.defaultIsolation, 'namespaces');
      assert.equal(c.namespaces, true);
    });

    it('offers chroot only elsewhere, keeps namespaces the default, and a namespaces container is refused saying why', async () => {
      const files: Record<string, Buffer | string> = { ...FULL };
      delete files['/usr/bin/tini-static'];
      const d = driver(files);
      const c = d.capabilities();
      assert.deepEqual(c.isolation, ['chroot']);
      assert.equal(c.defaultIsolation, 'namespaces');
      assert.ok(c.missing.includes('namespaces: tini-static not found (apt-get install tini)'));
      mkdirSync(`${tmp}/qfleet/containers/web`, { recursive: true });
      await assert.rejects(d.checkConfig(ref('web', { isolation: 'namespaces' })), (e: unknown) =>
        e instanceof FailedPreconditionError && e.reason === 'unsupported' && /tini-static not found \(apt-get install tini\)/.test(e.message));
    });

    it('reads the host once', () => {
      let reads = 0;
      const h = host(FULL);
      const d = new LinuxDriver({ runner: new FakeRunner(), rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log`, probeHost: { ...h, exists: (p) => { reads++; return h.exists(p); } } });
      d.capabilities();
      const after = reads;
      d.capabilities();
      assert.equal(reads, after);
    });
  });
});
