import { strict as assert } from 'node:assert';
import { WorkQueue } from '../../../agent/drivers/work-queue.js';

describe('WorkQueue (the drivers\' disk-usage walks)', () => {
  /** A task that records its start and ends when released. */
  function gate(log: string[], name: string) {
    let release!: () => void;
    const done = new Promise<void>((r) => { release = r; });
    return { task: async () => { log.push(name); await done; return name; }, release: () => release() };
  }

  it('runs at most `limit` at once, then the urgent ones before the rest, each in order', async () => {
    const q = new WorkQueue(1);
    const log: string[] = [];
    const a = gate(log, 'a'); const b = gate(log, 'b'); const c = gate(log, 'c'); const d = gate(log, 'd');
    const results = [q.run(c.task, true), q.run(a.task), q.run(b.task), q.run(d.task, true)];
    assert.deepEqual(log, ['c']);
    assert.equal(q.waiting, 3);
    for (const g of [c, d, a, b]) { g.release(); await new Promise((r) => setImmediate(r)); }
    assert.deepEqual(await Promise.all(results), ['c', 'a', 'b', 'd']);
    assert.deepEqual(log, ['c', 'd', 'a', 'b']);
  });

  it('starts an urgent task while background work runs (never behind it), and the background waits for both', async () => {
    const q = new WorkQueue(1);
    const log: string[] = [];
    const refresh = gate(log, 'refresh'); const first = gate(log, 'first'); const second = gate(log, 'second'); const later = gate(log, 'later');
    const results = [q.run(refresh.task), q.run(first.task, true), q.run(later.task), q.run(second.task, true)];
    assert.deepEqual(log, ['refresh', 'first'], 'the urgent task went beside the running refresh');
    refresh.release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['refresh', 'first'], 'one urgent task at a time; the background waits for the urgent ones queued');
    first.release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['refresh', 'first', 'second']);
    second.release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['refresh', 'first', 'second', 'later']);
    later.release();
    assert.deepEqual(await Promise.all(results), ['refresh', 'first', 'later', 'second']);
  });

  it('passes a failure to its caller and goes on with the next task', async () => {
    const q = new WorkQueue(1);
    const failed = q.run(async () => { throw new Error('walk failed'); });
    const thrown = q.run(() => { throw new Error('threw at once'); });
    const next = q.run(async () => 'next');
    await assert.rejects(failed, /walk failed/);
    await assert.rejects(thrown, /threw at once/);
    assert.equal(await next, 'next');
  });

  it('rests between tasks that are not urgent, in proportion to their time, but not before urgent ones', async () => {
    const q = new WorkQueue(1, 20);
    const log: string[] = [];
    await q.run(async () => { await new Promise((r) => setTimeout(r, 5)); log.push('refresh 1'); });
    const later = q.run(async () => { log.push('refresh 2'); });
    const urgent = q.run(async () => { log.push('urgent'); }, true);
    await urgent;
    assert.deepEqual(log, ['refresh 1', 'urgent'], 'the second refresh rests (about 100 ms) while an urgent task goes at once');
    assert.equal(q.waiting, 1);
    await later;
    assert.deepEqual(log, ['refresh 1', 'urgent', 'refresh 2']);
  });

  it('sets a task that runs long aside, so those behind it start; at most `aside.max` at once', async () => {
    const q = new WorkQueue(1, 0, { afterMs: 10, max: 1 });
    const log: string[] = [];
    const huge = gate(log, 'huge'); const huger = gate(log, 'huger'); const small = gate(log, 'small');
    const results = [q.run(huge.task), q.run(small.task), q.run(huger.task)];
    assert.deepEqual(log, ['huge']);
    for (let i = 0; i < 400 && log.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(log, ['huge', 'small'], 'the next task started while the long one runs');
    small.release();
    await results[1];
    for (let i = 0; i < 400 && log.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(log, ['huge', 'small', 'huger']);
    await new Promise((r) => setTimeout(r, 30));
    const after = q.run(async () => { log.push('after'); return 'after'; });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['huge', 'small', 'huger'], 'a second long task keeps its place: one is aside already');
    huger.release();
    assert.equal(await after, 'after');
    huge.release();
    assert.deepEqual(await Promise.all(results), ['huge', 'small', 'huger']);
  });
});
