import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../../../agent/engine/engine.js';
import { StateStore } from '../../../../agent/engine/state-store.js';
import { systemClock } from '../../../../agent/engine/clock.js';
import { silentLogger } from '../../../../agent/log.js';
import { createAgentServer, listenOnUnixSocket } from '../../../../agent/server/server.js';
import type { AgentServiceClient } from '../../../../proto/gen/qfleet/agent/v1/AgentService.js';
import { agentClient, healthClient, unary } from '../../../support/grpc.js';
import { makeRealSetup, type RealSetup } from './real-harness.js';

// The agent answers while the Linux driver walks or removes a big tree: proven
// by order, not by time. A call is started, shown to be still under way (its
// tree half measured or half removed), and health and List complete before it
// does. Were the walk synchronous, nothing else could run until it ended.

const DIRS = 100;
const FILES_PER_DIR = 1000; // 100,000 files

/** Settles with the promise, recording when it did. */
function track<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const promise = p.finally(() => { done = true; });
  promise.catch(() => undefined);
  return { promise, settled: () => done };
}

/** Polls `cond` on the event loop (every 5 ms, up to `ms`); throws when the deadline passes. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('LinuxDriver keeps the agent answering during big walks, for real @root', function () {
  this.timeout(300_000);
  let s: RealSetup;
  let server: grpc.Server;
  let client: AgentServiceClient;
  let health: grpc.Client;
  const name = 'big';
  const fill = () => join(s.driver.layout.containerRoot(name), 'fill');

  /** A health check and a List, both answered: returns List's names. */
  const healthAndList = async () => {
    const [h, l] = await Promise.all([
      unary<{ status: string }>(health, 'check', { service: '' }, 30_000),
      unary<{ containers: { name: string }[] }>(client, 'List', {}, 30_000),
    ]);
    assert.equal(h.status, 'SERVING');
    return l.containers.map((c) => c.name);
  };

  before(async () => {
    s = await makeRealSetup('qf-loop-');
    const engine = new Engine({ driver: s.driver, store: new StateStore(join(s.tmp, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 1000, runner: s.runner });
    await engine.install({ method: 'directory', source: s.baseDir, mirror: '' }, false, () => undefined);
    ({ server } = createAgentServer({ engine, log: silentLogger, agentVersion: '0.0.0' }));
    const socket = join(s.tmp, 'run/qfleetd.sock');
    await listenOnUnixSocket(server, socket);
    client = agentClient(socket);
    health = healthClient(`unix:${socket}`);
    await unary(client, 'Create', { name });
    for (let d = 0; d < DIRS; d++) {
      const dir = join(fill(), `d${String(d).padStart(3, '0')}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < FILES_PER_DIR; f++) closeSync(openSync(join(dir, `f${f}`), 'w'));
    }
  });
  after(async () => {
    client?.close();
    health?.close();
    server?.forceShutdown();
    await s?.cleanup();
  });

  it('answers health and List while the disk use of a container of 100,000 files is measured', async () => {
    const walk = track(s.driver.diskUsage(name));
    assert.equal(walk.settled(), false);
    await healthAndList();
    assert.equal(walk.settled(), false, 'health and List answered before the walk ended');
    assert.ok((await walk.promise) > DIRS * 4096, 'the hundred directories were counted');
  });

  it('answers health and List while a container of 100,000 files is being deleted', async () => {
    const del = track(unary<{ results: { outcome: string }[] }>(client, 'Delete', { names: [name] }, 300_000));
    // Under way: some of the hundred directories are gone, and not all.
    await until(() => {
      assert.ok(!del.settled() && existsSync(fill()), 'the delete ended before it could be seen under way');
      return readdirSync(fill()).length < DIRS;
    }, 120_000, 'the delete has removed a first directory');
    const left = readdirSync(fill()).length;
    assert.ok(left > 0, 'the delete was seen under way');

    const names = await healthAndList();

    assert.ok(names.includes(name), 'List shows the container being deleted');
    assert.equal(del.settled(), false, 'health and List answered before the delete ended');
    assert.ok(readdirSync(fill()).length > 0, 'files still present after they answered');
    assert.deepEqual((await del.promise).results.map((r) => r.outcome), ['OUTCOME_DELETED']);
    assert.equal(existsSync(s.driver.layout.containerRoot(name)), false);
  });
});
