import { strict as assert } from 'node:assert';
import { CommandFailedError } from '../../agent/errors.js';
import { checkUnexpectedCommands, FakeRunner, UnexpectedCommandError } from './fake-runner.js';

// The runner every driver test scripts: it answers only what it was told, so a
// test cannot pass on a command it never meant to allow.

describe('FakeRunner', () => {
  it('answers a command it was told about, by argv prefix, and records it', async () => {
    const r = new FakeRunner().on(['uname', '-r'], { stdout: '14.1-RELEASE-p5\n' }).on(['mkdir']);
    assert.equal((await r.run({ argv: ['uname', '-r'] })).stdout, '14.1-RELEASE-p5\n');
    assert.equal((await r.run({ argv: ['mkdir', '-p', '/q'] })).exitCode, 0);
    assert.deepEqual(r.transcript, ['uname -r', 'mkdir -p /q']);
  });

  it('rejects a command nobody told it about, naming the argv and what it was told', async () => {
    const r = new FakeRunner().on(['uname', '-r'], { stdout: 'x\n' }).handle(() => undefined, 'simulated host');
    await assert.rejects(r.run({ argv: ['rm', '-rf', '/'] }), (e: unknown) =>
      e instanceof UnexpectedCommandError && !(e instanceof CommandFailedError) &&
      e.message.includes('unexpected command: rm -rf /') && e.message.includes('uname -r …') && e.message.includes('simulated host'));
    assert.deepEqual(r.unexpected, ['rm -rf /']);
    r.unexpected.splice(0); // provoked on purpose
  });

  it('rejects every command when it was told nothing', async () => {
    const r = new FakeRunner();
    await assert.rejects(r.run({ argv: ['true'] }), /told about: \(nothing\)/);
    assert.throws(() => r.spawn({ argv: ['sh'] }), UnexpectedCommandError);
    assert.deepEqual(r.unexpected, ['true', 'sh']);
    r.unexpected.splice(0); // provoked on purpose
  });

  it('fails the test afterwards when the code under test swallowed the rejection (a cleanup that catches everything)', async () => {
    const r = new FakeRunner();
    await r.run({ argv: ['chflags', '-R', '0', '/q'] }).catch(() => undefined);
    assert.throws(checkUnexpectedCommands, /unexpected command\(s\) during this test, even if the code under test caught them: chflags -R 0 \/q/);
    assert.doesNotThrow(checkUnexpectedCommands, 'reported once, then forgotten');
  });

  it('turns a scripted non-zero exit into CommandFailedError unless the caller accepts that code', async () => {
    const r = new FakeRunner().on(['test'], { exitCode: 1 });
    await assert.rejects(r.run({ argv: ['test', '-e', '/x'] }), CommandFailedError);
    assert.equal((await r.run({ argv: ['test', '-e', '/x'], okExitCodes: [1] })).exitCode, 1);
  });

  it('spawns a told command with its scripted output and exit code', async () => {
    const r = new FakeRunner().on(['chroot'], { stdout: 'hi\n', exitCode: 3 });
    const c = r.spawn({ argv: ['chroot', '/q/containers/web', '/bin/echo', 'hi'] });
    let out = '';
    for await (const chunk of c.stdout) out += String(chunk);
    assert.equal(out, 'hi\n');
    assert.deepEqual(await c.exited, { code: 3, signal: null });
  });
});
