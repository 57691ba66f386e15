import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../../../controller/transport/call.js';
import type { ClientFactory } from '../../../controller/transport/factory.js';
import { classify, fanOut, type HostCall } from '../../../controller/fleet/fanout.js';
import { agentError } from '../support/agent-error.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import { NameError, type NameResolver } from '../../../controller/fleet/resolve.js';
import { localTarget } from '../../../controller/fleet/targets.js';
import { unixSocketFactory } from '../../../controller/transport/factory.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';
import { ManualClock } from '../../support/manual-clock.js';

const host = (name: string): HostTarget => ({ name, address: name, sshPort: 22, sshUser: undefined, agentPort: 7443, vars: {} });

/** A fake client: only close() is used by fan-out itself; the work decides what "answering" means. */
function fakeFactory(closed: string[]): ClientFactory {
  return (h) => ({ close: () => closed.push(h.name) }) as unknown as AgentServiceClient;
}

const serviceError = (code: grpc.status, details: string) => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
const tick = () => new Promise((r) => setImmediate(r));

describe('fleet: fan-out', () => {
  it('marks a host that hangs past its deadline timed out while the others answer promptly', async () => {
    const clock = new ManualClock();
    const closed: string[] = [];
    const answered: string[] = [];
    let abortedHang = false;
    const work = ({ host: h, signal }: HostCall) => {
      if (h.name === 'hang') {
        signal.addEventListener('abort', () => (abortedHang = true));
        return new Promise<string>(() => undefined);
      }
      answered.push(h.name);
      return Promise.resolve(`hello from ${h.name}`);
    };
    const run = fanOut([host('a'), host('hang'), host('b')], work, { factory: fakeFactory(closed), forks: 10, timeoutMs: 5000, clock });
    await tick();
    assert.deepEqual(answered, ['a', 'b'], 'the others answered without waiting for the hanging host');
    assert.equal(clock.pending, 1, 'only the hanging host is still waiting');
    clock.advance(5000);
    const out = await run;
    assert.deepEqual(out.map((o) => [o.host.name, o.status, o.result ?? o.error]), [
      ['a', 'ok', 'hello from a'],
      ['hang', 'timed out', 'no answer within 5s'],
      ['b', 'ok', 'hello from b'],
    ]);
    assert.ok(abortedHang, 'the hanging host’s work is told to give up (its calls are cancelled)');
    assert.deepEqual(closed.sort(), ['a', 'b', 'hang'], 'every client is closed');
  });

  it('never runs more than --forks hosts at once, and a slow host does not stop the queue', async () => {
    let running = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const work = ({ host: h }: HostCall) => {
      running++;
      peak = Math.max(peak, running);
      return new Promise<string>((resolve) => release.push(() => { running--; resolve(h.name); }));
    };
    const hosts = Array.from({ length: 7 }, (_, i) => host(`h${i}`));
    const run = fanOut(hosts, work, { factory: fakeFactory([]), forks: 3, timeoutMs: 60_000, clock: new ManualClock() });
    for (let i = 0; i < 7; i++) {
      await tick();
      release.shift()!();
    }
    const out = await run;
    assert.equal(peak, 3);
    assert.deepEqual(out.map((o) => o.status), Array(7).fill('ok'));
  });

  it('maps gRPC UNAVAILABLE to unreachable, DEADLINE_EXCEEDED to timed out, anything else to failed with the reason and code', async () => {
    const errs: Record<string, Error> = {
      u: serviceError(grpc.status.UNAVAILABLE, 'connect ECONNREFUSED'),
      d: serviceError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'),
      n: serviceError(grpc.status.NOT_FOUND, 'Error; no chroot container named web9.'),
      x: new Error('boom'),
    };
    const out = await fanOut(Object.keys(errs).map(host), ({ host: h }) => Promise.reject(errs[h.name]), { factory: fakeFactory([]), forks: 4, timeoutMs: 2000, clock: new ManualClock() });
    assert.deepEqual(out.map((o) => [o.status, o.error, o.code]), [
      ['unreachable', 'connect ECONNREFUSED', 'UNAVAILABLE'],
      ['timed out', 'no answer within 2s', 'DEADLINE_EXCEEDED'],
      ['failed', 'Error; no chroot container named web9.', 'NOT_FOUND'],
      ['failed', 'boom', undefined],
    ]);
  });

  it('marks a host failed when no client can be made for it, and goes on with the others', async () => {
    const factory: ClientFactory = (h) => {
      if (h.name === 'nocert') throw new Error('no certificate for nocert');
      return fakeFactory([])(h);
    };
    const out = await fanOut([host('nocert'), host('ok')], async () => 'yes', { factory, forks: 1, timeoutMs: 1000, clock: new ManualClock() });
    assert.deepEqual(out.map((o) => [o.status, o.error ?? o.result]), [['failed', 'cannot connect: no certificate for nocert'], ['ok', 'yes']]);
  });

  it('finds a real unix socket with nothing listening unreachable (through the real unix factory and a real call)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-fan-'));
    try {
      const out = await fanOut(
        [localTarget(join(dir, 'nobody.sock'))],
        ({ client, timeoutMs, signal }) => call(client, 'List', {}, timeoutMs, signal),
        { factory: unixSocketFactory(), forks: 1, timeoutMs: 10_000 },
      );
      assert.equal(out[0]!.status, 'unreachable', out[0]!.error);
      assert.match(out[0]!.error!, /No connection established|ENOENT|connect/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds 127.0.0.1 on a closed port unreachable', async () => {
    const net = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    });
    const { loadAgentProto } = await import('../../../proto/loader.js');
    const { proto } = loadAgentProto();
    const tcp: ClientFactory = (h) => new proto.qfleet.agent.v1.AgentService(`${h.address}:${h.agentPort}`, grpc.credentials.createInsecure());
    const out = await fanOut([{ ...host('closed'), address: '127.0.0.1', agentPort: port }],
      ({ client, timeoutMs, signal }) => call(client, 'Version', {}, timeoutMs, signal),
      { factory: tcp, forks: 1, timeoutMs: 10_000 });
    assert.equal(out[0]!.status, 'unreachable', out[0]!.error);
  });

  it('has ONE deadline for the whole fan-out: a host whose turn comes late gets what is left, and one whose turn never comes is not contacted', async () => {
    const clock = new ManualClock();
    const given: Record<string, number | undefined> = {};
    const work = ({ host: h, timeoutMs }: HostCall) => {
      given[h.name] = timeoutMs;
      if (h.name === 'a') return new Promise<string>((resolve) => clock.setTimeout(() => resolve('a'), 3000));
      return new Promise<string>(() => undefined);
    };
    const run = fanOut([host('a'), host('b'), host('c')], work, { factory: fakeFactory([]), forks: 1, timeoutMs: 5000, clock });
    await tick();
    clock.advance(3000);
    for (let i = 0; i < 5; i++) await tick();
    assert.deepEqual(given, { a: 5000, b: 2000 }, 'b starts when a is done, with the 2 s left');
    clock.advance(2000);
    const out = await run;
    assert.deepEqual(out.map((o) => [o.host.name, o.status, o.result ?? o.error]), [
      ['a', 'ok', 'a'],
      ['b', 'timed out', 'no answer within 5s'],
      ['c', 'timed out', 'not contacted: the 5s deadline fell before its turn (--forks 1)'],
    ]);
    assert.equal('c' in given, false, 'c was never contacted');
  });

  it('resolves the names of mutual-TLS hosts before dialling (never IPs or local hosts); a name that does not resolve is unreachable', async () => {
    const asked: string[] = [];
    const resolver: NameResolver = {
      lookup: (name) => {
        asked.push(name);
        return name === 'nowhere.example' ? Promise.reject(new NameError('ENOTFOUND')) : Promise.resolve(['192.0.2.7']);
      },
      close: () => undefined,
    };
    const dialled: string[] = [];
    const factory: ClientFactory = (h, dial) => {
      dialled.push(`${h.name}->${dial?.ip ?? h.address}`);
      return fakeFactory([])(h);
    };
    const hosts = [host('web.example'), { ...host('ip'), address: '192.0.2.9' }, { ...host('here'), connection: 'local' as const }, host('nowhere.example')];
    const out = await fanOut(hosts, async () => 'yes', { factory, forks: 4, timeoutMs: 1000, clock: new ManualClock(), resolver });
    assert.deepEqual(asked.sort(), ['nowhere.example', 'web.example']);
    assert.deepEqual(dialled.sort(), ['here->here', 'ip->192.0.2.9', 'web.example->192.0.2.7']);
    assert.deepEqual(out.map((o) => [o.host.name, o.status]), [['web.example', 'ok'], ['ip', 'ok'], ['here', 'ok'], ['nowhere.example', 'unreachable']]);
    assert.equal(out[3]!.error, 'cannot resolve nowhere.example: ENOTFOUND');
  });

  it('abandons a name lookup that never answers at the deadline (timed out), and tells the resolver to give it up', async () => {
    const clock = new ManualClock();
    let abandoned = false;
    const resolver: NameResolver = {
      lookup: (_name, signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => { abandoned = true; reject(new NameError('abandoned')); })),
      close: () => undefined,
    };
    const run = fanOut([host('dns.hangs')], async () => 'never', { factory: fakeFactory([]), forks: 1, timeoutMs: 4000, clock, resolver });
    await tick();
    clock.advance(4000);
    const out = await run;
    assert.deepEqual([out[0]!.status, out[0]!.error], ['timed out', 'dns.hangs did not resolve within 4s']);
    assert.ok(abandoned);
  });

  it('classify keeps our own deadline distinct from the agent’s errors', () => {
    assert.equal(classify(serviceError(grpc.status.INVALID_ARGUMENT, 'Error; bad name'), 1000).code, 'INVALID_ARGUMENT');
  });

  it('classify: UNAVAILABLE without a detail is a host not reached; with the agent\'s detail (shutting down) the host answered and failed', () => {
    const down = classify(agentError(grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 10.0.0.1:7443'), 1000);
    assert.equal(down.status, 'unreachable');
    const draining = classify(agentError(grpc.status.UNAVAILABLE, 'Error; qfleetd is shutting down and takes no new Start; run it again once the agent is back.', 'REASON_SHUTTING_DOWN'), 1000);
    assert.deepEqual([draining.status, draining.code], ['failed', 'UNAVAILABLE']);
    assert.match(draining.error ?? '', /shutting down/);
  });
});
