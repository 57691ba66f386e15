import { strict as assert } from 'node:assert';
import { childNameResolver, NameError, preferredAddress } from '../../../controller/fleet/resolve.js';

/** The real child resolver: getaddrinfo in a child process that qfleet can kill (the hanging-DNS case is in test/fleet/deadlines.root.test.ts). */
describe('fleet: host names resolved in a child process', function () {
  this.timeout(20_000);

  it('resolves a name the way the system does (/etc/hosts: localhost) and hands IP addresses back untouched', async () => {
    const r = childNameResolver();
    try {
      const addrs = await r.lookup('localhost');
      assert.ok(addrs.some((a) => a === '127.0.0.1' || a === '::1'), addrs.join(' '));
      assert.deepEqual(await r.lookup('192.0.2.1'), ['192.0.2.1']);
      assert.deepEqual(await r.lookup('fe80::1'), ['fe80::1']);
    } finally {
      r.close();
    }
  });

  it('refuses what is not a host name, and gives up a lookup whose signal aborts', async () => {
    const r = childNameResolver();
    try {
      await assert.rejects(r.lookup('a b'), NameError);
      const abort = new AbortController();
      abort.abort();
      await assert.rejects(r.lookup('localhost', abort.signal), /abandoned at the deadline/);
    } finally {
      r.close();
    }
  });

  it('dials the first IPv4 address when there is one (a broken IPv6 route is the common failure), else the first', () => {
    assert.equal(preferredAddress(['2001:db8::1', '192.0.2.1', '192.0.2.2']), '192.0.2.1');
    assert.equal(preferredAddress(['2001:db8::1', '2001:db8::2']), '2001:db8::1');
  });

  it('fails what is still pending when it is closed', async () => {
    const r = childNameResolver();
    const pending = r.lookup('localhost');
    r.close();
    await assert.rejects(pending, NameError);
  });
});
