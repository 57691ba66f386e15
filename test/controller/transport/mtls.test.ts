import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { agentCertNames } from '../../../controller/transport/identity.js';
import { mtlsClientFactory } from '../../../controller/transport/mtls.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import { unary } from '../../support/grpc.js';
import { startTlsAgent, type TlsAgentFixture } from '../../support/mtls.js';

const host = (name: string, address: string, agentPort: number): HostTarget => ({ name, address, agentPort, sshPort: 22, sshUser: undefined, vars: {} });

describe('controller connection to an agent over mutual TLS (mtlsClientFactory)', function () {
  this.timeout(60_000);
  let agent: TlsAgentFixture;
  const clients: grpc.Client[] = [];
  const connect = (h: HostTarget) => {
    const c = mtlsClientFactory(agent.pkiDir)(h) as unknown as grpc.Client;
    clients.push(c);
    return c;
  };
  before(async () => {
    // The agent's certificate names agent1 and 127.0.0.1, as bootstrap signs it (agentCertNames).
    agent = await startTlsAgent('agent1');
  });
  after(() => {
    for (const c of clients) c.close();
    agent?.close();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it('signs agents for the inventory name and the address dialled', () => {
    assert.deepEqual(agentCertNames({ name: 'agent1', address: '127.0.0.1' }), ['agent1', '127.0.0.1']);
    assert.deepEqual(agentCertNames({ name: 'web1', address: 'web1' }), ['web1']);
  });

  it('talks to the agent whose certificate is for this host, with the operator certificate', async () => {
    const v = await unary(connect(host('agent1', '127.0.0.1', agent.port)), 'Version', {}, 10_000);
    assert.equal(v.agentVersion, '9.9.9');
    const made = await unary(connect(host('agent1', '127.0.0.1', agent.port)), 'Create', { name: 'from-controller' }, 10_000).catch((e) => e);
    assert.notEqual(made.code, grpc.status.PERMISSION_DENIED);
  });

  it('rejects an agent whose certificate is for another host name, though the CA signed it and the address matches', async () => {
    const err = await unary(connect(host('agent2', '127.0.0.1', agent.port)), 'Version', {}, 10_000).catch((e: grpc.ServiceError) => e);
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /not for host agent2/);
  });

  it('rejects an agent whose certificate does not cover the address dialled', async () => {
    const err = await unary(connect(host('agent1', 'localhost', agent.port)), 'Version', {}, 10_000).catch((e: grpc.ServiceError) => e);
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /not for host agent1 \(localhost\)/);
  });

  it('rejects an agent whose certificate is from another CA', async () => {
    const other = await startTlsAgent('agent1');
    try {
      // The controller of `agent` trusts only its own CA; `other` has a CA of its own.
      const err = await unary(connect(host('agent1', '127.0.0.1', other.port)), 'Version', {}, 10_000).catch((e: grpc.ServiceError) => e);
      assert.equal(err.code, grpc.status.UNAVAILABLE);
    } finally {
      other.close();
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it('fails each remote host with a clear reason when there is no PKI', () => {
    const factory = mtlsClientFactory(join(agent.dir, 'no-pki'));
    assert.throws(() => factory(host('agent1', '127.0.0.1', agent.port)), /qfleet pki init/);
  });
});
