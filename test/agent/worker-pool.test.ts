import { strict as assert } from 'node:assert';
import { mapLimit } from '../../agent/worker-pool.js';

describe('the agent worker pool (mapLimit)', () => {
  it('keeps the input order and never has more than the limit in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return n * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30]);
    assert.equal(most, 2);
  });

  it('after a failure starts nothing new, and throws once the running calls have settled', async () => {
    const started: number[] = [];
    let settled = 0;
    await assert.rejects(mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      await new Promise((r) => setImmediate(r));
      settled++;
      if (n === 1) throw new Error('one failed');
    }), /one failed/);
    assert.deepEqual(started, [1, 2], 'no call began after the failure');
    assert.equal(settled, 2, 'the call running beside the failure had settled before the throw');
  });
});
