import { strict as assert } from 'node:assert';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandFailedError } from '../../../agent/errors.js';
import { ExecaRunner } from '../../../agent/runner/execa-runner.js';
import { JOIN_FAILED_EXIT, JOIN_SCRIPT, joiningCgroups } from '../../../agent/runner/join-cgroups.js';
import { onTerminal } from '../../../agent/runner/terminal.js';

describe('joiningCgroups (the command joins its cgroups before it runs)', () => {
  it('leaves a command with nothing to join as it is', () => {
    const spec = { argv: ['true'], joinCgroups: [] };
    assert.equal(joiningCgroups(spec, { mergeStderr: false }), spec);
  });

  it('runs the constant script with the files and the argv as its parameters, nothing built into it', () => {
    const s = joiningCgroups({ argv: ['chroot', '/r', 'echo', "$(reboot) 'x'"], env: { PATH: '/bin' }, joinCgroups: ['/sys/fs/cgroup/pids/q/a/cgroup.procs', '/sys/fs/cgroup/memory/q/a/cgroup.procs'] }, { mergeStderr: true });
    assert.deepEqual(s.argv, [
      '/bin/sh', '-c', JOIN_SCRIPT, 'qfleet-join',
      '/sys/fs/cgroup/pids/q/a/cgroup.procs', '/sys/fs/cgroup/memory/q/a/cgroup.procs', '--', '1', '-',
      'chroot', '/r', 'echo', "$(reboot) 'x'",
    ]);
    assert.equal(s.joinCgroups, undefined);
    assert.deepEqual(s.env, { PATH: '/bin' });
  });

  it('wraps script(1) for a terminal, so script and the pty session it makes are inside too', () => {
    const t = onTerminal({ argv: ['sh'], env: {}, terminal: {}, joinCgroups: ['/c/cgroup.procs'] }, 'linux');
    const s = joiningCgroups(t, { mergeStderr: false });
    assert.deepEqual(s.argv.slice(4), ['/c/cgroup.procs', '--', '0', '-', 'script', '-q', '-e', '-c', 'exec env -i sh', '/dev/null']);
  });

  it('refuses a file that is not an absolute cgroup.procs path: the child writes its pid nowhere else', () => {
    for (const bad of ['cgroup.procs', '/etc/passwd', '/x/cgroup.procs/../../etc/shadow', '/sys/fs/cgroup/../../etc/cgroup.procs']) {
      assert.throws(() => joiningCgroups({ argv: ['true'], joinCgroups: [bad] }, { mergeStderr: false }), CommandFailedError, bad);
    }
  });
});

/**
 * Regular files stand in for cgroup.procs here (no root needed): what the
 * child writes shows which process joined; the cgroups themselves are in
 * join-cgroups.root.test.ts.
 */
