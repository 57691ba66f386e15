import { strict as assert } from 'node:assert';
import { mkdtempSync, openSync, readFileSync, closeSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecaRunner } from '../../../agent/runner/execa-runner.js';
import { CommandFailedError } from '../../../agent/errors.js';

/** Gone or a zombie (init may be slow to reap here): either way, not running. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('ExecaRunner', () => {
  const runner = new ExecaRunner();

  it('runs an argv and captures stdout and stderr separately', async () => {
    const r = await runner.run({ argv: ['sh', '-c', 'echo out; echo err >&2'] });
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.exitCode, 0);
  });

  it('does not inherit the agent environment', async () => {
    process.env.QFLEET_SECRET_FOR_TEST = 'leak';
    try {
      const r = await runner.run({ argv: ['env'] });
      assert.doesNotMatch(r.stdout, /QFLEET_SECRET_FOR_TEST/);
      assert.match(r.stdout, /^PATH=/m);
    } finally {
      delete process.env.QFLEET_SECRET_FOR_TEST;
    }
  });

  it('rejects a non-zero exit with a CommandFailedError carrying argv, code and stderr', async () => {
    await assert.rejects(runner.run({ argv: ['sh', '-c', 'echo boom >&2; exit 3'] }), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError);
      assert.deepEqual(e.argv, ['sh', '-c', 'echo boom >&2; exit 3']);
      assert.equal(e.exitCode, 3);
      assert.match(e.message, /exited 3: boom/);
      return true;
    });
  });

  it('treats okExitCodes as answers, not failures', async () => {
    const r = await runner.run({ argv: ['sh', '-c', 'exit 1'], okExitCodes: [1] });
    assert.equal(r.exitCode, 1);
  });

  it('reports a missing program as a command that could not run', async () => {
    await assert.rejects(runner.run({ argv: ['/nonexistent/qfleet-test'] }), /could not run/);
  });

  it('kills the whole process group on timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-runner-'));
    const pidFile = join(dir, 'bg.pid');
    await assert.rejects(
      runner.run({ argv: ['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], timeoutMs: 300 }),
      (e: unknown) => e instanceof CommandFailedError && e.timedOut,
    );
    const bg = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!isAlive(bg), 'the background child was left running');
  });

  it('returns at once when a daemon keeps the output open, if output goes to a log file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-runner-'));
    const log = join(dir, 'svc.log');
    const r = await runner.run({ argv: ['sh', '-c', '(sleep 5 &); echo started'], logFile: log, timeoutMs: 3000 });
    assert.equal(r.exitCode, 0);
    assert.equal(readFileSync(log, 'utf8'), 'started\n');
  });

  it('passes open descriptors to the child as fd 3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-runner-'));
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const r = await runner.run({ argv: ['readlink', '/proc/self/fd/3'], passFds: [fd] });
      assert.equal(r.stdout.trim(), dir);
    } finally {
      closeSync(fd);
    }
  });
});

describe('ExecaRunner with the die-with-agent wrapper', () => {
  it('wraps with setpriv --pdeathsig on Linux when setpriv exists, and nothing elsewhere', async () => {
    const { dieWithAgentWrapper } = await import('../../../agent/runner/execa-runner.js');
    assert.deepEqual(dieWithAgentWrapper('linux', () => true), ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--']);
    assert.deepEqual(dieWithAgentWrapper('linux', () => false), []);
    assert.deepEqual(dieWithAgentWrapper('freebsd', () => true), []);
  });

  it('runs the command through the wrapper but reports the command itself on failure', async () => {
    const runner = new ExecaRunner({ wrapper: ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] });
    const r = await runner.run({ argv: ['sh', '-c', 'grep -o "^[0-9]*" /proc/self/status >/dev/null; echo ok'] });
    assert.equal(r.stdout, 'ok\n');
    await assert.rejects(runner.run({ argv: ['sh', '-c', 'exit 4'] }), (e: unknown) => e instanceof CommandFailedError && e.argv[0] === 'sh');
  });
});

describe('ExecaRunner.spawn', () => {
  it('reports the exit of a command that leaves a daemon holding its output, with the output it wrote', async function () {
    this.timeout(4000); // a hang (waiting for the daemon's 30 s) fails here
    const c = new ExecaRunner().spawn({ argv: ['sh', '-c', 'sleep 30 & echo started; exit 3'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', () => undefined);
    const r = await c.exited;
    assert.equal(r.code, 3);
    assert.equal(out, 'started\n');
    c.kill('SIGKILL'); // the group: the sleep too
  });
});
