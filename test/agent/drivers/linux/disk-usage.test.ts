import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureContainerTrees } from '../../../../agent/drivers/linux/disk-usage.js';
import { LinuxMounts } from '../../../../agent/drivers/linux/mounts.js';
import { measureTree } from '../../../../agent/drivers/linux/safe-remove.js';
import { Layout } from '../../../../agent/drivers/host-driver.js';
import { CommandFailedError } from '../../../../agent/errors.js';
import type { CommandRunner } from '../../../../agent/runner/command-runner.js';
import { ExecaRunner } from '../../../../agent/runner/execa-runner.js';
import { FakeRunner } from '../../../support/fake-runner.js';

describe('linux/disk-usage: the disk use of a batch of container trees', () => {
  let tmp: string;
  let root: (n: string) => string;
  let mounts: LinuxMounts;
  const DU = ['du', '-s', '-x', '-B1', '-0', '--'];

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'qf-du-'));
    root = (n) => join(tmp, 'containers', n);
    for (const n of ['a', 'b', 'mounted']) {
      mkdirSync(join(root(n), 'etc'), { recursive: true });
      writeFileSync(join(root(n), 'etc/conf'), Buffer.alloc(10_000, 1));
    }
    mkdirSync(join(root('mounted'), 'data'));
    // The kernel's table: something is mounted inside `mounted`, nothing inside the others.
    mkdirSync(join(tmp, 'proc/self'), { recursive: true });
    writeFileSync(join(tmp, 'proc/self/mountinfo'), [
      '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
      `90 22 8:1 /srv/data ${root('mounted')}/data rw,relatime shared:1 - ext4 /dev/vda1 rw`,
      '',
    ].join('\n'));
    mounts = new LinuxMounts(new FakeRunner(), new Layout(tmp), join(tmp, 'proc'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('asks one du for every tree with nothing mounted under it, and walks the one with a mount, leaving the mount out', async () => {
    const runner = new FakeRunner().on(DU, (spec) => ({ stdout: spec.argv.slice(DU.length).map((r, i) => `${(i + 1) * 4096}\t${r}\0`).join('') }));
    const sizes = await measureContainerTrees(runner, mounts, [root('a'), root('mounted'), root('b')], true);
    assert.deepEqual(runner.transcript, [[...DU, root('a'), root('b')].join(' ')]);
    assert.equal(sizes.get(root('a')), 4096);
    assert.equal(sizes.get(root('b')), 8192);
    assert.equal(sizes.get(root('mounted')), await measureTree(root('mounted'), [join(root('mounted'), 'data')]));
  });

  it('runs a batch nobody waits for under nice -n 19, so it never takes a core from the agent', async () => {
    const NICE_DU = ['nice', '-n', '19', ...DU];
    const runner = new FakeRunner().on(NICE_DU, (spec) => ({ stdout: spec.argv.slice(NICE_DU.length).map((r) => `4096\t${r}\0`).join('') }));
    const sizes = await measureContainerTrees(runner, mounts, [root('a'), root('b')], false);
    assert.deepEqual(runner.transcript, [[...NICE_DU, root('a'), root('b')].join(' ')]);
    assert.deepEqual([sizes.get(root('a')), sizes.get(root('b'))], [4096, 4096]);
  });

  it('runs the real nice and du here: a background batch measures what an urgent one does', async () => {
    const runner = new ExecaRunner();
    const [urgent, background] = [await measureContainerTrees(runner, mounts, [root('a'), root('b')], true), await measureContainerTrees(runner, mounts, [root('a'), root('b')], false)];
    assert.equal(typeof urgent.get(root('a')), 'number');
    assert.deepEqual(background, urgent);
  });

  it('walks a tree du did not measure; one that is gone fails alone, with why', async () => {
    const gone = root('gone');
    const runner = new FakeRunner().on(DU, { stdout: `4096\t${root('a')}\0`, stderr: `du: cannot access '${gone}': No such file or directory\n`, exitCode: 1 });
    const sizes = await measureContainerTrees(runner, mounts, [root('a'), root('b'), gone], true);
    assert.equal(sizes.get(root('a')), 4096);
    assert.equal(sizes.get(root('b')), await measureTree(root('b')), 'left out by du: walked');
    assert.ok(sizes.get(gone) instanceof Error && /ENOENT|no such file/i.test((sizes.get(gone) as Error).message), String(sizes.get(gone)));
  });

  it('walks every tree when du cannot run as asked (no du, or a du without -0 or -B1)', async () => {
    const runner = new FakeRunner().on(DU, { stderr: "du: unrecognized option: 0\nBusyBox v1.36.1 multi-call binary.\n", exitCode: 2 });
    const sizes = await measureContainerTrees(runner, mounts, [root('a'), root('b')], true);
    assert.equal(sizes.get(root('a')), await measureTree(root('a')));
    assert.equal(sizes.get(root('b')), await measureTree(root('b')));
  });

  it('does not walk the trees of a du that ran out of time: they fail, with the timeout, until the next round', async () => {
    const runner: CommandRunner = {
      run: async (spec) => { throw new CommandFailedError(spec.argv, undefined, '', { timedOut: true }); },
      spawn: () => { throw new Error('not used'); },
    };
    const sizes = await measureContainerTrees(runner, mounts, [root('a'), root('mounted')], false);
    assert.ok(sizes.get(root('a')) instanceof Error && /timed out/.test((sizes.get(root('a')) as Error).message));
    assert.equal(typeof sizes.get(root('mounted')), 'number', 'the walked tree keeps its figure');
  });
});
