import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { EventEmitter } from 'node:events';
import { buildProgram } from '../../../controller/main.js';
import type { ClientFactory } from '../../../controller/transport/factory.js';
import type { AgentServiceClient } from '../../../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ExecStart } from '../../../proto/gen/qfleet/agent/v1/ExecStart.js';

/**
 * `qfleet exec`'s command line: options in any order before `--`, everything
 * after `--` the command's. The agent is a fake Exec stream that records the
 * start message and answers with an exit code.
 */
describe('qfleet exec: options in any order, the command after --', () => {
  afterEach(() => { process.exitCode = undefined; });

  async function run(args: string[]): Promise<{ start?: ExecStart; code: number | undefined; err: string }> {
    let start: ExecStart | undefined;
    const factory: ClientFactory = () =>
      ({
        Exec: () => {
          const s = new EventEmitter() as EventEmitter & { write: (m: { start?: ExecStart }) => void; end: () => void };
          s.write = (m) => {
            if (!m.start) return;
            start = m.start;
            setImmediate(() => {
              s.emit('data', { exit: { code: 7, signal: '' } });
              s.emit('end');
            });
          };
          s.end = () => undefined;
          return s;
        },
        // A channel that is already connected: exec waits for READY before it opens the stream.
        getChannel: () => ({ getConnectivityState: () => grpc.connectivityState.READY, watchConnectivityState: () => undefined }),
        close: () => undefined,
      }) as unknown as AgentServiceClient;
    const err: string[] = [];
    const program = buildProgram({ factory, env: {}, out: () => undefined, err: (t) => err.push(t), stderrIsTTY: false });
    program.configureOutput({ writeErr: (t) => err.push(t), writeOut: () => undefined });
    for (const c of program.commands) c.configureOutput({ writeErr: (t) => err.push(t), writeOut: () => undefined });
    try {
      await program.parseAsync(['node', 'qfleet', '--socket', '/run/qf-test-none.sock', ...args]);
    } catch (e) {
      return { start, code: (e as { code?: string }).code?.startsWith('commander.') ? 2 : 1, err: err.join('') };
    }
    return { start, code: process.exitCode as number | undefined, err: err.join('') };
  }

  const cases: [string, string[]][] = [
    ['-e before the name', ['exec', '-e', 'K=V', 'web1', '--', 'ls', '-l']],
    ['-e after the name', ['exec', 'web1', '-e', 'K=V', '--', 'ls', '-l']],
    ['--env=K=V', ['exec', '--env=K=V', 'web1', '--', 'ls', '-l']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: the container is web1, the command ls -l, the environment K=V`, async () => {
      const r = await run(args);
      assert.equal(r.code, 7, r.err);
      assert.equal(r.start?.name, 'web1');
      assert.deepEqual(r.start?.argv, ['ls', '-l']);
      assert.deepEqual(r.start?.env, { K: 'V' });
      assert.equal(r.start?.tty, false);
    });
  }

  it('-t and repeated -e before the name: all kept, the later of two same names wins', async () => {
    const r = await run(['exec', '-t', '-e', 'A=1', '-e', 'B=x=y', '-e', 'A=2', 'web1', '--', 'sh', '-c', 'echo -e x']);
    assert.equal(r.code, 7, r.err);
    assert.equal(r.start?.name, 'web1');
    assert.equal(r.start?.tty, true);
    assert.deepEqual(r.start?.argv, ['sh', '-c', 'echo -e x']);
    assert.equal(r.start?.env?.A, '2');
    assert.equal(r.start?.env?.B, 'x=y');
  });

  it('-t after the name', async () => {
    const r = await run(['exec', 'web1', '-t', '--', 'ls']);
    assert.equal(r.start?.name, 'web1');
    assert.equal(r.start?.tty, true);
    assert.deepEqual(r.start?.argv, ['ls']);
  });

  it("after --, options and a second -- are the command's, not qfleet's", async () => {
    const r = await run(['exec', 'web1', '--', 'env', '-t', '-e', 'X=1', '--', '--json']);
    assert.equal(r.start?.name, 'web1');
    assert.equal(r.start?.tty, false);
    assert.deepEqual(r.start?.env, {});
    assert.deepEqual(r.start?.argv, ['env', '-t', '-e', 'X=1', '--', '--json']);
  });

  it('a command option without -- is a usage error that says to put -- first; nothing runs', async () => {
    const r = await run(['exec', 'web1', 'ls', '-l']);
    assert.equal(r.code, 2);
    assert.equal(r.start, undefined);
    assert.match(r.err, /unknown option '-l'/);
    assert.match(r.err, /the command and its options after it: qfleet exec \[-t\] \[-e NAME=value\] NAME -- ls -l/);
  });

  for (const bad of ['K', '=V', '1X=2', 'A B=1']) {
    it(`-e ${JSON.stringify(bad)} is a usage error; nothing runs`, async () => {
      const r = await run(['exec', '-e', bad, 'web1', '--', 'true']);
      assert.equal(r.code, 2);
      assert.equal(r.start, undefined);
      assert.match(r.err, /expected NAME=value/);
    });
  }
});
