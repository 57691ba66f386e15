import { strict as assert } from 'node:assert';
import { ProcessTable } from '../../../agent/drivers/host-driver.js';

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
