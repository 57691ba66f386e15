import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type ContainerResult } from '../../../agent/engine/engine.js';
import { asQfleetError } from '../../../agent/errors.js';
import { StateStore } from '../../../agent/engine/state-store.js';
import { instantClock } from '../../support/instant-clock.js';
import { silentLogger } from '../../../agent/log.js';
import { MemoryHost } from '../../support/memory-host.js';
import { gate } from './gate.js';


/** Every file and directory under `dir`, with the files' contents. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) {
        out.push(`${p}/`);
        walk(p);
      } else out.push(`${p}: ${readFileSync(p, 'utf8')}`);
    }
  };
  walk(dir);
  return out;
}

/** What a call ended with, in a form two calls can be compared by: the error's kind, reason, fields and words, or the results. */
async function settle<T>(p: Promise<T>): Promise<{ error?: { kind: string; reason: string; fields: Record<string, string>; message: string }; value?: T }> {
  try {
    return { value: await p };
  } catch (e) {
    const q = asQfleetError(e);
    return { error: { kind: q.kind, reason: q.reason, fields: { ...q.fields }, message: q.message } };
  }
}

/** A validate-only answer against the real call's: a would-change is the change, everything else reads the same. */
const CHANGE: Record<string, string> = { started: 'would-change', stopped: 'would-change', deleted: 'would-change' };
const asPlanned = (rs: readonly ContainerResult[]) => rs.map((r) => ({ ...r, outcome: CHANGE[r.outcome] ?? r.outcome, message: CHANGE[r.outcome] ? '(change)' : r.message }));
const withoutPlan = (rs: readonly ContainerResult[]) => rs.map((r) => ({ ...r, message: r.outcome === 'would-change' ? '(change)' : r.message }));

