import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Engine } from '../../../agent/engine/engine.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { systemClock } from '../../../agent/engine/clock.js';
import { InvalidArgumentError } from '../../../agent/errors.js';
import { silentLogger } from '../../../agent/log.js';
import type { CommandSpec, SpawnedCommand } from '../../../agent/runner/command-runner.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { MemoryHost } from '../../support/memory-host.js';
import { ref } from '../../support/container-ref.js';

/** A runner whose spawned command runs until the test ends it, recording what reached it. */
class HeldRunner extends FakeRunner {
  readonly input: string[] = [];
  readonly signals: Array<NodeJS.Signals | number> = [];
  exit: (code: number) => void = () => undefined;

  override spawn(spec: CommandSpec): SpawnedCommand {
    this.calls.push(spec);
    const stdin = new PassThrough();
    stdin.on('data', (b: Buffer) => this.input.push(b.toString()));
    let exit!: (r: { code: number | null; signal: NodeJS.Signals | null }) => void;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => { exit = r; });
    this.exit = (code) => exit({ code, signal: null });
    return { pid: 4242, stdin, stdout: new PassThrough(), stderr: new PassThrough(), kill: (s) => void this.signals.push(s), exited };
  }
}

describe('Sessions (exec and console, the engine\'s part)', () => {
  let dir: string;
  let host: MemoryHost;
  let runner: HeldRunner;
  let engine: Engine;
  const console1 = { name: 'c1', console: true, argv: [], tty: true, env: { TERM: 'vt100' } };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-sessions-'));
    host = new MemoryHost(join(dir, 'root'));
    runner = new HeldRunner();
    engine = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger, stopGraceMs: 10, runner });
    await engine.install({ method: 'directory', source: '/base', mirror: '' }, false, () => undefined);
    await engine.create('c1');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the driver\'s console command through the runner, mounted for the session and unmounted once it exits', async () => {
    const s = await engine.sessions.open(console1);
    assert.ok(s);
    assert.deepEqual(runner.calls.at(-1)?.argv, host.execSpec(ref('c1'), { argv: [], tty: true, console: true, env: {} }).argv);
    assert.equal(host.table.length, 2, 'mounted while the console is open');
    s.write(Buffer.from('ls\n'));
    runner.exit(3);
    assert.deepEqual(await s.exited, { code: 3, signal: '' });
    assert.deepEqual(runner.input, ['ls\n']);
    assert.deepEqual(host.table, [], 'unmounted after the session');
    assert.equal((await engine.get('c1')).state, 'stopped');
  });

  it('resizes the terminal through the driver, by the spawned command\'s pid, and only with a terminal', async () => {
    const s = (await engine.sessions.open(console1))!;
    s.resize(40, 120);
    s.resize(0, 120); // no size: nothing to do
    runner.exit(0);
    await s.exited;
    const plain = (await engine.sessions.open({ ...console1, tty: false }))!;
    plain.resize(50, 50);
    runner.exit(0);
    await plain.exited;
    assert.deepEqual(host.calls.filter((c) => c.startsWith('resize')), ['resize 4242 40x120']);
  });

  it('passes signals 1-64 from the client and ignores any other number', async () => {
    const s = (await engine.sessions.open(console1))!;
    for (const n of [0, 2, 65, -1]) s.signal(n);
    s.signal('SIGHUP');
    assert.deepEqual(runner.signals, [2, 'SIGHUP']);
    runner.exit(0);
    await s.exited;
  });

  it('ends a session whose client left while the container was prepared, without starting it', async () => {
    const s = await engine.sessions.open(console1, () => true);
    assert.equal(s, undefined);
    assert.deepEqual(runner.calls, []);
    assert.deepEqual(host.table, []);
    assert.equal((await engine.get('c1')).state, 'stopped');
  });

  it('refuses environment names that are not shell identifiers before touching the container', async () => {
    await assert.rejects(engine.sessions.open({ ...console1, env: { 'A=B': 'x' } }), InvalidArgumentError);
    assert.deepEqual(host.table, []);
    assert.deepEqual(runner.calls, []);
  });

  it('refuses every session on an engine given no runner, before touching the container', async () => {
    const bare = new Engine({ driver: host, store: new StateStore(join(dir, 'state')), clock: systemClock, log: silentLogger });
    await assert.rejects(bare.sessions.open(console1), /no command runner/);
    assert.deepEqual(host.table, []);
  });

  it('validates a session (validate_only) with the same checks, answering the container and starting nothing', async () => {
    const view = await engine.sessions.validate(console1);
    assert.equal(view.name, 'c1');
    assert.equal(view.state, 'stopped');
    assert.deepEqual(host.table, [], 'nothing mounted');
    assert.deepEqual(runner.calls, [], 'nothing spawned');
    await assert.rejects(engine.sessions.validate({ ...console1, env: { 'A=B': 'x' } }), InvalidArgumentError);
    await assert.rejects(engine.sessions.validate({ name: 'c1', console: false, argv: ['true'], tty: false, env: {} }), /exec needs a started chroot/);
  });

  it('refuses exec in a stopped container', async () => {
    await assert.rejects(engine.sessions.open({ name: 'c1', console: false, argv: ['true'], tty: false, env: {} }), /exec needs a started chroot/);
  });
});
