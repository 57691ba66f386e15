import { strict as assert } from 'node:assert';
import { Admission } from '../../../agent/server/admission.js';
import { asQfleetError } from '../../../agent/errors.js';

describe('Admission: which changes the agent takes, and what shutdown does with those in flight', () => {
  it('drains at once when nothing is in flight, then refuses every new change with UNAVAILABLE', async () => {
    const a = new Admission();
    assert.deepEqual(await a.drain(60_000), []);
    assert.throws(() => a.admit({ method: 'Start', names: ['web1'] }), (e: Error) => {
      assert.equal(asQfleetError(e).kind, 'unavailable');
      assert.match(e.message, /shutting down and takes no new Start/);
      return true;
    });
  });

  it('waits for a call that finishes within the bound, and cuts none short', async () => {
    const a = new Admission();
    const t = a.admit({ method: 'Stop', names: ['web1'] });
    let abandoned = false;
    t.onAbandon(() => { abandoned = true; });
    const drained = a.drain(60_000);
    setImmediate(() => t.done());
    assert.deepEqual(await drained, []);
    assert.equal(abandoned, false);
  });

  it('answers a call still running at the bound, saying what the next start does with it', async () => {
    const a = new Admission();
    const t = a.admit({ method: 'Start', names: ['web1', 'web2'] });
    let told = '';
    t.onAbandon((e) => { told = e.message; });
    const cut = await a.drain(10);
    assert.deepEqual(cut, [{ method: 'Start', names: ['web1', 'web2'] }]);
    assert.match(told, /the Start of web1, web2 did not finish within 0 s\. .*the start is rolled back \(the container ends stopped\)/);
    t.done(); // late completion is harmless
  });
});
