import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { healthCheck, mtlsHealthClient } from '../../../controller/transport/health.js';
import { startTlsAgent, type TlsAgentFixture } from '../../support/mtls.js';

describe("bootstrap's health probe over mutual TLS: the fleet commands' TLS and identity rule", function () {
  this.timeout(60_000);
  let agent: TlsAgentFixture;
  before(async () => {
    agent = await startTlsAgent('agent1');
  });
  after(() => {
    agent?.close();
    if (agent) rmSync(agent.dir, { recursive: true, force: true });
  });

  it('reads SERVING from the agent whose certificate is for this host', async () => {
    const c = mtlsHealthClient({ name: 'agent1', address: '127.0.0.1', agentPort: agent.port }, agent.pkiDir);
    try {
      assert.equal(await healthCheck(c, '', 10_000), 'SERVING');
    } finally {
      c.close();
    }
  });

  it('refuses an agent whose certificate is for another host, naming the host', async () => {
    const c = mtlsHealthClient({ name: 'agent2', address: '127.0.0.1', agentPort: agent.port }, agent.pkiDir);
    try {
      const err = await healthCheck(c, '', 10_000).then(() => undefined, (e: Error & { details?: string }) => e);
      assert.match(err?.details ?? '', /not for host agent2/);
    } finally {
      c.close();
    }
  });
});
