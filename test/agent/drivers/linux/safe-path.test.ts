import { strict as assert } from 'node:assert';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { FailedPreconditionError, InvalidArgumentError } from '../../../../agent/errors.js';
import { checkComponent, mountIdOf, notDirectoryRefusal, openBeneath, openTrustedDir, readFileBeneath, splitRelative } from '../../../../agent/drivers/linux/safe-path.js';
import { measureTree, removeTree } from '../../../../agent/drivers/linux/safe-remove.js';

describe('linux safe path walker', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(`${tmpdir()}/qf-walk-`);
    mkdirSync(`${tmp}/root/a/b`, { recursive: true });
    mkdirSync(`${tmp}/outside`);
    writeFileSync(`${tmp}/outside/secret`, 'host file\n');
    writeFileSync(`${tmp}/root/a/file`, 'inside\n');
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('refuses empty, ".", ".." and names with a slash', () => {
    for (const bad of ['', '.', '..', 'a/b', 'x\0y']) assert.throws(() => checkComponent(bad), InvalidArgumentError);
    assert.throws(() => splitRelative('a/../b'), InvalidArgumentError);
    assert.throws(() => splitRelative('a//b'), InvalidArgumentError);
    assert.throws(() => openBeneath(`${tmp}/root`, '..'), InvalidArgumentError);
  });

  it('opens a directory below the root component by component', () => {
    const fd = openBeneath(`${tmp}/root`, 'a/b');
    try {
      assert.deepEqual(readdirSync(`/proc/self/fd/${fd}`), []);
      assert.ok(mountIdOf(fd) > 0);
    } finally {
      closeSync(fd);
    }
  });

  for (const [what, target] of [['an absolute symlink', '/etc'], ['a symlink to /', '/'], ['a relative symlink to ..', '..']] as const) {
    it(`refuses ${what} on the way, naming it`, () => {
      symlinkSync(target, `${tmp}/root/a/link`);
      assert.throws(() => openBeneath(`${tmp}/root`, 'a/link'), (e: unknown) =>
        e instanceof FailedPreconditionError && e.message.includes(`${tmp}/root/a/link`));
    });
  }

  it('says the same of a symlink or a file where a directory goes, whether opened sync (walker) or async (remover)', async () => {
    symlinkSync(`${tmp}/outside`, `${tmp}/root/a/mid`);
    writeFileSync(`${tmp}/root/a/file`, '');
    const refusal = (shown: string, how: string) => (e: unknown) => e instanceof FailedPreconditionError && e.message === `${shown} is a symlink or not a directory; refusing ${how}`;
    assert.throws(() => openTrustedDir(`${tmp}/root/a/mid`), refusal(`${tmp}/root/a/mid`, 'to use it'));
    assert.throws(() => openBeneath(`${tmp}/root`, 'a/file/x'), refusal(`${tmp}/root/a/file`, 'to follow it'));
    await assert.rejects(measureTree(`${tmp}/root/a/mid`), refusal(`${tmp}/root/a/mid`, 'to follow it'));
    const other = Object.assign(new Error('gone'), { code: 'ENOENT' });
    assert.equal(notDirectoryRefusal(other, 'x', 'refusing'), other, 'any other error is passed on as it is');
  });

  it('refuses a symlink in the middle of the path and a root that is a symlink', () => {
    symlinkSync(`${tmp}/outside`, `${tmp}/root/a/mid`);
    assert.throws(() => openBeneath(`${tmp}/root`, 'a/mid/x'), FailedPreconditionError);
    symlinkSync(`${tmp}/root`, `${tmp}/rootlink`);
    assert.throws(() => openBeneath(`${tmp}/rootlink`, []), FailedPreconditionError);
  });

  it('creates missing directories only when asked, and never through a symlink', () => {
    assert.throws(() => openBeneath(`${tmp}/root`, 'a/new'), /ENOENT/);
    closeSync(openBeneath(`${tmp}/root`, 'a/new/deeper', { create: true }));
    assert.ok(lstatSync(`${tmp}/root/a/new/deeper`).isDirectory());
    symlinkSync(`${tmp}/outside`, `${tmp}/root/sneaky`);
    assert.throws(() => openBeneath(`${tmp}/root`, 'sneaky/x', { create: true }), FailedPreconditionError);
    assert.equal(existsSync(`${tmp}/outside/x`), false);
  });

  it('reads a regular file beneath the root but not through or at a symlink', () => {
    assert.equal(readFileBeneath(`${tmp}/root`, 'a/file'), 'inside\n');
    symlinkSync(`${tmp}/outside/secret`, `${tmp}/root/a/leak`);
    symlinkSync(`${tmp}/outside`, `${tmp}/root/dirleak`);
    assert.equal(readFileBeneath(`${tmp}/root`, 'a/leak'), undefined);
    assert.equal(readFileBeneath(`${tmp}/root`, 'dirleak/secret'), undefined);
    assert.equal(readFileBeneath(`${tmp}/root`, 'a/missing'), undefined);
  });
});

