import { strict as assert } from 'node:assert';
import { ProcessTable, type ServiceProbe } from '../../../agent/drivers/host-driver.js';
import { ProbeMemo } from '../../../agent/drivers/probe-memo.js';

// The memo behind probeService(name, service, procs): an rc script's status
// answer is reused only while the container's processes are the very same
// (their fingerprint: here from a process table, as for a chroot).

const DIR = '/q/containers';
const table = (...procs: [pid: number, start: string][]) =>
  new ProcessTable(DIR, procs.map(([pid, start]) => ({ pid, root: `${DIR}/web`, start }))).fingerprint('web');

describe('ProbeMemo', () => {
  let now: number;
  let memo: ProbeMemo;
  let asked: number;
  let answer: ServiceProbe;
  const ask = async () => { asked++; return answer; };
  /** Lets a background ask settle. */
  const settle = () => new Promise((r) => setImmediate(r));

  beforeEach(() => {
    now = 0;
    asked = 0;
    answer = { running: true, pids: [] };
    memo = new ProbeMemo(() => now, 1000);
  });

  it('asks once while the processes are the same, and again when they differ', async () => {
    assert.equal((await memo.probe('web', 'httpd', table([10, 'a']), ask)).running, true);
    answer = { running: false, pids: [] };
    assert.equal((await memo.probe('web', 'httpd', table([10, 'a']), ask)).running, true);
    assert.equal(asked, 1);
    assert.equal((await memo.probe('web', 'httpd', table([10, 'a'], [11, 'b']), ask)).running, false);
    assert.equal(asked, 2);
  });

  it('keeps each service of each container apart', async () => {
    await memo.probe('web', 'httpd', table(), ask);
    await memo.probe('web', 'sshd', table(), ask);
    await memo.probe('db', 'httpd', table(), ask);
    assert.equal(asked, 3);
  });

  it('always asks without a table, and forgets the answer it had', async () => {
    await memo.probe('web', 'httpd', table(), ask);
    await memo.probe('web', 'httpd', undefined, ask);
    await memo.probe('web', 'httpd', table(), ask);
    assert.equal(asked, 3);
  });

  it('gives an old answer once more while asking again in the background, then the new one', async () => {
    await memo.probe('web', 'httpd', table(), ask);
    now = 1001;
    answer = { running: false, pids: [] };
    assert.equal((await memo.probe('web', 'httpd', table(), ask)).running, true, 'the old answer, at once');
    assert.equal(asked, 2, 'while the script is asked again');
    await settle();
    assert.equal((await memo.probe('web', 'httpd', table(), ask)).running, false);
    assert.equal(asked, 2);
  });

  it('refreshes one old answer at a time, and drops one whose refresh failed', async () => {
    await memo.probe('a', 's', table(), ask);
    await memo.probe('b', 's', table(), ask);
    now = 5000;
    let release!: () => void;
    const slow = () => new Promise<ServiceProbe>((_, reject) => { asked++; release = () => reject(new Error('status timed out')); });
    await memo.probe('a', 's', table(), slow);
    await memo.probe('b', 's', table(), slow);
    assert.equal(asked, 3, 'b waits for a later List');
    release();
    await settle();
    await memo.probe('a', 's', table(), ask);
    assert.equal(asked, 4, 'the failed refresh left nothing to reuse: asked at once');
  });

  it('forgets a removed container', async () => {
    await memo.probe('web', 'httpd', table(), ask);
    memo.forget('web');
    await memo.probe('web', 'httpd', table(), ask);
    assert.equal(asked, 2);
  });
});
