import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxCgroups } from '../../../agent/drivers/linux/cgroups.js';
import { CommandFailedError } from '../../../agent/errors.js';
import { dieWithAgentWrapper, ExecaRunner } from '../../../agent/runner/execa-runner.js';
import { killAndRemove } from './cgroup-cleanup.js';

/** The cgroup paths /proc/self/cgroup names, one line per hierarchy ("8:pids:/qfleet/web1"). */
function cgroupLines(text: string): string[] {
  return text.split(/\r?\n/).filter(Boolean);
}

describe('ExecaRunner joinCgroups, into real cgroups @root', function () {
  this.timeout(30_000);
  const parent = `qfleet-test-runner-${process.pid}`;
  const cg = new LinuxCgroups({ parent });
  const runner = new ExecaRunner({ wrapper: dieWithAgentWrapper() });
  let files: string[];
  let dir: string;

  before(async function () {
    if (!cg.capabilities().pids) this.skip();
    files = await cg.prepare('c1', { memoryBytes: 0, cpus: 0, pids: 100 });
    dir = mkdtempSync(join(tmpdir(), 'qf-join-root-'));
  });
  after(async () => {
    await killAndRemove(cg, ['c1'], parent);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Every hierarchy the container has a cgroup in names it for this process. */
  function assertInside(procSelfCgroup: string): void {
    const inside = cgroupLines(procSelfCgroup).filter((l) => l.endsWith(`:/${parent}/c1`));
    assert.equal(inside.length, files.length, procSelfCgroup);
  }

  it('run: the command\'s /proc/self/cgroup names the container\'s cgroup in every hierarchy', async () => {
    const r = await runner.run({ argv: ['cat', '/proc/self/cgroup'], joinCgroups: files });
    assertInside(r.stdout);
    const outside = await runner.run({ argv: ['cat', '/proc/self/cgroup'] });
    assert.ok(!outside.stdout.includes(parent), 'a command without joinCgroups stays where the agent is');
  });

  it('a daemon the command leaves behind is inside too, and so is a command writing to a log file', async () => {
    const log = join(dir, 'svc.log');
    const pidFile = join(dir, 'daemon.pid');
    // The daemon (double-forked, as an rc script leaves one) writes its pid; the command waits for it, 5 s at most.
    const script = '(sh -c \'echo $$ >"$0"; exec sleep 30\' "$1" &); i=0; while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; cat /proc/self/cgroup';
    await runner.run({ argv: ['sh', '-c', script, 'rc', pidFile], joinCgroups: files, logFile: log });
    assertInside(readFileSync(log, 'utf8'));
    const daemon = readFileSync(pidFile, 'utf8').trim();
    assert.ok(daemon, 'the daemon started');
    assert.ok(readFileSync(files[0]!, 'utf8').split('\n').includes(daemon), 'the left-behind daemon is in the cgroup');
  });

  it('spawn and a terminal session: the command runs inside', async () => {
    const c = runner.spawn({ argv: ['cat', '/proc/self/cgroup'], joinCgroups: files });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.resume();
    assert.equal((await c.exited).code, 0);
    assertInside(out);

    const t = await runner.run({ argv: ['sh', '-c', 'tty >/dev/null && cat /proc/self/cgroup'], env: { PATH: '/usr/bin:/bin' }, terminal: { rows: 24, cols: 80 }, joinCgroups: files });
    assertInside(t.stdout);
  });

  it('a join that fails (a cgroup that is not there) fails the command without running it', async () => {
    const ran = join(dir, 'ran');
    const gone = files[0]!.replace('/c1/', '/not-prepared/');
    await assert.rejects(runner.run({ argv: ['touch', ran], joinCgroups: [...files, gone] }), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError);
      assert.match(e.message, new RegExp(`could not join the cgroup ${gone}; the command did not run`));
      return true;
    });
    assert.ok(!existsSync(ran));
  });
});
