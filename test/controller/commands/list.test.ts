import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessAgent, qfleet, startHangingAgent, writeInventory } from '../support/agents.js';

/**
 * The real `qfleet list` CLI against three real agents (in-process servers on
 * temporary unix sockets, reached through the inventory's qfleet_connection: local and qfleet_agent_socket_path), plus
 * a host with nothing listening and a host that never answers.
 */
describe('qfleet list over a fleet (real CLI, real agents on unix sockets)', function () {
  this.timeout(60_000);
  let dir: string;
  let agents: InProcessAgent[];
  let hanging: grpc.Server;
  let inventory: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-list-'));
    agents = await Promise.all(['a', 'b', 'c'].map((n) => InProcessAgent.start(join(dir, n))));
    await agents[0]!.create('web2', 'web1');
    await agents[1]!.create('db1');
    await agents[2]!.create('web1', 'xweb');
    hanging = await startHangingAgent(join(dir, 'hang/run/qfleetd.sock'));
    inventory = writeInventory(join(dir, 'hosts.yml'), `
all:
  children:
    web:
      hosts:
        host-c:
          qfleet_connection: local
          qfleet_agent_socket_path: ${agents[2]!.socket}
        host-a:
          qfleet_connection: local
          qfleet_agent_socket_path: ${agents[0]!.socket}
    db:
      hosts:
        host-b:
          qfleet_connection: local
          qfleet_agent_socket_path: ${agents[1]!.socket}
    broken:
      hosts:
        host-dead:
          qfleet_connection: local
          qfleet_agent_socket_path: ${join(dir, 'nothing-here.sock')}
        host-hang:
          qfleet_connection: local
          qfleet_agent_socket_path: ${join(dir, 'hang/run/qfleetd.sock')}
`);
  });
  after(() => {
    agents?.forEach((a) => a.stop());
    hanging?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints one table with a HOST column, sorted by host then name, and says every host answered', async () => {
    const r = await qfleet(['--inventory', inventory, '-H', 'web:db', 'list']);
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^HOST\s+NAME\s+STATE\s+ISOLATION\s+SERVICES/);
    const rows = lines.slice(1, -1).map((l) => l.split(/\s+/).slice(0, 3));
    assert.deepEqual(rows, [
      ['host-a', 'web1', 'stopped'],
      ['host-a', 'web2', 'stopped'],
      ['host-b', 'db1', 'stopped'],
      ['host-c', 'web1', 'stopped'],
      ['host-c', 'xweb', 'stopped'],
    ]);
    assert.equal(lines.at(-1), '3 of 3 hosts answered.');
  });

  it('takes the inventory from QFLEET_INVENTORY and the hosts from a pattern', async () => {
    const r = await qfleet(['-H', 'all:!broken:!host-b', 'list'], { env: { QFLEET_INVENTORY: inventory } });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n').slice(1, -1).map((l) => l.split(/\s+/)[0]), ['host-a', 'host-a', 'host-c', 'host-c']);
  });

  it('marks a host with nothing listening unreachable and one that never answers timed out, answers for the rest, exits 1', async () => {
    const r = await qfleet(['--inventory', inventory, '--timeout', '1', 'list']);
    assert.equal(r.exitCode, 1);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.filter((l) => /^host-[abc]\s/.test(l)).length, 5, 'the answering hosts are all listed');
    assert.match(lines.at(-1)!, /^3 of 5 hosts answered; not answering: host-dead \(unreachable: [^)]+\), host-hang \(timed out: no answer within 1s\)\.$/);
  });

  it('prints one JSON array of {host, status, result|error}, sorted by host', async () => {
    const r = await qfleet(['--inventory', inventory, '--timeout', '1', '--json', 'list']);
    assert.equal(r.exitCode, 1);
    const doc = JSON.parse(r.stdout) as any[];
    assert.deepEqual(doc.map((h) => [h.host, h.status]), [
      ['host-a', 'ok'], ['host-b', 'ok'], ['host-c', 'ok'], ['host-dead', 'unreachable'], ['host-hang', 'timed out'],
    ]);
    assert.deepEqual(doc[0].result.containers.map((c: any) => c.name), ['web1', 'web2']);
    assert.equal(doc[0].error, undefined);
    assert.equal(doc[3].result, undefined);
    assert.equal(typeof doc[3].error, 'string');
    assert.equal(r.stderr, '', '--json is quiet');
  });

  it('refuses an unknown host or group with exit 2, naming it', async () => {
    for (const pattern of ['host-x', 'web:&nogroup']) {
      const r = await qfleet(['--inventory', inventory, '-H', pattern, 'list']);
      assert.equal(r.exitCode, 2, pattern);
      assert.match(r.stderr, pattern === 'host-x' ? /"host-x"/ : /"nogroup"/);
      assert.equal(r.stdout, '');
    }
  });

  it('refuses an inventory that still sets the retired qfleet_socket (exit 2, before any host is contacted), saying what to rename', async () => {
    const old = writeInventory(join(dir, 'old.yml'), `all:\n  hosts:\n    host5:\n      ansible_host: 192.0.2.5\n      qfleet_socket: ${agents[0]!.socket}\n`);
    const r = await qfleet(['--inventory', old, 'list']);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stdout, '', 'no table: not even the agent behind that socket was asked');
    assert.match(r.stderr, /^qfleet: .*old\.yml: host host5: the host var qfleet_socket is no longer read .* rename it qfleet_agent_socket_path .* reached at 192\.0\.2\.5 over mutual TLS/);
  });

  it('refuses a missing inventory file and a broken one with exit 2', async () => {
    let r = await qfleet(['--inventory', join(dir, 'nope.yml'), 'list']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /cannot read the inventory .*nope\.yml: no such file/);
    r = await qfleet(['--inventory', writeInventory(join(dir, 'bad.yml'), '- a\n'), 'list']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /bad\.yml: an inventory is a mapping of groups/);
  });

  it('without an inventory, lists the local agent without a HOST column; --json has the fleet shape, the local agent its one host', async () => {
    let r = await qfleet(['--socket', agents[0]!.socket, 'list']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+STATE/);
    assert.doesNotMatch(r.stdout, /HOST|answered/);
    r = await qfleet(['--socket', agents[0]!.socket, '--json', 'list']);
    const local = JSON.parse(r.stdout) as any[];
    assert.deepEqual(local.map((h) => [h.host, h.status]), [['localhost', 'ok']], 'the local agent is one host, in the same shape as a fleet');
    assert.deepEqual(local[0].result.containers.map((c: any) => c.name), ['web1', 'web2']);
    r = await qfleet(['--socket', join(dir, 'nothing-here.sock'), 'list']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /cannot reach the agent at .*nothing-here\.sock: is qfleetd running\?/);
    r = await qfleet(['--socket', agents[0]!.socket, '-H', 'web', 'list']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /no inventory, so there is no host web/);
  });
});
