import { strict as assert } from 'node:assert';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_STATE_FILE_BYTES, parseRecord, STATE_CACHE_SETTLE_MS, STATE_WATCH_RECHECK_MS, StateStore, type ContainerRecord } from '../../../agent/engine/state-store.js';

/** A record as the engine writes one mid-start: every field, the optional ones included. */
const REAL: ContainerRecord = {
  version: 1,
  name: 'web1',
  services: ['httpd', 'sshd'],
  createdAt: '2026-11-23T12:00:00.000Z',
  baseRelease: '14.1-RELEASE-p5',
  desired: 'running',
  startedServices: ['httpd', 'sshd'],
  config: {
    isolation: 'namespaces', hostname: 'www', network: 'none',
    uidMap: [{ inside: 0, outside: 100000, count: 65536 }], gidMap: [{ inside: 0, outside: 100000, count: 65536 }],
    mounts: [{ kind: 'bind', source: '/srv/www', target: '/var/www', readOnly: true, sizeBytes: 0 }, { kind: 'tmpfs', source: '', target: '/tmp', readOnly: false, sizeBytes: 67108864 }],
    user: 'www', group: 'www', env: { LANG: 'C.UTF-8' }, workdir: '/var/www', limits: { memoryBytes: 536870912, cpus: 1.5, pids: 256 }, securelevel: -1,
  },
  pending: { op: 'start', since: '2026-11-23T12:05:00.000Z', requestId: '6f1c2a9e-0d4b-4c36-9a8e-3b1f2a7c5d10' },
};

