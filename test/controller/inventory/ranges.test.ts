import { strict as assert } from 'node:assert';
import { expandHostRange, HostRangeError } from '../../../controller/inventory/ranges.js';

describe('inventory: host ranges', () => {
  it('leaves a plain name alone', () => assert.deepEqual(expandHostRange('web1.example.com'), ['web1.example.com']));
  it('expands without padding when the begin has no leading zero', () => assert.deepEqual(expandHostRange('w[8:11]'), ['w8', 'w9', 'w10', 'w11']));
  it('pads to the begin’s width when it has a leading zero', () => assert.deepEqual(expandHostRange('w[08:11]'), ['w08', 'w09', 'w10', 'w11']));
  it('takes an empty begin as 0', () => assert.deepEqual(expandHostRange('w[:2]'), ['w0', 'w1', 'w2']));
  it('expands several ranges, left to right', () => assert.deepEqual(expandHostRange('r[1:2]-[a:b]'), ['r1-a', 'r1-b', 'r2-a', 'r2-b']));
  it('steps letters too', () => assert.deepEqual(expandHostRange('x[a:e:2]'), ['xa', 'xc', 'xe']));
  for (const bad of ['w[1]', 'w[1:]', 'w[a:3]', 'w[1:3:0]', 'w[01:5]']) {
    it(`refuses ${bad}`, () => assert.throws(() => expandHostRange(bad), HostRangeError));
  }
});
