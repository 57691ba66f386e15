import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROC_FILE_IDLE_MS, ProcFiles } from '../../../../agent/drivers/linux/proc-files.js';
import { statFields } from '../../../../agent/drivers/linux/processes.js';

/** A shell that has started `sleep` and waits for it (a process with one child), then becomes a sleep itself (none). */
function parentWithChild(): ChildProcess {
  return spawn('sh', ['-c', 'sleep 30 & wait; exec sleep 30'], { stdio: 'ignore' });
}

async function until(check: () => boolean, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => child.once('exit', r));
}

describe('ProcFiles: /proc files kept open between Lists', () => {
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill('SIGKILL');
      await ended(c);
    }
  });

  it("reads a live process's stat through a kept file, and answers undefined (closing it) once the process is reaped", async () => {
    const files = new ProcFiles('/proc');
    const c = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(c);
    const first = files.stat(c.pid!);
    assert.ok(first?.startsWith(`${c.pid} (sleep) `), first);
    assert.equal(files.size, 1);
    assert.equal(statFields(files.stat(c.pid!)!)[19], statFields(first!)[19], 'read again through the kept file');
    c.kill('SIGKILL');
    await ended(c);
    assert.equal(files.stat(c.pid!), undefined);
    assert.equal(files.size, 0);
  });

  it("keeps a children file only for the process it was opened for (by start time), and sees the list change", async () => {
    const files = new ProcFiles('/proc');
    const sh = parentWithChild();
    children.push(sh);
    const pid = sh.pid!;
    const start = statFields(files.stat(pid)!)[19]!;
    await until(() => (files.children(pid, pid, start) ?? '').trim() !== '', 'the shell to start sleep');
    const sleeper = Number(files.children(pid, pid, start)!.trim());
    assert.ok(Number.isInteger(sleeper) && sleeper > 1);
    assert.equal(files.size, 2, 'its stat and its children file');
    // Without a start time the file is read afresh, not kept.
    assert.equal(files.children(pid, pid)!.trim(), String(sleeper));
    assert.equal(files.size, 2);
    // The child ends: the kept file shows the change.
    process.kill(sleeper, 'SIGKILL');
    await until(() => files.children(pid, pid, start)!.trim() === '', 'the kept children file to show none');
    // The same path asked for another process (another start time) is opened afresh.
    assert.equal(files.children(pid, pid, `${start}0`)!.trim(), '');
    assert.equal(files.size, 1, "the pid's files went with the mismatch; the fresh one is kept");
  });

  it('reads a children list longer than a page whole, every time (a /proc read stops at about a page)', async function () {
    this.timeout(30_000);
    const files = new ProcFiles('/proc');
    // More children than one page of "PID " records holds, whatever the pids' width.
    const count = 1100;
    const sh = spawn('sh', ['-c', `i=0; while [ $i -lt ${count} ]; do sleep 60 & i=$((i+1)); done; wait`], { stdio: 'ignore' });
    children.push(sh);
    const pid = sh.pid!;
    const start = statFields(files.stat(pid)!)[19]!;
    const listed = () => (files.children(pid, pid, start) ?? '').trim().split(/\s+/).filter(Boolean);
    await until(() => listed().length === count, `the shell to start ${count} sleeps`, 2500);
    const whole = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    assert.ok(whole.length > 4096, `${whole.length} bytes`);
    assert.deepEqual(listed(), whole.trim().split(/\s+/), 'the kept file, read again, gives the whole list');
    // The shell's children are killed with it (afterEach kills the shell only).
    for (const c of listed()) process.kill(Number(c), 'SIGKILL');
  });

  it('never keeps more than its bound; the rest are read whole each time', async () => {
    const files = new ProcFiles('/proc', Date.now, 1);
    const a = spawn('sleep', ['30'], { stdio: 'ignore' });
    const b = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(a, b);
    assert.ok(files.stat(a.pid!));
    assert.ok(files.stat(b.pid!)?.startsWith(`${b.pid} (sleep)`));
    assert.equal(files.size, 1);
    b.kill('SIGKILL');
    await ended(b);
    assert.equal(files.stat(b.pid!), undefined, 'read whole: gone is gone');
  });

  it('closes files not read for PROC_FILE_IDLE_MS', async () => {
    let now = 1_000_000;
    const files = new ProcFiles('/proc', () => now);
    const a = spawn('sleep', ['30'], { stdio: 'ignore' });
    const b = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(a, b);
    files.stat(a.pid!);
    files.stat(b.pid!);
    now += PROC_FILE_IDLE_MS / 2;
    files.stat(b.pid!);
    now += PROC_FILE_IDLE_MS / 2 + 1;
    files.stat(b.pid!);
    assert.equal(files.size, 1, "a's file went idle and was closed; b's stays");
    files.closeAll();
    assert.equal(files.size, 0);
  });

  it('keeps nothing open under a directory that is not the real /proc: a file replaced by rename is read anew', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-procfiles-'));
    try {
      mkdirSync(join(dir, '42'));
      writeFileSync(join(dir, '42/stat'), '42 (init) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0\n');
      const files = new ProcFiles(dir);
      assert.match(files.stat(42)!, / 100 0\n$/);
      writeFileSync(join(dir, '42/stat.new'), '42 (init) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 200 0\n');
      renameSync(join(dir, '42/stat.new'), join(dir, '42/stat'));
      assert.match(files.stat(42)!, / 200 0\n$/);
      assert.equal(files.size, 0);
      assert.equal(files.stat(43), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
