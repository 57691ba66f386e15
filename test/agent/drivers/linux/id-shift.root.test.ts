import { strict as assert } from 'node:assert';
import { chmodSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { IDENTITY, shiftTree } from '../../../../agent/drivers/linux/id-shift.js';
import { ExecaRunner } from '../../../../agent/runner/execa-runner.js';
import { cleanupTree } from './real-harness.js';

// Re-owning a container's tree for a shifted id map, for real (chown needs root).

describe('linux id shift of a container tree @root', () => {
  const runner = new ExecaRunner();
  let tmp: string;
  const SHIFT = { uid: [{ inside: 0, outside: 100000, count: 65536 }], gid: [{ inside: 0, outside: 100000, count: 65536 }] };
  const ID = { uid: IDENTITY, gid: IDENTITY };

  beforeEach(() => {
    tmp = mkdtempSync('/tmp/qf-idshift-');
  });
  afterEach(async () => {
    await cleanupTree(runner, tmp);
  });

  it('re-owns files, directories and links through the map, keeps set-id bits, follows no symlink, crosses no mount, and goes back', async () => {
    const root = `${tmp}/root`;
    mkdirSync(`${root}/etc/deep`, { recursive: true });
    writeFileSync(`${root}/etc/passwd`, 'x\n');
    writeFileSync(`${root}/etc/deep/www`, 'x\n');
    lchownSync(`${root}/etc/deep/www`, 33, 33);
    writeFileSync(`${root}/suid`, 'x\n');
    chmodSync(`${root}/suid`, 0o4755);
    writeFileSync(`${tmp}/host-file`, 'the host\'s\n');
    symlinkSync(`${tmp}/host-file`, `${root}/etc/to-host`);
    mkdirSync(`${root}/mnt`);
    await runner.run({ argv: ['mount', '-t', 'tmpfs', 'qf-idshift', `${root}/mnt`] });
    writeFileSync(`${root}/mnt/other-fs`, 'x\n');

    assert.ok(shiftTree(root, ID, SHIFT) >= 6);
    assert.equal(statSync(root).uid, 100000);
    assert.equal(statSync(`${root}/etc/passwd`).uid, 100000);
    assert.equal(statSync(`${root}/etc/deep/www`).uid, 100033);
    assert.equal(statSync(`${root}/etc/deep/www`).gid, 100033);
    assert.equal(lstatSync(`${root}/etc/to-host`).uid, 100000, 'the link itself');
    assert.equal(statSync(`${tmp}/host-file`).uid, 0, 'not what it points to');
    assert.equal(statSync(`${root}/suid`).mode & 0o7777, 0o4755, 'the set-uid bit chown cleared is back');
    assert.equal(statSync(`${root}/mnt/other-fs`).uid, 0, 'another mount is not the container\'s tree');
    assert.equal(shiftTree(root, SHIFT, SHIFT), 0, 'nothing to do the second time');

    shiftTree(root, SHIFT, ID);
    assert.equal(statSync(root).uid, 0);
    assert.equal(statSync(`${root}/etc/deep/www`).uid, 33);
    assert.equal(statSync(`${root}/suid`).mode & 0o7777, 0o4755);
  });
});
