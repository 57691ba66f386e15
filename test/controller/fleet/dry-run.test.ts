import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentProto } from '../../../proto/loader.js';
import type { ContainerResult__Output } from '../../../proto/gen/qfleet/agent/v1/ContainerResult.js';
import { resultSteps } from '../../../controller/fleet/dry-run.js';
import { qfleet, writeInventory } from '../support/agents.js';

/**
 * An agent before API revision 2 ignores validate_only and would act: --dry-run
 * asks its Version first and sends it nothing else.
 */
describe('--dry-run against an agent that predates validate_only', function () {
  this.timeout(30_000);
  let dir: string;
  let server: grpc.Server;
  const asked: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-oldagent-'));
    const socket = join(dir, 'run/old.sock');
    mkdirSync(join(dir, 'run'));
    const { proto } = loadAgentProto();
    server = new grpc.Server();
    const record = (method: string) => (call: { request: unknown }, cb: grpc.sendUnaryData<unknown>) => {
      asked.push(method);
      cb(null, {});
    };
    server.addService(proto.qfleet.agent.v1.AgentService.service, {
      Version: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { agentVersion: '0.0.9', apiRevision: 1 }),
      Start: record('Start'), Stop: record('Stop'), Delete: record('Delete'), Create: record('Create'), Configure: record('Configure'), List: record('List'),
    } as unknown as grpc.UntypedServiceImplementation);
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    writeInventory(join(dir, 'hosts.yml'), `old:\n  hosts:\n    old1:\n      qfleet_connection: local\n      qfleet_agent_socket_path: ${socket}\n`);
  });
  after(() => {
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const args of [['stop', '-A'], ['delete', 'web1'], ['create', 'web1'], ['config', 'web1', 'httpd']]) {
    it(`${args[0]}: says so, exits 1, and asks nothing but Version`, async () => {
      const r = await qfleet(['--inventory', join(dir, 'hosts.yml'), '--dry-run', ...args]);
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(r.stdout, /^old1\s+.*qfleetd 0\.0\.9 \(API 1\) cannot answer --dry-run \(API 2\); nothing was asked of it$/m);
      assert.deepEqual(asked, []);
    });
  }
});

describe('--dry-run steps from the agent\'s validate-only results', () => {
  const r = (name: string, outcome: string, message: string, state = 'STATE_STOPPED', error: unknown = null) =>
    ({ name, outcome, message, state, error }) as unknown as ContainerResult__Output;

  it('ACTION from the outcome, STATE as the agent found it, PROBLEM and reason from a failure', () => {
    assert.deepEqual(resultSteps('start', [
      r('web1', 'OUTCOME_WOULD_CHANGE', 'start httpd sshd'),
      r('web2', 'OUTCOME_ALREADY_STARTED', 'Error; Chroot is already started.', 'STATE_RUNNING'),
      r('bare', 'OUTCOME_BYPASSED', 'Bypassed; No service configured yet'),
      r('web3', 'OUTCOME_FAILED', 'Error; web3 is broken (x); stop it to clean up, then start it.', 'STATE_UNSPECIFIED',
        { reason: 'REASON_BROKEN', fields: { container: 'web3', state: 'broken' } }),
    ]), [
      { container: 'web1', state: 'stopped', action: 'start httpd sshd', problem: '' },
      { container: 'web2', state: 'running', action: 'none (already started)', problem: '' },
      { container: 'bare', state: 'stopped', action: 'none (no service configured)', problem: '' },
      { container: 'web3', state: 'broken', action: 'start', problem: 'Error; web3 is broken (x); stop it to clean up, then start it.', reason: 'broken' },
    ]);
  });
});