describe('ExecaRunner with joinCgroups', () => {
  const runner = new ExecaRunner({ wrapper: ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] });
  let dir: string;
  let a: string;
  let b: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-join-'));
    for (const d of ['a', 'b']) mkdirSync(join(dir, d));
    a = join(dir, 'a/cgroup.procs');
    b = join(dir, 'b/cgroup.procs');
    for (const f of [a, b]) writeFileSync(f, '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the pid of the process that then becomes the command into every file', async () => {
    const r = await runner.run({ argv: ['sh', '-c', 'echo $$'], joinCgroups: [a, b] });
    assert.equal(readFileSync(a, 'utf8'), r.stdout);
    assert.equal(readFileSync(b, 'utf8'), r.stdout);
    assert.deepEqual(r.argv, ['sh', '-c', 'echo $$'], 'the command is reported, not the join around it');
  });

  it('gives the command exactly the environment asked for (the shell adds no PWD, changes no variable), and descriptors as fd 3', async () => {
    const none = await runner.run({ argv: ['env'], env: { A: '1', n: 'x', pwd: 'y' }, cwd: dir, joinCgroups: [a] });
    assert.deepEqual(none.stdout.split('\n').sort(), ['', 'A=1', 'n=x', 'pwd=y']);
    const given = await runner.run({ argv: ['env'], env: { A: '1', PWD: '/srv/x' }, cwd: dir, joinCgroups: [a] });
    assert.deepEqual(given.stdout.split('\n').sort(), ['', 'A=1', 'PWD=/srv/x']);
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const r = await runner.run({ argv: ['readlink', '/proc/self/fd/3'], passFds: [fd], joinCgroups: [a] });
      assert.equal(r.stdout.trim(), dir);
    } finally {
      closeSync(fd);
    }
  });

  it('fails a command whose join fails, without running it, even where its exit code would be an answer', async () => {
    const ran = join(dir, 'ran');
    const missing = join(dir, 'nope/cgroup.procs');
    await assert.rejects(runner.run({ argv: ['touch', ran], joinCgroups: [a, missing], okExitCodes: [JOIN_FAILED_EXIT] }), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError);
      assert.equal(e.exitCode, JOIN_FAILED_EXIT);
      assert.match(e.message, new RegExp(`^touch ${ran}: exited 125: .*could not join the cgroup ${missing}; the command did not run$`));
      return true;
    });
    assert.ok(!existsSync(ran), 'the command ran unconfined');
    assert.ok(!existsSync(missing), 'the join made a file where no cgroup is');
    rmSync(a);
    await assert.rejects(runner.run({ argv: ['touch', ran], joinCgroups: [a] }), /could not join the cgroup/);
    assert.ok(!existsSync(a), 'a missing cgroup.procs is never created');
  });

  it('keeps the command\'s own exit code 125 as its own', async () => {
    const r = await runner.run({ argv: ['sh', '-c', 'exit 125'], joinCgroups: [a], okExitCodes: [125] });
    assert.equal(r.exitCode, 125);
  });

  it('with a log file: the join failure is still seen, and the command\'s stdout and stderr go to the log', async () => {
    const log = join(dir, 'svc.log');
    await assert.rejects(runner.run({ argv: ['echo', 'ran'], joinCgroups: [join(dir, 'nope/cgroup.procs')], logFile: log }), /could not join the cgroup .*the command did not run/);
    assert.equal(readFileSync(log, 'utf8'), '');
    const r = await runner.run({ argv: ['sh', '-c', 'echo out; echo err >&2; (sleep 5 &)'], joinCgroups: [a], logFile: log, timeoutMs: 3000 });
    assert.equal(r.exitCode, 0);
    assert.equal(readFileSync(log, 'utf8'), 'out\nerr\n');
  });

  it('spawn: joins before the command runs, and a failed join exits 125 saying why on stderr', async () => {
    const ok = runner.spawn({ argv: ['sh', '-c', 'echo $$'], joinCgroups: [a] });
    let out = '';
    ok.stdout.on('data', (d: Buffer) => (out += d.toString()));
    ok.stderr.resume();
    assert.deepEqual(await ok.exited, { code: 0, signal: null });
    assert.equal(readFileSync(a, 'utf8'), out);

    const ran = join(dir, 'ran');
    const bad = runner.spawn({ argv: ['touch', ran], joinCgroups: [join(dir, 'nope/cgroup.procs')] });
    let err = '';
    bad.stdout.resume();
    bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
    assert.equal((await bad.exited).code, JOIN_FAILED_EXIT);
    assert.match(err, /qfleet-join: could not join the cgroup .*nope\/cgroup\.procs; the command did not run/);
    assert.ok(!existsSync(ran));
  });

  it('on a terminal: the joined process is script(1), an ancestor of the command on the pty', async () => {
    // The command prints its ancestors (pid, then each parent's, from /proc) while it runs.
    const ancestors = 'tty >/dev/null || exit 9; p=$$; while [ "$p" -gt 1 ]; do echo "$p $(cat /proc/$p/comm)"; p=$(cut -d" " -f4 /proc/$p/stat); done';
    const r = await runner.run({ argv: ['sh', '-c', ancestors], env: { PATH: '/usr/bin:/bin' }, terminal: {}, joinCgroups: [a] });
    const joined = readFileSync(a, 'utf8').trim();
    const line = r.stdout.split(/\r?\n/).find((l) => l.startsWith(`${joined} `));
    assert.equal(line, `${joined} script`, r.stdout);
  });
});
