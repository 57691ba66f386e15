import { strict as assert } from 'node:assert';
import { DiskUsageBatches, parseDuLines } from '../../../agent/drivers/du-batches.js';
import { WorkQueue } from '../../../agent/drivers/work-queue.js';

const turn = () => new Promise((r) => setImmediate(r));

describe('DiskUsageBatches (many trees per du)', () => {
  /** measureMany that records each batch and answers when released (`sizes` by root; an Error fails that root). */
  function recorder(answer: (root: string) => number | Error = (r) => r.length) {
    const batches: string[][] = [];
    /** Each batch's urgency, as measureMany was told it. */
    const urgency: boolean[] = [];
    const releases: (() => void)[] = [];
    const measureMany = async (roots: readonly string[], urgent: boolean) => {
      batches.push([...roots]);
      urgency.push(urgent);
      await new Promise<void>((r) => releases.push(r));
      return new Map(roots.map((r) => [r, answer(r)]));
    };
    /** Lets every batch there is and will be start and end (a bounded number of turns). */
    const releaseAll = async () => { for (let i = 0; i < 20; i++) { await turn(); releases.splice(0).forEach((r) => r()); } };
    return { batches, urgency, measureMany, releaseAll };
  }

  it('answers the callers of a moment with one batch, each tree once however often it was asked', async () => {
    const r = recorder();
    const b = new DiskUsageBatches(new WorkQueue(1), r.measureMany);
    const asked = [b.measure('/c/a', false), b.measure('/c/bb', false), b.measure('/c/a', false)];
    await turn();
    assert.deepEqual(r.batches, [['/c/a', '/c/bb']]);
    await r.releaseAll();
    assert.deepEqual(await Promise.all(asked), [4, 5, 4]);
  });

  it('takes at most maxBatch trees at a time, and what came while one ran in the next', async () => {
    const r = recorder();
    const b = new DiskUsageBatches(new WorkQueue(1), r.measureMany, 2);
    const first = ['/a', '/b', '/c'].map((x) => b.measure(x, false));
    await turn();
    const later = b.measure('/d', false);
    assert.deepEqual(r.batches, [['/a', '/b']]);
    await r.releaseAll();
    assert.deepEqual(r.batches, [['/a', '/b'], ['/c', '/d']]);
    assert.deepEqual(await Promise.all([...first, later]), [2, 2, 2, 2]);
  });

  it('measures urgent ones (a caller waits) apart from the rest, and before those waiting; each batch told which it is', async () => {
    const r = recorder();
    const b = new DiskUsageBatches(new WorkQueue(1), r.measureMany);
    const running = b.measure('/busy', false);
    await turn();
    const refresh = b.measure('/old', false);
    const first = b.measure('/new', true);
    await r.releaseAll();
    assert.deepEqual(r.batches, [['/busy'], ['/new'], ['/old']]);
    assert.deepEqual(r.urgency, [false, true, false]);
    await Promise.all([running, refresh, first]);
  });

  it('moves a tree waiting among the rest over when it is asked for urgently: one measurement answers every caller', async () => {
    const r = recorder();
    const b = new DiskUsageBatches(new WorkQueue(1), r.measureMany);
    const running = b.measure('/busy', false);
    await turn();
    const listed = b.measure('/new', false);
    const other = b.measure('/other', false);
    const waited = b.measure('/new', true);
    await r.releaseAll();
    assert.deepEqual(r.batches, [['/busy'], ['/new'], ['/other']]);
    assert.deepEqual(await Promise.all([running, listed, other, waited]), [5, 4, 6, 4]);
  });

  it('fails only the tree that could not be measured, with its reason; a batch that throws fails its trees', async () => {
    const r = recorder((root) => (root === '/gone' ? new Error('du: cannot access /gone') : 1));
    const b = new DiskUsageBatches(new WorkQueue(1), r.measureMany);
    const [ok, gone] = [b.measure('/here', false), b.measure('/gone', false)];
    const refused = assert.rejects(gone, /cannot access \/gone/);
    await r.releaseAll();
    assert.equal(await ok, 1);
    await refused;

    const broken = new DiskUsageBatches(new WorkQueue(1), async () => { throw new Error('du timed out'); });
    await assert.rejects(broken.measure('/x', true), /du timed out/);
    const silent = new DiskUsageBatches(new WorkQueue(1), async () => new Map());
    await assert.rejects(silent.measure('/y', true), /the disk use of \/y could not be measured/);
  });
});

describe("parseDuLines (du's SIZE<TAB>PATH lines)", () => {
  it('reads NUL-ended lines by path, paths with spaces, tabs and newlines whole, in the unit given', () => {
    const out = '4096\t/r/a\u00008192\t/r/with space\ttab\nnewline\u0000';
    assert.deepEqual([...parseDuLines(out, ['/r/a', '/r/with space\ttab\nnewline'], 1)], [['/r/a', 4096], ['/r/with space\ttab\nnewline', 8192]]);
    assert.deepEqual([...parseDuLines('12\t/r/a\n', ['/r/a'], 1024, '\n')], [['/r/a', 12 * 1024]]);
  });

  it('takes only the paths it asked for, and only whole numbers', () => {
    assert.deepEqual([...parseDuLines('1\t/other\u0000x\t/r/a\u0000\u0000garbage\u0000', ['/r/a'], 1)], []);
  });
});