describe('Engine with validateOnly: the same checks, no change', () => {
  let dir: string;
  let host: MemoryHost;
  let store: StateStore;
  let engine: Engine;
  const V = { validateOnly: true };
  const spec = { method: 'directory' as const, source: '/base', mirror: '' };

  /** Everything the host and the agent hold: files, mounts, processes, and the changing calls made. */
  const world = () => JSON.stringify({ files: tree(dir), mounts: host.table, procs: [...host.procs], calls: host.calls, installed: host.installed });

  /**
   * Runs the validate-only call, checks it changed nothing, then the real call,
   * and returns both endings.
   */
  async function both<T, U = T>(validate: () => Promise<T>, real: () => Promise<U>) {
    const before = world();
    const planned = await settle(validate());
    assert.equal(world(), before, 'validate-only changed nothing');
    const done = await settle(real());
    return { planned, done };
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-validate-'));
    host = new MemoryHost(join(dir, 'root'));
    store = new StateStore(join(dir, 'state'));
    engine = new Engine({ driver: host, store, clock: instantClock(), log: silentLogger, stopGraceMs: 1000 });
    await engine.install(spec, false, () => undefined);
    await engine.create('web1');
    await engine.configure('web1', ['httpd']);
    await engine.create('bare');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('refuses exactly as the real call', () => {
    const cases: Array<[string, (e: Engine, o: { validateOnly?: boolean }) => Promise<unknown>, string]> = [
      ['create of an existing name', (e, o) => e.create('web1', undefined, o), 'already-exists'],
      ['create of an invalid name', (e, o) => e.create('../x', undefined, o), 'name-invalid'],
      ['configure with a service that has no rc script', (e, o) => e.configure('web1', ['nginx'], undefined, o), 'no-service-script'],
      ['configure of a missing container', (e, o) => e.configure('nope', [], undefined, o), 'not-found'],
      ['start of a missing container', (e, o) => e.start({ names: ['web1', 'nope'], all: false }, undefined, o), 'not-found'],
      ['start with names and -A', (e, o) => e.start({ names: ['web1'], all: true }, undefined, o), 'invalid-argument'],
      ['stop with a grace period out of range', (e, o) => e.stop({ names: ['web1'], all: false }, 7_200_000, undefined, o), 'invalid-argument'],
    ];
    for (const [what, call, reason] of cases) {
      it(what, async () => {
        const { planned, done } = await both(() => call(engine, V), () => call(engine, {}));
        assert.equal(planned.error?.reason, reason);
        assert.deepEqual(planned.error, done.error);
      });
    }

    it('create before install: no base', async () => {
      host.installed = undefined;
      const { planned, done } = await both(() => engine.create('web2', undefined, V), () => engine.create('web2'));
      assert.equal(planned.error?.reason, 'no-base');
      assert.deepEqual(planned.error, done.error);
    });

    it('delete of a running container, with which one in the fields', async () => {
      await engine.start({ names: ['web1'], all: false });
      const { planned, done } = await both(() => engine.delete({ names: ['bare', 'web1'], all: false }, undefined, V), () => engine.delete({ names: ['bare', 'web1'], all: false }));
      assert.deepEqual(planned.error && [planned.error.kind, planned.error.reason, planned.error.fields], ['failed-precondition', 'running', { containers: 'web1' }]);
      assert.deepEqual(planned.error, done.error);
      assert.deepEqual(await store.names(), ['bare', 'web1'], 'the real delete deleted nothing either');
    });

    it('start of a stopped container that is broken (a stray process): failed, reason broken', async () => {
      host.spawnStray('web1');
      const { planned, done } = await both(() => engine.start({ names: ['web1'], all: false }, undefined, V), () => engine.start({ names: ['web1'], all: false }));
      assert.equal(planned.value?.[0]?.outcome, 'failed');
      assert.equal(planned.value?.[0]?.error?.reason, 'broken');
      assert.deepEqual(planned.value, done.value);
    });

    it('exec in a stopped container, and console in a started one', async () => {
      const exec = await both(() => engine.validateExec('web1', ['true']), () => engine.exec('web1', ['true'], { tty: false, env: {} }));
      assert.deepEqual(exec.planned.error && [exec.planned.error.reason, exec.planned.error.fields], ['stopped', { container: 'web1', state: 'stopped' }]);
      assert.deepEqual(exec.planned.error, exec.done.error);
      await engine.start({ names: ['web1'], all: false });
      const console = await both(() => engine.validateConsole('web1'), () => engine.console('web1', { tty: true, env: {} }));
      assert.equal(console.planned.error?.reason, 'running');
      assert.deepEqual(console.planned.error, console.done.error);
    });
  });

  describe('answers what the real call then does', () => {
    it('start: would start the configured services, bypass a bare container; then the start does so', async () => {
      const { planned, done } = await both(
        () => engine.start({ names: ['bare', 'web1'], all: false }, undefined, V),
        () => engine.start({ names: ['bare', 'web1'], all: false }),
      );
      assert.deepEqual(planned.value, [
        { name: 'bare', outcome: 'bypassed', message: 'Bypassed; No service configured yet', state: 'stopped' },
        { name: 'web1', outcome: 'would-change', message: 'start httpd', state: 'stopped' },
      ]);
      // The real bypass does not look at the state (nothing to do); the rest is the same.
      assert.deepEqual(withoutPlan(planned.value!).map(({ state: _s, ...r }) => r), asPlanned(done.value!).map(({ state: _s, ...r }) => r));
    });

    it('start and stop of a started container: already started; would stop', async () => {
      await engine.start({ names: ['web1'], all: false });
      const start = await both(() => engine.start({ names: ['web1'], all: false }, undefined, V), () => engine.start({ names: ['web1'], all: false }));
      assert.deepEqual(start.planned.value, start.done.value);
      assert.equal(start.planned.value?.[0]?.outcome, 'already-started');
      const stop = await both(() => engine.stop({ names: ['web1'], all: false }, undefined, undefined, V), () => engine.stop({ names: ['web1'], all: false }, undefined));
      assert.deepEqual(stop.planned.value, [{ name: 'web1', outcome: 'would-change', message: 'stop', state: 'running' }]);
      assert.deepEqual(withoutPlan(stop.planned.value!), asPlanned(stop.done.value!));
    });

    it('delete -A of stopped containers: would delete each; then they are deleted', async () => {
      const { planned, done } = await both(() => engine.delete({ names: [], all: true }, undefined, V), () => engine.delete({ names: [], all: true }));
      assert.deepEqual(planned.value?.map((r) => [r.name, r.outcome, r.state]), [['bare', 'would-change', 'stopped'], ['web1', 'would-change', 'stopped']]);
      assert.deepEqual(done.value?.map((r) => r.outcome), ['deleted', 'deleted']);
    });

    it('create: the container it would make, with the installed release; then create makes it there', async () => {
      const { planned, done } = await both(() => engine.create('web2', undefined, V), () => engine.create('web2'));
      assert.equal(planned.value?.path, done.value?.path);
      assert.equal(planned.value?.baseRelease, 'debian 12');
      assert.equal(planned.value?.createdAt, undefined, 'it does not exist');
    });

    it('configure: the container with the services it would have', async () => {
      const { planned } = await both(() => engine.configure('web1', ['sshd', 'httpd'], undefined, V), () => engine.configure('web1', ['sshd', 'httpd']));
      assert.deepEqual(planned.value?.services, [{ name: 'sshd', running: false }, { name: 'httpd', running: false }]);
      assert.deepEqual((await engine.get('web1')).services.map((s) => s.name), ['sshd', 'httpd'], 'the real configure did it');
    });

    it('console of a stopped container: the container, and nothing is mounted', async () => {
      const before = world();
      const view = await engine.validateConsole('web1');
      assert.equal(view.state, 'stopped');
      assert.equal(world(), before);
    });

    it('install: nothing is fetched or unpacked', async () => {
      const before = world();
      assert.deepEqual(await engine.install(spec, false, () => assert.fail('no progress: nothing happens'), V), { baseRelease: '', notes: [] });
      assert.equal(world(), before);
    });
  });

  describe('locks', () => {
    it('a container held by an operation: the same busy refusal, and the holder is not disturbed', async () => {
      const orig = host.mountContainer.bind(host);
      const g = gate();
      host.mountContainer = async (n: string) => { await g.pass(); return orig(n); };
      const started = engine.start({ names: ['web1'], all: false }, 'req-1');
      await g.reached;
      const [planned] = await engine.start({ names: ['web1'], all: false }, undefined, V);
      assert.equal(planned?.outcome, 'failed');
      assert.equal(planned?.error?.reason, 'busy');
      assert.deepEqual(planned?.error?.fields, { container: 'web1', op: 'starting', since: '2026-11-23T12:00:00.000Z', request_id: 'req-1' });
      await assert.rejects(engine.validateConsole('web1'), (e: Error) => asQfleetError(e).reason === 'busy');
      g.open();
      assert.equal((await started)[0]?.outcome, 'started');
    });

    it('takes no lock: a real call made while a validate-only one is checking goes ahead', async () => {
      const orig = host.mounts.bind(host);
      const g = gate();
      host.mounts = async () => { host.mounts = orig; await g.pass(); return orig(); };
      const planned = engine.start({ names: ['web1'], all: false }, undefined, V);
      await g.reached;
      const [real] = await engine.start({ names: ['web1'], all: false });
      assert.equal(real?.outcome, 'started');
      g.open();
      await planned;
    });

    it('install while a create copies the template: refused the same way', async () => {
      const orig = host.createContainer.bind(host);
      const g = gate();
      host.createContainer = async (n: string) => { await g.pass(); return orig(n); };
      const created = engine.create('web3');
      await g.reached;
      const planned = await settle(engine.install(spec, false, () => undefined, V));
      const done = await settle(engine.install(spec, false, () => undefined));
      assert.equal(planned.error?.reason, 'busy');
      assert.deepEqual(planned.error, done.error);
      g.open();
      await created;
    });
  });
});
