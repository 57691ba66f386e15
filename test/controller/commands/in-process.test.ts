import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../controller/main.js';
import type { ClientFactory } from '../../../controller/transport/factory.js';
import type { Clock } from '../../../controller/fleet/clock.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';

/**
 * The CLI in process with fake agents and an injected clock: a hanging host
 * is timed out by the clock the test moves, not by waiting.
 */
describe('qfleet in process with fake agents and an injected clock', () => {
  let dir: string;
  let inventory: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-inproc-'));
    inventory = join(dir, 'hosts.yml');
    writeFileSync(inventory, 'fleet:\n  hosts:\n    web[1:3]:\n    slow:\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => { process.exitCode = undefined; });

  const container = (name: string) => ({ name, state: 'STATE_RUNNING', reason: '', services: [], mounts: [], baseRelease: 'debian 12', createTime: null, diskUsageBytes: '0', path: `/c/${name}` });

  /** web1..3 answer List at once with one container each; `slow` never answers. */
  const factory: ClientFactory = (h) =>
    ({
      List: (_req: unknown, _meta: grpc.Metadata, _opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => {
        if (h.name !== 'slow') setImmediate(() => cb(null, { containers: [container(`c-${h.name}`)] }));
        return { cancel: () => undefined };
      },
      close: () => undefined,
    }) as unknown as AgentServiceClient;

  it('lists the hosts that answer and marks the hanging one timed out when the clock passes its deadline', async () => {
    const timers: { at: number; fn: () => void }[] = [];
    let now = 0;
    const clock: Clock = { now: () => now, setTimeout: (fn, ms) => timers.push({ at: now + ms, fn }), clearTimeout: () => undefined };
    const out: string[] = [];
    const program = buildProgram({ factory, clock, env: { QFLEET_INVENTORY: inventory }, out: (t) => out.push(t), err: (t) => out.push(`ERR ${t}`), stderrIsTTY: false });
    const run = program.parseAsync(['node', 'qfleet', '--timeout', '5', 'list']);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(out.length, 0, 'nothing printed while a host is still within its deadline');
    now = 5000;
    for (const t of timers.filter((x) => x.at <= now)) t.fn();
    await run;
    assert.equal(process.exitCode, 1);
    const text = out.join('\n');
    assert.deepEqual(text.split('\n').slice(1, 4).map((l) => l.split(/\s+/).slice(0, 2)), [['web1', 'c-web1'], ['web2', 'c-web2'], ['web3', 'c-web3']]);
    assert.match(text, /^3 of 4 hosts answered; not answering: slow \(timed out: no answer within 5s\)\.$/m);
  });

  it('sends one request id with every host\'s call of a command, so each agent\'s log can be matched to it', async () => {
    const seen: string[] = [];
    const recording: ClientFactory = (h) =>
      ({
        Create: (req: { requestId: string; name: string }, _meta: grpc.Metadata, _opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: unknown) => void) => {
          seen.push(req.requestId);
          setImmediate(() => cb(null, { container: container(`${req.name}@${h.name}`) }));
          return { cancel: () => undefined };
        },
        close: () => undefined,
      }) as unknown as AgentServiceClient;
    writeFileSync(join(dir, 'three.yml'), 'all:\n  hosts:\n    web[1:3]:\n');
    const program = buildProgram({ factory: recording, env: {}, out: () => undefined, err: () => undefined });
    await program.parseAsync(['node', 'qfleet', '-i', join(dir, 'three.yml'), '--json', 'create', 'c1']);
    assert.equal(seen.length, 3);
    assert.ok(seen[0]);
    assert.deepEqual(new Set(seen).size, 1, JSON.stringify(seen));
  });

  it("warns about an inventory's unexpected keys on stderr, as Ansible does, and keeps --json output clean", async () => {
    const file = join(dir, 'odd.yml');
    writeFileSync(file, 'all:\n  hosts:\n    web1:\n  hostz:\n    web9:\n');
    for (const json of [false, true]) {
      const out: string[] = [];
      const program = buildProgram({ factory, env: {}, out: (t) => out.push(t), err: (t) => out.push(`ERR ${t}`), stderrIsTTY: false });
      await program.parseAsync(['node', 'qfleet', '-i', file, ...(json ? ['--json'] : []), 'list']);
      const warnings = out.filter((l) => /^ERR qfleet: warning: .*odd\.yml: skipping unexpected key "hostz" in group all/.test(l));
      assert.equal(warnings.length, json ? 0 : 1, json ? '--json' : 'text');
    }
  });

  it('exits 0 when every host answers, with --forks 1 as well', async () => {
    const out: string[] = [];
    writeFileSync(join(dir, 'quick.yml'), 'all:\n  hosts:\n    web[1:3]:\n');
    const program = buildProgram({ factory, env: {}, out: (t) => out.push(t), err: (t) => out.push(`ERR ${t}`) });
    await program.parseAsync(['node', 'qfleet', '-i', join(dir, 'quick.yml'), '--forks', '1', '--json', 'list']);
    assert.equal(process.exitCode, 0);
    assert.deepEqual((JSON.parse(out.join('')) as { host: string; status: string }[]).map((h) => `${h.host}:${h.status}`), ['web1:ok', 'web2:ok', 'web3:ok']);
  });

  it('list where no host answers says so, and never "No chroot containers."', async () => {
    const down: ClientFactory = () =>
      ({
        List: (_req: unknown, _meta: grpc.Metadata, _opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => {
          setImmediate(() => cb(Object.assign(new Error('14 UNAVAILABLE: connect ECONNREFUSED'), { code: grpc.status.UNAVAILABLE, details: 'connect ECONNREFUSED', metadata: new grpc.Metadata() })));
          return { cancel: () => undefined };
        },
        close: () => undefined,
      }) as unknown as AgentServiceClient;
    const out: string[] = [];
    writeFileSync(join(dir, 'down.yml'), 'all:\n  hosts:\n    web[1:2]:\n');
    await buildProgram({ factory: down, env: {}, out: (t) => out.push(t), err: (t) => out.push(`ERR ${t}`), stderrIsTTY: false })
      .parseAsync(['node', 'qfleet', '-i', join(dir, 'down.yml'), 'list']);
    assert.equal(process.exitCode, 1);
    assert.deepEqual(out, ['No host answered (0 of 2); not answering: web1 (unreachable: connect ECONNREFUSED), web2 (unreachable: connect ECONNREFUSED).']);
  });

  it('refuses counts and durations out of their documented bounds as usage errors, naming the range', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--forks', '0', 'list'], /^qfleet: --forks must be a whole number from 1 to 1000, not "0"/],
      [['--forks', '1001', 'list'], /--forks must be a whole number from 1 to 1000/],
      [['--forks', '2.5', 'list'], /--forks must be a whole number/],
      [['--timeout', 'soon', 'list'], /^qfleet: --timeout must be seconds, more than 0 and at most 86400, not "soon"/],
      [['--timeout', '0', 'list'], /--timeout must be seconds, more than 0/],
      [['--timeout', '86401', 'list'], /at most 86400/],
      [['stop', '--grace', '3601', 'web1'], /^qfleet: --grace must be whole seconds, 1 to 3600, not "3601"/],
      [['stop', '--grace', '0', 'web1'], /--grace must be whole seconds, 1 to 3600/],
      [['stop', '--grace', '1.5', 'web1'], /--grace must be whole seconds/],
    ];
    for (const [args, want] of cases) {
      const out: string[] = [];
      await buildProgram({ factory, env: { QFLEET_INVENTORY: inventory }, out: (t) => out.push(t), err: (t) => out.push(t) }).parseAsync(['node', 'qfleet', ...args]);
      assert.equal(process.exitCode, 2, args.join(' '));
      assert.match(out.join('\n'), want, args.join(' '));
    }
  });
});
