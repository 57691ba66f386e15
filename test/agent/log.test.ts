import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { AsyncAppender } from '../../agent/log.js';

describe('AsyncAppender (the agent log file)', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(`${tmpdir()}/qf-log-`); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('appends every line, in order, once flushed', async () => {
    const a = new AsyncAppender(`${tmp}/agent.log`);
    for (let i = 0; i < 100; i++) a.write(`line ${i}\n`);
    await a.flushed();
    assert.equal(readFileSync(`${tmp}/agent.log`, 'utf8'), Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
  });

  it('opens the file for each append, so a log rotated by rename goes on in a new file', async () => {
    const a = new AsyncAppender(`${tmp}/agent.log`);
    a.write('before\n');
    await a.flushed();
    renameSync(`${tmp}/agent.log`, `${tmp}/agent.log.1`);
    a.write('after\n');
    await a.flushed();
    assert.equal(readFileSync(`${tmp}/agent.log.1`, 'utf8'), 'before\n');
    assert.equal(readFileSync(`${tmp}/agent.log`, 'utf8'), 'after\n');
  });

  it('keeps at most its bound queued, dropping the oldest and saying how many', async () => {
    const a = new AsyncAppender(`${tmp}/agent.log`, 21);
    for (let i = 0; i < 10; i++) a.write(`line ${i}\n`); // line 0 is taken at once; 1-9 queue behind it
    await a.flushed();
    const lines = readFileSync(`${tmp}/agent.log`, 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], 'line 0');
    assert.match(lines[1]!, /"dropped":6/);
    assert.deepEqual(lines.slice(2), ['line 7', 'line 8', 'line 9']);
  });

  it('writes what is queued synchronously when asked (at exit)', async () => {
    const a = new AsyncAppender(`${tmp}/agent.log`);
    a.write('first\n'); // taken at once by the asynchronous append
    a.write('second\n');
    a.flushSync();
    assert.ok(readFileSync(`${tmp}/agent.log`, 'utf8').includes('second\n'));
    await a.flushed();
    assert.deepEqual(readFileSync(`${tmp}/agent.log`, 'utf8').split('\n').sort(), ['', 'first', 'second']);
  });

  it('never throws when the file cannot be written', async () => {
    const a = new AsyncAppender(`${tmp}/missing/dir/agent.log`);
    a.write('lost\n');
    await a.flushed();
    a.write('lost too\n');
    a.flushSync();
  });
});
