import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHostSpec, resolveBootstrapTargets } from '../../../controller/bootstrap/targets.js';

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

describe('resolveBootstrapTargets (the positional targets, with or without an inventory)', () => {
  let dir: string;
  let inv: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-bs-targets-'));
    inv = join(dir, 'hosts.yml');
    writeFileSync(inv, 'web:\n  hosts:\n    web01:\n      ansible_host: 10.0.0.1\n    web02:\n      ansible_host: 10.0.0.2\ndb:\n  hosts:\n    db01:\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const names = (hs: readonly { name: string }[]) => hs.map((h) => h.name);

  it('without an inventory, the arguments are hosts; none is an error', () => {
    assert.deepEqual(names(resolveBootstrapTargets(['root@10.0.0.9', 'h2:2200'], { socket: '/s' }, {})), ['10.0.0.9', 'h2']);
    assert.throws(() => resolveBootstrapTargets([], { socket: '/s' }, {}), /no hosts: give \[user@\]address\[:port\] arguments, or --inventory FILE/);
  });

  it('takes $QFLEET_INVENTORY from the environment it is given, not from the process', () => {
    const saved = process.env.QFLEET_INVENTORY;
    process.env.QFLEET_INVENTORY = join(dir, 'not-this-one.yml');
    try {
      assert.deepEqual(names(resolveBootstrapTargets([], { socket: '/s' }, { QFLEET_INVENTORY: inv })), ['db01', 'web01', 'web02']);
      assert.deepEqual(names(resolveBootstrapTargets(['web'], { socket: '/s' }, { QFLEET_INVENTORY: inv })), ['web01', 'web02']);
      // Given no QFLEET_INVENTORY, there is none, whatever the process has.
      assert.throws(() => resolveBootstrapTargets([], { socket: '/s' }, {}), /no hosts/);
    } finally {
      if (saved === undefined) delete process.env.QFLEET_INVENTORY;
      else process.env.QFLEET_INVENTORY = saved;
    }
  });

  it('with an inventory: patterns select from it, user@host arguments are added as they are, -H when no pattern is given', () => {
    assert.deepEqual(names(resolveBootstrapTargets(['db', 'admin@192.0.2.7'], { inventory: inv, socket: '/s' }, {})), ['db01', '192.0.2.7']);
    assert.deepEqual(names(resolveBootstrapTargets(['admin@192.0.2.7'], { inventory: inv, socket: '/s' }, {})), ['192.0.2.7']);
    assert.deepEqual(names(resolveBootstrapTargets([], { inventory: inv, hosts: 'web:!web02', socket: '/s' }, {})), ['web01']);
  });
});