/** A small deterministic PRNG (mulberry32), so a failing random case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('StateStore: one JSON file per container', () => {
  let dir: string;
  let store: StateStore;
  let realText: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-store-'));
    store = new StateStore(join(dir, 'state'));
    await store.write(REAL);
    realText = readFileSync(store.fileOf('web1'), 'utf8');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads back what it wrote, atomically: no temporary file is left', async () => {
    assert.deepEqual(await store.read('web1'), REAL);
    assert.deepEqual(readdirSync(store.dir), ['web1.json']);
  });

  it('a file truncated at every byte is either the same record (only the final newline lost) or corrupt with a reason; never a throw', () => {
    let corrupt = 0;
    for (let len = 0; len < realText.length; len++) {
      const r = parseRecord(realText.slice(0, len), 'web1');
      if (typeof r === 'string') {
        corrupt++;
        assert.ok(r.length > 0);
        if (len === 0) assert.equal(r, 'it is empty');
      } else {
        assert.equal(realText.slice(len).trim(), '', `a truncation at ${len} parsed as a record`);
        assert.deepEqual(r, REAL);
      }
    }
    assert.equal(corrupt, realText.trimEnd().length, 'every truncation that cuts into the JSON is corrupt');
  });

  it('random bytes (2,000 seeded cases) are corrupt with a reason, never a throw', () => {
    const rnd = prng(0x9f1e);
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256)));
      const r = parseRecord(bytes.toString('utf8'), 'web1');
      assert.equal(typeof r, 'string', `case ${i} parsed`);
      assert.match(r as string, /^[\x20-\x7e]{1,200}$/, `case ${i}: the reason must be short and printable`);
    }
  });

  it('a JSON value of the wrong shape names the field that is wrong', () => {
    const wrong: Array<[string, unknown]> = [
      ['version', 2], ['version', '1'], ['version', null],
      ['name', 'web2'], ['name', 7], ['name', null],
      ['services', 'httpd'], ['services', [1]], ['services', ['a b']], ['services', [null]], ['services', {}],
      ['createdAt', 'yesterday'], ['createdAt', 1732363200], ['createdAt', '2026-13-45T99:00:00Z'],
      ['baseRelease', 14], ['baseRelease', null], ['baseRelease', 'x'.repeat(300)],
      ['desired', 'paused'], ['desired', true],
      ['startedServices', null], ['startedServices', 'httpd'], ['startedServices', [['httpd']]],
      ['pending', 'start'], ['pending', []], ['pending', null],
    ];
    for (const [field, value] of wrong) {
      const r = parseRecord(JSON.stringify({ ...REAL, [field]: value }), 'web1');
      assert.equal(typeof r, 'string', `${field}=${JSON.stringify(value)} was accepted`);
      assert.match(r as string, new RegExp(`"${field}`), `${field}=${JSON.stringify(value)}: ${r}`);
    }
    for (const field of ['version', 'name', 'services', 'createdAt', 'baseRelease', 'desired', 'startedServices']) {
      const copy: Record<string, unknown> = { ...REAL };
      delete copy[field];
      assert.match(parseRecord(JSON.stringify(copy), 'web1') as string, new RegExp(`"${field}" is missing`));
    }
    for (const p of [{ op: 'reboot', since: REAL.createdAt }, { op: 'start' }, { op: 'start', since: REAL.createdAt, requestId: 5 }]) {
      assert.match(parseRecord(JSON.stringify({ ...REAL, pending: p }), 'web1') as string, /"pending\./);
    }
    for (const top of ['null', '[]', '"web1"', '42', 'true']) assert.equal(parseRecord(top, 'web1'), 'it is not a JSON object');
  });

  it('inspect tells a missing file from a corrupt one, and never follows a symlink or reads a huge file', async () => {
    assert.deepEqual(await store.inspect('nope'), { kind: 'missing' });
    writeFileSync(store.fileOf('web2'), '{"version":');
    assert.match((await store.inspect('web2') as { reason: string }).reason, /^it is not JSON/);
    writeFileSync(join(dir, 'elsewhere.json'), realText.replace('web1', 'web3'));
    symlinkSync(join(dir, 'elsewhere.json'), store.fileOf('web3'));
    assert.deepEqual(await store.inspect('web3'), { kind: 'corrupt', reason: 'it is a symlink' });
    mkdirSync(store.fileOf('web4'));
    assert.equal((await store.inspect('web4')).kind, 'corrupt');
    writeFileSync(store.fileOf('web5'), ' '.repeat(MAX_STATE_FILE_BYTES + 1));
    assert.match((await store.inspect('web5') as { reason: string }).reason, /more than a state file's/);
    await assert.rejects(store.read('web2'), /state file of web2 .* is unusable: it is not JSON.*qfleet delete web2/);
  });

  it('a file changed on disk right after a read is read again, even in place with the same size', async () => {
    assert.deepEqual(await store.read('web1'), REAL);
    // Same length, same inode, written at once: the stamps may all match the first read's, so a file this young is never kept.
    writeFileSync(store.fileOf('web1'), realText.replace('"running"', '"stopped"'));
    assert.equal(statSync(store.fileOf('web1')).size, Buffer.byteLength(realText));
    const changed = await store.read('web1');
    assert.equal(changed?.desired, 'stopped');
    writeFileSync(store.fileOf('web1'), realText.slice(0, 20));
    assert.match((await store.inspect('web1') as { reason: string }).reason, /^it is not JSON/);
  });

  it('a kept read is used only while the file is unchanged: an edit, a replacement, a symlink or a removal is seen', async () => {
    // A clock past the settling time, so what is read is kept (the same object comes back).
    const later = new StateStore(store.dir, () => Date.now() + 10 * STATE_CACHE_SETTLE_MS);
    const first = await later.inspect('web1');
    assert.equal(await later.inspect('web1'), first, 'an unchanged file is not read again');
    const file = store.fileOf('web1');
    /** Rewrites the file in place until its ctime moves on (the file system's clock ticks coarsely). */
    const rewrite = (text: string) => {
      const before = statSync(file, { bigint: true }).ctimeNs;
      for (let i = 0; i < 1000 && statSync(file, { bigint: true }).ctimeNs === before; i++) writeFileSync(file, text);
      assert.notEqual(statSync(file, { bigint: true }).ctimeNs, before);
    };
    // In place, the same size, mtime put back (as near as utimes can): ctime tells.
    const { atime, mtime } = statSync(file);
    const sameSize = realText.replace('"running"', '"stopped"');
    rewrite(sameSize);
    utimesSync(file, atime, mtime);
    assert.equal((await later.read('web1'))?.desired, 'stopped');
    // Corrupted in place.
    await later.read('web1');
    rewrite('{"version":');
    assert.match((await later.inspect('web1') as { reason: string }).reason, /^it is not JSON/);
    // Replaced by another file (a new inode).
    writeFileSync(`${file}.new`, realText);
    renameSync(`${file}.new`, file);
    assert.deepEqual(await later.read('web1'), REAL);
    // Replaced by a symlink to a good record.
    await later.read('web1');
    writeFileSync(join(dir, 'elsewhere.json'), realText);
    unlinkSync(file);
    symlinkSync(join(dir, 'elsewhere.json'), file);
    assert.deepEqual(await later.inspect('web1'), { kind: 'corrupt', reason: 'it is a symlink' });
    // Removed.
    unlinkSync(file);
    assert.deepEqual(await later.inspect('web1'), { kind: 'missing' });
    // The store's own write and remove are seen at once.
    await later.write(REAL);
    assert.deepEqual(await later.read('web1'), REAL);
    await later.write({ ...REAL, desired: 'stopped', startedServices: [] });
    assert.equal((await later.read('web1'))?.desired, 'stopped');
    await later.remove('web1');
    assert.deepEqual(await later.inspect('web1'), { kind: 'missing' });
  });

  it('inspectAll answers as inspect does, file by file, kept reads and changes alike', async () => {
    const later = new StateStore(store.dir, () => Date.now() + 10 * STATE_CACHE_SETTLE_MS);
    const names = ['web1', 'gone'];
    for (let i = 0; i < 150; i++) {
      // More than one slice of stats, and every kind of file.
      const n = `c${i}`;
      names.push(n);
      if (i % 5 === 0) writeFileSync(later.fileOf(n), '{"version":');
      else if (i % 7 === 0) symlinkSync(store.fileOf('web1'), later.fileOf(n));
      else await later.write({ ...REAL, name: n });
    }
    const each = async () => new Map(await Promise.all(names.map(async (n) => [n, await new StateStore(store.dir).inspect(n)] as const)));
    assert.deepEqual(await later.inspectAll(names), await each());
    assert.deepEqual(await later.inspectAll(names), await each(), 'the second time, from kept reads');
    writeFileSync(later.fileOf('c1'), '');
    unlinkSync(later.fileOf('c2'));
    writeFileSync(later.fileOf('c3.new'), JSON.stringify({ ...REAL, name: 'c3', desired: 'stopped' }));
    renameSync(later.fileOf('c3.new'), later.fileOf('c3'));
    const after = await later.inspectAll(names);
    assert.deepEqual(after, await each());
    assert.deepEqual(after.get('c1'), { kind: 'corrupt', reason: 'it is empty' });
    assert.deepEqual(after.get('c2'), { kind: 'missing' });
    assert.equal((after.get('c3') as { record: ContainerRecord }).record.desired, 'stopped');
  });

  it("with a watch (the agent's), inspectAll stats only the files it heard of, and every file every STATE_WATCH_RECHECK_MS", async () => {
    // The wall clock past the settling time (what is read is kept); a monotonic one the test moves.
    let mono = 0;
    const watched = new StateStore(store.dir, () => Date.now() + 10 * STATE_CACHE_SETTLE_MS, () => mono);
    watched.watch();
    try {
      const file = store.fileOf('web1');
      /** A turn of the event loop that polls (a timer, then setImmediate: the poll phase lies between): inotify's events are queued before a write returns, and read by then. */
      const heard = () => new Promise((r) => setTimeout(() => setImmediate(r), 1));
      const desired = async () => ((await watched.inspectAll(['web1'])).get('web1') as { record: ContainerRecord }).record.desired;
      assert.equal(await desired(), 'running', 'the first call stats (and reads) every file');
      assert.equal(await desired(), 'running', "the next stats what was read meanwhile (the first call's reads), once");
      // Written through a hard link in another directory: the file changes, but no event reaches a watch
      // of the state directory. So what inspectAll answers now shows whether it stat'ed the file.
      const alias = join(dir, 'alias');
      linkSync(file, alias);
      const stopped = realText.replace('"running"', '"stopped"');
      writeFileSync(alias, stopped);
      await heard();
      assert.equal(await desired(), 'running', 'nothing heard of web1: its kept read, no stat');
      // In place through the state directory: heard, and read again.
      writeFileSync(file, realText);
      writeFileSync(file, stopped);
      await heard();
      assert.equal(await desired(), 'stopped');
      await desired(); // stats what that call read again, once
      // Unheard again, until the interval is up: then every file is stat'ed.
      writeFileSync(alias, realText);
      await heard();
      assert.equal(await desired(), 'stopped');
      mono += STATE_WATCH_RECHECK_MS + 1;
      assert.equal(await desired(), 'running');
      // A read inspect() kept (perhaps begun before a change whose event a List has already taken)
      // is stat'ed by the next inspectAll: here an unheard change is seen at once.
      await desired();
      writeFileSync(alias, stopped);
      await heard();
      assert.equal((await watched.read('web1'))?.desired, 'stopped', 'inspect stats its kept read');
      writeFileSync(alias, realText);
      await heard();
      const kept = await watched.inspect('web1');
      assert.equal((kept as { record: ContainerRecord }).record.desired, 'running');
      writeFileSync(alias, stopped);
      await heard();
      assert.equal(await desired(), 'stopped', 'the read inspect() kept is stat-checked by the next List');
      // Without the watch, every call stats every file.
      watched.unwatch();
      writeFileSync(alias, stopped);
      assert.equal(await desired(), 'stopped');
    } finally {
      watched.unwatch();
    }
  });

  it("with a watch, names() keeps its listing until a state file is heard of, the store writes or removes one, or STATE_WATCH_RECHECK_MS pass", async () => {
    let mono = 0;
    const watched = new StateStore(store.dir, Date.now, () => mono);
    watched.watch();
    try {
      const heard = () => new Promise((r) => setTimeout(() => setImmediate(r), 1));
      assert.deepEqual(await watched.names(), ['web1']);
      // Its own writes and removals show at once, whenever the watch's event comes: here it is
      // kept from coming at all (the event is often read during the write's own awaits).
      const deaf = watched as unknown as { heard: (file: string | null) => void };
      deaf.heard = () => undefined;
      await watched.write({ ...REAL, name: 'app2' });
      assert.deepEqual(await watched.names(), ['app2', 'web1']);
      await watched.remove('app2');
      assert.deepEqual(await watched.names(), ['web1']);
      delete (deaf as { heard?: unknown }).heard;
      // Anyone else's, once heard; a temporary file is no container.
      writeFileSync(join(store.dir, 'db1.json'), realText.replace('"web1"', '"db1"'));
      writeFileSync(join(store.dir, '.web1.json.1.0.tmp'), '{');
      await heard();
      assert.deepEqual(await watched.names(), ['db1', 'web1']);
      // The state directory replaced under the watch (it hears the old one): the kept listing answers,
      // which shows that no readdir was made, until the interval is up.
      renameSync(store.dir, `${store.dir}.old`);
      mkdirSync(store.dir);
      writeFileSync(join(store.dir, 'new1.json'), realText);
      await heard();
      assert.deepEqual(await watched.names(), ['db1', 'web1']);
      mono += STATE_WATCH_RECHECK_MS + 1;
      assert.deepEqual(await watched.names(), ['new1']);
      // Without the watch, every call reads the directory.
      watched.unwatch();
      writeFileSync(join(store.dir, 'new2.json'), realText);
      assert.deepEqual(await watched.names(), ['new1', 'new2']);
    } finally {
      watched.unwatch();
    }
  });

  it('lists names in ascending order, leaving out temporary files and names no container can have', async () => {
    await store.write({ ...REAL, name: 'app2' });
    writeFileSync(join(store.dir, '.web1.json.123.0.tmp'), '{');
    writeFileSync(join(store.dir, 'bad name.json'), '{}');
    writeFileSync(join(store.dir, '123.json'), '{}');
    assert.deepEqual(await store.names(), ['app2', 'web1']);
    assert.deepEqual(await store.removeStaleTemps(), ['.web1.json.123.0.tmp']);
    assert.ok(!readdirSync(store.dir).some((f) => f.endsWith('.tmp')));
  });
});
