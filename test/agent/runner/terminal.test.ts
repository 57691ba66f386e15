import { strict as assert } from 'node:assert';
import { ExecaRunner } from '../../../agent/runner/execa-runner.js';
import { onTerminal } from '../../../agent/runner/terminal.js';

describe('onTerminal (a command on a pseudo-terminal of its own)', () => {
  const env = { PATH: '/bin', HOME: '/root', TERM: 'vt100', PS1: 'web1:\\w# ' };

  it('leaves a command that asks for no terminal as it is', () => {
    const spec = { argv: ['chroot', '/r', 'ls'], env };
    assert.equal(onTerminal(spec, 'linux'), spec);
  });

  it('on Linux, gives script(1) one command line: the size, then env -i and the argv, every word quoted', () => {
    const s = onTerminal({ argv: ['chroot', '/r', 'echo', "it's $HOME"], env, cwd: '/', terminal: { rows: 40, cols: 120 } }, 'linux');
    assert.deepEqual(s.argv, [
      'script', '-q', '-e', '-c',
      "stty rows 40 cols 120 2>/dev/null; exec env -i PATH=/bin HOME=/root TERM=vt100 'PS1=web1:\\w# ' chroot /r echo 'it'\\''s $HOME'",
      '/dev/null',
    ]);
    assert.deepEqual(s.env, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SHELL: '/bin/sh', TERM: 'vt100' }, 'script and its shell get the host\'s PATH, not the container\'s');
    assert.equal(s.cwd, '/');
    assert.equal(s.terminal, undefined);
  });

  it('sets no size when the client gave none', () => {
    assert.match(onTerminal({ argv: ['sh'], env: {}, terminal: {} }, 'linux').argv[4]!, /^exec env -i sh$/);
  });

  it('on FreeBSD, gives script(1) the argv itself: no shell is involved', () => {
    const s = onTerminal({ argv: ['chroot', '/r', 'sh', '-i'], env, terminal: { rows: 24, cols: 80 } }, 'freebsd');
    assert.deepEqual(s.argv, ['script', '-q', '/dev/null', 'chroot', '/r', 'sh', '-i']);
    assert.deepEqual(s.env, env);
  });

  if (process.platform === 'linux') {
    it('really runs the command on a terminal of the size asked for', async () => {
      const r = await new ExecaRunner().run({ argv: ['sh', '-c', 'tty; stty size'], env: { PATH: '/usr/bin:/bin' }, terminal: { rows: 33, cols: 77 } });
      assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\n33 77\r?\n/);
    });
  }
});
