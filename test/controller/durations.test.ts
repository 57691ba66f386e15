import { strict as assert } from 'node:assert';
import { UsageError } from '../../controller/context.js';
import { boundedCount, boundedSeconds, LIMITS } from '../../controller/durations.js';

describe('operator durations and counts: documented bounds', () => {
  it('accepts the bounds themselves and anything between', () => {
    assert.equal(boundedSeconds('86400', '--timeout', LIMITS.timeoutSeconds), 86400);
    assert.equal(boundedSeconds('0.5', '--timeout', LIMITS.timeoutSeconds), 0.5);
    assert.equal(boundedSeconds('1', '--grace', LIMITS.graceSeconds, { min: 1, whole: true }), 1);
    assert.equal(boundedSeconds('3600', '--grace', LIMITS.graceSeconds, { min: 1, whole: true }), 3600);
    assert.equal(boundedCount('1', '--forks', LIMITS.forks), 1);
    assert.equal(boundedCount('1000', '--forks', LIMITS.forks), 1000);
  });

  it('refuses what is past them, empty, or not a number, as usage errors', () => {
    for (const v of ['', ' ', '0', '-1', '86400.5', 'NaN', 'Infinity', '1e9', 'soon']) {
      assert.throws(() => boundedSeconds(v, '--timeout', LIMITS.timeoutSeconds), (e: Error) => e instanceof UsageError && /--timeout must be/.test(e.message), v);
    }
    for (const v of ['0', '3601', '2.5']) assert.throws(() => boundedSeconds(v, '--grace', LIMITS.graceSeconds, { min: 1, whole: true }), /--grace/, v);
    for (const v of ['0', '1001', '1.5', '']) assert.throws(() => boundedCount(v, '--forks', LIMITS.forks), /--forks/, v);
  });
});
