import { strict as assert } from 'node:assert';
import { buildProgram } from '../../controller/main.js';
import { UsageError } from '../../controller/context.js';
import type { ClientFactory } from '../../controller/transport/factory.js';
import { UNIX_SOCKET_PATH_MAX } from '../../common/socket-path.js';
import { checkSocketPath } from '../../controller/socket-path.js';

describe("the CLI's --socket: a path a unix socket can have", () => {
  afterEach(() => { process.exitCode = undefined; });

  it('Linux: up to 107 bytes (sun_path 108 with its NUL); FreeBSD: up to 103 (104)', () => {
    assert.equal(UNIX_SOCKET_PATH_MAX.linux, 107);
    assert.equal(UNIX_SOCKET_PATH_MAX.freebsd, 103);
    const at = (n: number) => `/${'s'.repeat(n - 1)}`;
    assert.equal(checkSocketPath(at(107), '--socket', 'linux'), at(107));
    assert.throws(() => checkSocketPath(at(108), '--socket', 'linux'), (e: unknown) => e instanceof UsageError &&
      e.message === `--socket ${JSON.stringify(at(108))} is 108 bytes long; a unix socket path can have at most 107 on Linux: use a shorter path (or a symlink to the directory).`);
    assert.equal(checkSocketPath(at(103), '--socket', 'freebsd'), at(103));
    assert.throws(() => checkSocketPath(at(104), '$QFLEET_SOCKET', 'freebsd'), /^Error: \$QFLEET_SOCKET "\/s+" is 104 bytes long; .* at most 103 on FreeBSD/);
  });

  it('whitespace: qfleetd never listens on such a path, so it is a mistake', () => {
    assert.throws(() => checkSocketPath('/run/my agent.sock', '--socket', 'linux'), /^Error: --socket "\/run\/my agent\.sock" has whitespace in it; qfleetd never listens on such a path/);
  });

  it('counts bytes, not characters', () => {
    assert.throws(() => checkSocketPath(`/${'é'.repeat(60)}`, '--socket', 'linux'), /is 121 bytes long/);
  });

  for (const [what, args, env, message] of [
    ['an empty --socket', ['--socket', ''], {}, /^qfleet: --socket is empty: give the agent's socket path/],
    ['a --socket too long', ['--socket', `/run/${'x'.repeat(120)}.sock`], {}, /^qfleet: --socket "\/run\/x+\.sock" is 130 bytes long/],
  ] as const) {
    it(`${what}: exit 2 with the reason, and no agent is called`, async () => {
      let called = 0;
      const factory: ClientFactory = () => {
        called++;
        throw new Error('no agent in this test');
      };
      const err: string[] = [];
      const program = buildProgram({ factory, env, out: () => undefined, err: (t) => err.push(t), stderrIsTTY: false });
      await program.parseAsync(['node', 'qfleet', ...args, 'list']);
      assert.equal(process.exitCode, 2);
      assert.equal(called, 0);
      assert.match(err.join('\n'), message);
    });
  }
});
