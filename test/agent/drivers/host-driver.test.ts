import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isUnder, Layout, mountsByContainer, ProcessTable } from '../../../agent/drivers/host-driver.js';

describe('Layout on disk (what the engine reads of the host, through its driver)', () => {
  let root: string;
  let layout: Layout;
  beforeEach(() => {
    root = mkdtempSync(`${tmpdir()}/qf-layout-`);
    layout = new Layout(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('finds nothing before any install or create', async () => {
    assert.deepEqual(await layout.containerDirs(), new Map());
    assert.deepEqual(await layout.stagedBases(), []);
    assert.equal(layout.containerRootExists('web'), false);
    assert.equal(await layout.isContainerDir('web'), false);
  });

  it('tells real container directories from anything else under containers/', async () => {
    mkdirSync(`${root}/containers/web`, { recursive: true });
    mkdirSync(`${root}/elsewhere`);
    symlinkSync(`${root}/elsewhere`, `${root}/containers/link`);
    writeFileSync(`${root}/containers/file`, '');
    assert.deepEqual(await layout.containerDirs(), new Map([['web', 'dir'], ['link', 'other'], ['file', 'other']]));
    assert.equal(await layout.isContainerDir('web'), true);
    assert.equal(await layout.isContainerDir('link'), false, 'a symlink is not a container');
    assert.equal(layout.containerRootExists('link'), true, 'though something is there');
  });

  it('lists staged bases by path', async () => {
    mkdirSync(`${root}/.staging/base-1`, { recursive: true });
    assert.deepEqual(await layout.stagedBases(), [`${root}/.staging/base-1`]);
  });
});

describe('ProcessTable', () => {
  const DIR = '/q/containers';
  const t = new ProcessTable(`${DIR}/`, [
    { pid: 30, root: `${DIR}/web`, start: '300' },
    { pid: 10, root: `${DIR}/web/var/empty`, start: '100' }, // chrooted further: still web's
    { pid: 20, root: `${DIR}/web2`, start: '200' },
    { pid: 40, root: DIR, start: '400' },
    { pid: 50, root: '/', start: '500' },
    { pid: 60, root: '/q/containersX/web', start: '600' },
  ]);

  it('groups processes by the container their root directory is in, nested roots included, pids ascending', () => {
    assert.deepEqual(t.pidsIn('web'), [10, 30]);
    assert.deepEqual(t.pidsIn('web2'), [20]);
    assert.deepEqual(t.pidsIn('db'), []);
  });

  it('counts nothing rooted at the containers directory itself or outside it', () => {
    assert.deepEqual(t.pidsIn(''), []);
    assert.deepEqual(t.pidsIn('containersX'), []);
  });

  it('fingerprints a container by pids and start times', () => {
    assert.equal(t.fingerprint('web'), '10@100 30@300');
    assert.equal(t.fingerprint('db'), '');
    const reused = new ProcessTable(DIR, [{ pid: 30, root: `${DIR}/web`, start: '301' }, { pid: 10, root: `${DIR}/web/var/empty`, start: '100' }]);
    assert.notEqual(reused.fingerprint('web'), t.fingerprint('web'));
  });
});

describe('isUnder and mountsByContainer', () => {
  it('takes the root itself and paths below it, never a sibling that merely shares the prefix', () => {
    assert.equal(isUnder('/q/containers/web', '/q/containers/web'), true);
    assert.equal(isUnder('/q/containers/web/sharedfs', '/q/containers/web'), true);
    assert.equal(isUnder('/q/containers/web/sharedfs', '/q/containers/web/'), true);
    assert.equal(isUnder('/q/containers/web2', '/q/containers/web'), false);
    assert.equal(isUnder('/q/containers/we', '/q/containers/web'), false);
    assert.equal(isUnder('/q/containers', '/q/containers/web'), false);
  });

  it('groups mounts by container in one pass, as filtering with isUnder per container would', () => {
    const m = (target: string) => ({ source: 's', target, fstype: 'none', options: [] });
    const table = [m('/'), m('/q/containers/web/sharedfs'), m('/q/containers/web2/dev'), m('/q/containers/web/dev'), m('/q/containers'), m('/q/containersX/web')];
    const by = mountsByContainer(table, '/q/containers');
    for (const name of ['web', 'web2', 'db']) {
      assert.deepEqual(by.get(name) ?? [], table.filter((e) => isUnder(e.target, `/q/containers/${name}`)));
    }
    assert.deepEqual([...by.keys()].sort(), ['web', 'web2']);
  });

  it('gives a mount and a process at the same path to the same container (one rule for both)', () => {
    const paths = ['/q/containers/web', '/q/containers/web/var/empty', '/q/containers/web2', '/q/containers', '/q/containers/', '/', '/q/containersX/web'];
    const procs = new ProcessTable('/q/containers/', paths.map((root, i) => ({ pid: i + 2, root, start: '' })));
    const mounts = mountsByContainer(paths.map((target) => ({ source: 's', target, fstype: 'none', options: [] })), '/q/containers/');
    for (const name of ['web', 'web2', '', 'containersX']) {
      assert.deepEqual((mounts.get(name) ?? []).map((m) => paths.indexOf(m.target) + 2), procs.pidsIn(name), name);
    }
  });
});
