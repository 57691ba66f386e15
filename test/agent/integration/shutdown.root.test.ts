import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess } from '../../support/agent-process.js';
import { makeBusyboxTarball } from '../../support/busybox-base.js';
import { healthClient, unary } from '../../support/grpc.js';
import { mountsUnder, processesRootedUnder } from '../../support/host-state.js';

/**
 * A service whose rc stop waits while /etc/slow-stop exists (bounded: 60 s),
 * so a test can hold a stop in flight for as long as it needs, by a file, not a timer.
 */
const SLOW_SCRIPT = `#!/bin/sh
case "$1" in
start) touch /var/run/slow.on; exit 0 ;;
stop) i=0; while [ -e /etc/slow-stop ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done; rm -f /var/run/slow.on; exit 0 ;;
status) [ -e /var/run/slow.on ] && exit 0; exit 3 ;;
esac
exit 2
`;

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  return p.then(() => { throw new Error('expected the call to fail'); }, (e: grpc.ServiceError) => e);
}

/**
 * The agent serves while it recovers, answers busy containers at once, and on
 * SIGTERM takes no new changes, answers the calls it cannot finish in words,
 * and leaves them for the next start, which finishes them in the background.
 */
describe('qfleetd: busy containers, SIGTERM and background recovery, for real @root', function () {
  this.timeout(180_000);
  let dir: string;
  let agent: AgentProcess;
  const root = (name: string) => join(agent.rootDir, 'containers', name);
  const state = (list: { containers: Array<{ name: string; state: string; reason: string }> }, name: string) =>
    list.containers.find((c) => c.name === name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-shutdown-'));
    const tarball = await makeBusyboxTarball(join(dir, 'base-work'), join(dir, 'base.tar.gz'));
    agent = new AgentProcess(join(dir, 'agent'));
    await agent.start(['--shutdown-grace-seconds', '2']);
    await new Promise<void>((resolve, reject) => {
      const s = agent.client.Install({ source: tarball, method: 'INSTALL_METHOD_TARBALL' });
      s.on('data', () => undefined);
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    for (const n of ['slow1', 'calm1']) await unary(agent.client, 'Create', { name: n });
    writeFileSync(join(root('slow1'), 'etc/init.d/slow'), SLOW_SCRIPT);
    chmodSync(join(root('slow1'), 'etc/init.d/slow'), 0o755);
    await unary(agent.client, 'Configure', { name: 'slow1', services: ['slow'] });
    const started = await unary(agent.client, 'Start', { names: ['slow1'] });
    assert.equal(started.results[0].outcome, 'OUTCOME_STARTED', started.results[0].message);
  });

  after(async () => {
    try {
      rmSync(join(root('slow1'), 'etc/slow-stop'), { force: true });
      await agent?.stop();
    } finally {
      for (const t of mountsUnder(dir).reverse()) await execa('umount', ['-l', t], { reject: false });
      for (const pid of processesRootedUnder(dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stop in flight: list shows it stopping, another command answers ABORTED at once saying so', async () => {
    writeFileSync(join(root('slow1'), 'etc/slow-stop'), '');
    const stopping = failure(unary(agent.client, 'Stop', { names: ['slow1'], requestId: 'req-slow-stop' }, 120_000));
    const list = await until('slow1 to show stopping', async () => {
      const l = await unary(agent.client, 'List', {}, 5000);
      return state(l, 'slow1')?.state === 'STATE_STOPPING' ? l : undefined;
    });
    assert.match(state(list, 'slow1')!.reason, /^stopping since \S+ \(request req-slow-stop\)$/);
    assert.equal(state(list, 'calm1')?.state, 'STATE_STOPPED');
    const started = await unary(agent.client, 'Start', { names: ['slow1'] }, 5000);
    assert.equal(started.results[0].outcome, 'OUTCOME_FAILED');
    assert.match(started.results[0].message, /slow1 is busy stopping since \S+ \(request req-slow-stop\); try again when that is done/);
    const del = await failure(unary(agent.client, 'Delete', { names: ['slow1'] }, 5000));
    assert.equal(del.code, grpc.status.ABORTED);
    assert.match(del.details, /slow1 \(busy stopping since/);

    // SIGTERM while the stop still waits on its rc script.
    agent.signal('SIGTERM');
    await until('the agent to say it is shutting down', async () =>
      existsSync(agent.logFile) && readFileSync(agent.logFile, 'utf8').includes('qfleetd shutting down') ? true : undefined, 10_000);
    const refused = await failure(unary(agent.client, 'Create', { name: 'late1' }, 5000));
    assert.equal(refused.code, grpc.status.UNAVAILABLE);
    assert.match(refused.details, /shutting down and takes no new Create/);
    const h = healthClient(`unix:${agent.socket}`);
    assert.equal((await unary<{ status: string }>(h, 'check', { service: '' }, 5000)).status, 'NOT_SERVING');
    h.close();

    const cut = await stopping;
    assert.equal(cut.code, grpc.status.UNAVAILABLE);
    assert.match(cut.details, /shutting down: the Stop of slow1 did not finish within 2 s\. .*when the agent starts again the stop is finished/);
    await Promise.race([agent.exited, new Promise((_, rej) => setTimeout(() => rej(new Error('agent did not exit')), 15_000))]);
    // The log file is appended asynchronously; the lines logged just before exit still reach it.
    const cutLine = readFileSync(agent.logFile, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('calls cut short by shutdown'));
    assert.deepEqual(cutLine?.calls, [{ method: 'Stop', names: ['slow1'] }]);
    const rec = JSON.parse(readFileSync(join(agent.stateDir, 'slow1.json'), 'utf8'));
    assert.equal(rec.pending?.op, 'stop', 'the interrupted stop is marked for recovery');
  });

  it('restarted, it serves at once; the interrupted stop is recovered in the background, its container busy meanwhile', async () => {
    // The rc stop still blocks on /etc/slow-stop, so recovery cannot finish until the test lets it.
    await agent.start(['--shutdown-grace-seconds', '2']);
    const h = healthClient(`unix:${agent.socket}`);
    assert.equal((await unary<{ status: string }>(h, 'check', { service: '' }, 5000)).status, 'SERVING');
    h.close();
    const list = await unary(agent.client, 'List', {}, 5000);
    assert.equal(state(list, 'slow1')?.state, 'STATE_RECOVERING');
    assert.equal(state(list, 'calm1')?.state, 'STATE_STOPPED');
    const busy = await unary(agent.client, 'Stop', { names: ['slow1'] }, 5000);
    assert.match(busy.results[0].message, /slow1 is busy recovering since/);
    // The other container works as usual meanwhile.
    assert.equal((await unary(agent.client, 'Start', { names: ['calm1'] }, 5000)).results[0].outcome, 'OUTCOME_BYPASSED');

    rmSync(join(root('slow1'), 'etc/slow-stop'));
    await until('slow1 to be stopped', async () => {
      const l = await unary(agent.client, 'List', {}, 5000);
      return state(l, 'slow1')?.state === 'STATE_STOPPED' ? true : undefined;
    });
    const rec = JSON.parse(readFileSync(join(agent.stateDir, 'slow1.json'), 'utf8'));
    assert.equal(rec.pending, undefined);
    assert.equal(rec.desired, 'stopped');
    assert.deepEqual(mountsUnder(root('slow1')), []);
  });

  it('an idle agent on SIGTERM exits at once, its last log lines written to its log file first', async () => {
    const before = readFileSync(agent.logFile, 'utf8').split('qfleetd shutting down').length;
    agent.closeClient(); // no connection open: nothing holds the exit back while the last line is being appended
    await new Promise((r) => setTimeout(r, 200));
    await agent.stop();
    assert.equal(readFileSync(agent.logFile, 'utf8').split('qfleetd shutting down').length, before + 1);
  });
});