describe('linux safe remover and usage', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(`${tmpdir()}/qf-rm-`);
    mkdirSync(`${tmp}/outside/deep`, { recursive: true });
    writeFileSync(`${tmp}/outside/deep/keep`, 'keep me\n');
    mkdirSync(`${tmp}/victim/x/y`, { recursive: true });
    writeFileSync(`${tmp}/victim/x/y/f`, 'data');
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('removes symlinks as links and never touches their targets', async () => {
    symlinkSync(`${tmp}/outside`, `${tmp}/victim/abs`);
    symlinkSync('../../outside', `${tmp}/victim/x/rel`);
    symlinkSync('/', `${tmp}/victim/x/y/slash`);
    await removeTree(`${tmp}/victim`);
    assert.equal(existsSync(`${tmp}/victim`), false);
    assert.ok(existsSync(`${tmp}/outside/deep/keep`));
  });

  it('removes directories of more entries than one read returns, and deep trees, completely', async () => {
    for (let i = 0; i < 1500; i++) writeFileSync(`${tmp}/victim/x/f${i}`, String(i));
    let deep = `${tmp}/victim/x/y`;
    for (let i = 0; i < 40; i++) { deep = `${deep}/d${i}`; mkdirSync(deep); writeFileSync(`${deep}/leaf`, 'z'); }
    symlinkSync(`${tmp}/outside`, `${deep}/out`);
    await removeTree(`${tmp}/victim`);
    assert.equal(existsSync(`${tmp}/victim`), false);
    assert.ok(existsSync(`${tmp}/outside/deep/keep`));
  });

  it('adds up every file and directory when it measures several directories side by side', async () => {
    for (let d = 0; d < 30; d++) {
      mkdirSync(`${tmp}/victim/d${d}/sub`, { recursive: true });
      for (let f = 0; f < 5; f++) writeFileSync(`${tmp}/victim/d${d}/${f % 2 ? 'sub/' : ''}f${f}`, Buffer.alloc(8192 * (f + 1), 1));
    }
    const expected = (p: string): number => {
      const st = lstatSync(p);
      return st.blocks * 512 + (st.isDirectory() ? readdirSync(p).reduce((sum, n) => sum + expected(`${p}/${n}`), 0) : 0);
    };
    assert.equal(await measureTree(`${tmp}/victim`), expected(`${tmp}/victim`));
  });

  it('treats a missing tree as already removed', async () => {
    await removeTree(`${tmp}/nope`);
  });

  it('measures allocated bytes, counting hard links once and not following symlinks', async () => {
    writeFileSync(`${tmp}/victim/big`, Buffer.alloc(64 * 1024, 1));
    const before = await measureTree(`${tmp}/victim`);
    assert.ok(before >= 64 * 1024);
    linkSync(`${tmp}/victim/big`, `${tmp}/victim/big2`);
    symlinkSync(`${tmp}/outside`, `${tmp}/victim/link`);
    const after = await measureTree(`${tmp}/victim`);
    assert.ok(after - before < 64 * 1024, 'a hard link and a symlink add (almost) nothing');
  });
});
