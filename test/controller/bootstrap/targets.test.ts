import { strict as assert } from 'node:assert';
import { parseHostSpec } from '../../../controller/bootstrap/targets.js';

describe('bootstrap host specs ([user@]address[:port])', () => {
  it('reads user, address and port', () => {
    const t = parseHostSpec('admin@10.0.0.5:2222');
    assert.deepEqual([t.name, t.address, t.sshUser, t.sshPort, t.agentPort], ['10.0.0.5', '10.0.0.5', 'admin', 2222, 7443]);
    assert.deepEqual([parseHostSpec('web1').sshPort, parseHostSpec('web1').sshUser], [22, undefined]);
    assert.equal(parseHostSpec('root@[2001:db8::1]:22').address, '2001:db8::1');
  });
  it('refuses what it cannot read', () => {
    assert.throws(() => parseHostSpec('a@b@c'), /expected \[user@\]address\[:port\]/);
    assert.throws(() => parseHostSpec('h:99999'), /bad port/);
    assert.throws(() => parseHostSpec(''), /cannot read/);
  });
});
