import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { inRequest, jsonLogger, silentLogger, type Logger } from '../../agent/log.js';

const lines = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the agent log (pino, the file written through sonic-boom)', () => {
  let tmp: string;
  let file: string;
  beforeEach(() => {
    tmp = mkdtempSync(`${tmpdir()}/qf-log-`);
    file = `${tmp}/agent.log`;
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('appends one JSON object per line: level by name, ISO time, msg and the fields, once flushed', async () => {
    const log = jsonLogger({ file, stderr: false });
    log.info('created container', { container: 'web1' });
    log.warn('slow', { ms: 3 });
    log.error('failed', { error: 'boom' });
    await log.flushed?.();
    const got = lines(file);
    assert.deepEqual(got.map((l) => [l.level, l.msg]), [['info', 'created container'], ['warn', 'slow'], ['error', 'failed']]);
    assert.equal(got[0]!.container, 'web1');
    assert.match(String(got[0]!.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(got[0]!.pid, undefined, 'no pid or hostname: journald and syslog say them');
  });

  it('gives a child logger\'s fields to every line it writes', async () => {
    const log = jsonLogger({ file, stderr: false });
    const child = log.child({ requestId: 'r-1' });
    child.info('one');
    child.child({ container: 'c' }).info('two');
    await log.flushed?.();
    assert.deepEqual(lines(file).map((l) => [l.msg, l.requestId, l.container]), [['one', 'r-1', undefined], ['two', 'r-1', 'c']]);
  });

  it('serves a request with a child logger carrying its id, and the agent\'s own logger writes as it meanwhile', async () => {
    const log = jsonLogger({ file, stderr: false });
    const engineLog: Logger = log; // what the engine holds
    let seen = '';
    await inRequest(log, 'req-7', 'Stop', async (rlog, id) => {
      seen = id;
      rlog.info('call');
      await new Promise((r) => setImmediate(r));
      engineLog.info('stopped container', { container: 'web1', requestId: 'req-7' });
    });
    engineLog.info('outside');
    await log.flushed?.();
    const got = lines(file);
    assert.equal(seen, 'req-7');
    assert.deepEqual(got.map((l) => [l.msg, l.requestId, l.rpc]), [['call', 'req-7', 'Stop'], ['stopped container', 'req-7', 'Stop'], ['outside', undefined, undefined]]);
    assert.equal(readFileSync(file, 'utf8').split('\n')[1]!.match(/"requestId"/g)?.length, 1, 'the id once, not once per source');
  });

  it('makes up a request id when the request has none', async () => {
    const log = jsonLogger({ file, stderr: false });
    const ids = [inRequest(log, '', 'List', (_l, id) => id), inRequest(log, undefined, 'List', (_l, id) => id)];
    assert.match(ids[0]!, /^[0-9a-f-]{36}$/);
    assert.notEqual(ids[0], ids[1]);
  });

  it('carries on in a new file when reopened after a rotation by rename (SIGHUP)', async () => {
    const log = jsonLogger({ file, stderr: false });
    log.info('before');
    await log.flushed?.();
    renameSync(file, `${file}.1`);
    log.reopen();
    log.info('after');
    await log.flushed?.();
    assert.deepEqual(lines(`${file}.1`).map((l) => l.msg), ['before']);
    assert.deepEqual(lines(file).map((l) => l.msg), ['after']);
  });

  it('writes what is buffered synchronously when asked (at exit)', async () => {
    const log = jsonLogger({ file, stderr: false });
    log.info('opened');
    await log.flushed?.(); // the file is open
    log.info('first'); // taken at once by the asynchronous write
    log.info('second');
    log.flushSync();
    assert.ok(readFileSync(file, 'utf8').includes('"msg":"second"'), 'what waited behind the write in flight is written at once');
  });

  it('never throws when the file cannot be written, and writes it once a reopen can', async () => {
    const log = jsonLogger({ file: `${tmp}/missing/agent.log`, stderr: false });
    log.info('lost');
    await log.flushed?.();
    await new Promise((r) => setTimeout(r, 20)); // the failed open is reported asynchronously
    log.info('lost too');
    log.flushSync();
    await log.flushed?.();
    mkdirSync(`${tmp}/missing`);
    log.reopen();
    log.info('found');
    await log.flushed?.();
    assert.deepEqual(lines(`${tmp}/missing/agent.log`).map((l) => l.msg), ['found']);
  });

  it('has a silent logger whose children are silent too', () => {
    silentLogger.child({ requestId: 'x' }).info('nothing');
  });
});
