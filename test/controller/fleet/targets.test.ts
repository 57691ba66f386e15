import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientFactory } from '../../../controller/fleet/client-factory.js';
import { LOCAL_HOST_NAME } from '../../../controller/fleet/host-target.js';
import { resolveTargets, TargetError } from '../../../controller/fleet/targets.js';
import { perHostFactory, socketOf } from '../../../controller/fleet/transport.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';

describe('fleet: choosing the targets', () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-targets-'));
    file = join(dir, 'hosts.yml');
    writeFileSync(file, 'web:\n  hosts:\n    web02:\n      qfleet_socket: /tmp/w2.sock\n    web01:\n      ansible_host: 10.0.0.1\ndb:\n  hosts:\n    db01:\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('with no inventory, the target is the local agent over the socket', () => {
    const t = resolveTargets({ socket: '/run/x.sock' }, {});
    assert.equal(t.fleet, false);
    assert.deepEqual(t.hosts.map((h) => [h.name, socketOf(h)]), [[LOCAL_HOST_NAME, '/run/x.sock']]);
    assert.equal(resolveTargets({ socket: '/s', hosts: 'localhost' }, {}).hosts.length, 1);
  });

  it('with no inventory, -H naming any other host is a usage error', () => {
    assert.throws(() => resolveTargets({ socket: '/s', hosts: 'web01' }, {}), (e: unknown) => e instanceof TargetError && /no inventory, so there is no host web01/.test(e.message));
  });

  it('--inventory wins over QFLEET_INVENTORY; the default pattern is all; hosts come sorted', () => {
    const t = resolveTargets({ socket: '/s', inventory: file }, { QFLEET_INVENTORY: '/nonexistent' });
    assert.equal(t.fleet, true);
    assert.deepEqual(t.hosts.map((h) => h.name), ['db01', 'web01', 'web02']);
    assert.deepEqual(resolveTargets({ socket: '/s' }, { QFLEET_INVENTORY: file }).hosts.map((h) => h.name), ['db01', 'web01', 'web02']);
  });

  it('-H takes names and patterns, and an unknown one is a usage error naming it', () => {
    assert.deepEqual(resolveTargets({ socket: '/s', inventory: file, hosts: 'web:!web02' }, {}).hosts.map((h) => h.name), ['web01']);
    assert.throws(() => resolveTargets({ socket: '/s', inventory: file, hosts: 'web01,web03' }, {}), /"web03"/);
  });

  it('a pattern that leaves no host is a usage error', () => {
    assert.throws(() => resolveTargets({ socket: '/s', inventory: file, hosts: 'web:&db' }, {}), /selects no host/);
  });

  it('reaches a host with qfleet_socket over that socket, every other host through the remote (mutual TLS) factory', () => {
    const used: string[] = [];
    const fake = (kind: string): ClientFactory => (h) => { used.push(`${kind}:${h.name}`); return {} as AgentServiceClient; };
    const f = perHostFactory(fake('tls'), fake('unix'));
    for (const h of resolveTargets({ socket: '/s', inventory: file }, {}).hosts) f(h);
    assert.deepEqual(used, ['tls:db01', 'tls:web01', 'unix:web02']);
  });
});
