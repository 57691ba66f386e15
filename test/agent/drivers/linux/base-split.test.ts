import { strict as assert } from 'node:assert';
import { lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { applySplit, planSplit, SHARED_DIRS, type EntryKind } from '../../../../agent/drivers/linux/base-split.js';

const tree = (kinds: Record<string, EntryKind>) => (rel: string): EntryKind => kinds[rel] ?? 'missing';

describe('linux base split (qjail-style sharedfs / template)', () => {
  it('shares executables and libraries, in a fixed order', () => {
    assert.deepEqual(SHARED_DIRS.slice(0, 6), ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']);
    assert.ok(SHARED_DIRS.includes('usr/share') && SHARED_DIRS.includes('usr/libexec') && SHARED_DIRS.includes('usr/include'));
    assert.ok(!SHARED_DIRS.some((d) => d === 'etc' || d === 'var' || d.startsWith('usr/local')));
  });

  it('moves the shared directories a classic base has as real directories', () => {
    const plan = planSplit(tree({ bin: 'dir', sbin: 'dir', lib: 'dir', usr: 'dir', 'usr/bin': 'dir', 'usr/share': 'dir', etc: 'dir' }));
    assert.deepEqual(plan.shared, ['bin', 'sbin', 'lib', 'usr/bin', 'usr/share']);
    assert.deepEqual(plan.keptSymlinks, []);
  });

  it('keeps merged-/usr symlinks (bin -> usr/bin) as symlinks and moves their targets', () => {
    const plan = planSplit(tree({
      bin: 'symlink', sbin: 'symlink', lib: 'symlink', lib64: 'symlink',
      usr: 'dir', 'usr/bin': 'dir', 'usr/sbin': 'dir', 'usr/lib': 'dir', 'usr/lib64': 'dir',
    }));
    assert.deepEqual(plan.shared, ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64']);
    assert.deepEqual(plan.keptSymlinks, ['bin', 'sbin', 'lib', 'lib64']);
  });

  it('never moves anything below a symlinked parent (a base with usr -> / must not reach the host)', () => {
    const plan = planSplit(tree({ usr: 'symlink', 'usr/bin': 'dir', 'usr/lib': 'dir', bin: 'dir' }));
    assert.deepEqual(plan.shared, ['bin']);
  });

  it('ignores shared names that are plain files', () => {
    assert.deepEqual(planSplit(tree({ bin: 'other', sbin: 'dir' })).shared, ['sbin']);
  });

  it('applies a plan: directories moved, X -> /sharedfs/X links and an empty mount point left behind', () => {
    const tmp = mkdtempSync(`${tmpdir()}/qf-split-`);
    try {
      const base = `${tmp}/base`;
      mkdirSync(`${base}/usr/bin`, { recursive: true });
      mkdirSync(`${base}/usr/local`, { recursive: true });
      mkdirSync(`${base}/etc`, { recursive: true });
      writeFileSync(`${base}/usr/bin/tool`, 'x');
      writeFileSync(`${base}/etc/conf`, 'y');
      symlinkSync('usr/bin', `${base}/bin`);
      applySplit({ shared: ['usr/bin'], keptSymlinks: ['bin'] }, base, `${tmp}/shared`, 'sharedfs');
      assert.ok(existsSync(`${tmp}/shared/usr/bin/tool`));
      assert.equal(readlinkSync(`${base}/usr/bin`), '/sharedfs/usr/bin');
      assert.equal(readlinkSync(`${base}/bin`), 'usr/bin');
      assert.ok(lstatSync(`${base}/sharedfs`).isDirectory());
      assert.ok(existsSync(`${base}/etc/conf`) && existsSync(`${base}/usr/local`));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
