import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientFactory } from '../../../controller/transport/factory.js';
import { LOCAL_HOST_NAME } from '../../../controller/fleet/host-target.js';
import { resolveTargets, TargetError } from '../../../controller/fleet/targets.js';
import { perHostFactory, socketOf } from '../../../controller/transport/factory.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';

describe('fleet: choosing the targets', () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-targets-'));
    file = join(dir, 'hosts.yml');
    writeFileSync(file, [
      'web:', '  hosts:',
      '    web02:', '      qfleet_connection: local', '      qfleet_agent_socket_path: /tmp/w2.sock',
      '    web01:', '      ansible_host: 10.0.0.1', '      qfleet_agent_socket_path: /srv/web01/qfleetd.sock',
      'db:', '  hosts:', '    db01:', '',
    ].join('\n'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('with no inventory, the target is the local agent over the socket', () => {
    const t = resolveTargets({ socket: '/run/x.sock' }, {});
    assert.equal(t.fleet, false);
    assert.deepEqual(t.hosts.map((h) => [h.name, h.connection, socketOf(h)]), [[LOCAL_HOST_NAME, 'local', '/run/x.sock']]);
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

  it('reaches every host over mutual TLS, whatever agent paths its vars name; a unix socket only for qfleet_connection: local', () => {
    const used: string[] = [];
    const fake = (kind: string): ClientFactory => (h) => { used.push(`${kind}:${h.name}:${socketOf(h, '/s') ?? h.address}`); return {} as AgentServiceClient; };
    const f = perHostFactory(fake('tls'), fake('unix'));
    for (const h of resolveTargets({ socket: '/s', inventory: file }, {}).hosts) f(h);
    assert.deepEqual(used, ['tls:db01:db01', 'tls:web01:10.0.0.1', 'unix:web02:/tmp/w2.sock']);
  });

  it('a local connection without a socket path uses the controller\'s --socket', () => {
    const local = join(dir, 'local.yml');
    writeFileSync(local, 'all:\n  hosts:\n    here:\n      qfleet_connection: local\n');
    const [h] = resolveTargets({ socket: '/run/mine.sock', inventory: local }, {}).hosts;
    assert.equal(socketOf(h!, '/run/mine.sock'), '/run/mine.sock');
  });

  it('refuses the retired qfleet_socket var with exit-2 usage error saying what to rename it to', () => {
    const old = join(dir, 'old.yml');
    writeFileSync(old, 'all:\n  vars:\n    qfleet_socket: /run/qfleetd.sock\n  hosts:\n    host5:\n      ansible_host: 192.0.2.5\n');
    assert.throws(
      () => resolveTargets({ socket: '/s', inventory: old }, {}),
      (e: unknown) => e instanceof TargetError && /host host5: the host var qfleet_socket is no longer read/.test(e.message)
        && /rename it qfleet_agent_socket_path/.test(e.message) && /reached at 192\.0\.2\.5 over mutual TLS/.test(e.message) && /qfleet_connection: local/.test(e.message),
    );
  });

  it('refuses a qfleet_connection other than mtls or local, and a relative qfleet_agent_socket_path', () => {
    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'all:\n  hosts:\n    h1:\n      qfleet_connection: ssh\n');
    assert.throws(() => resolveTargets({ socket: '/s', inventory: bad }, {}), /qfleet_connection of h1 must be mtls .* or local .*, not "ssh"/);
    writeFileSync(bad, 'all:\n  hosts:\n    h1:\n      qfleet_agent_socket_path: run/q.sock\n');
    assert.throws(() => resolveTargets({ socket: '/s', inventory: bad }, {}), /qfleet_agent_socket_path of h1 must be an absolute path/);
    writeFileSync(bad, 'all:\n  hosts:\n    h1:\n      qfleet_connection: mtls\n');
    assert.equal(resolveTargets({ socket: '/s', inventory: bad }, {}).hosts[0]!.connection, undefined, 'mtls is the default, said explicitly');
  });
});
