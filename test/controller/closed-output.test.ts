import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { dropOutputWhenReaderGoes } from '../../controller/closed-output.js';

describe('controller: output whose reader went away (qfleet list | head)', () => {
  it('drops the output on EPIPE and lets the command finish', () => {
    const out = new PassThrough();
    dropOutputWhenReaderGoes(out);
    assert.doesNotThrow(() => out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
  });

  it('still throws any other error on the stream', () => {
    const out = new PassThrough();
    dropOutputWhenReaderGoes(out);
    assert.throws(() => out.emit('error', Object.assign(new Error('disk full'), { code: 'ENOSPC' })), /disk full/);
  });

  it('the real CLI, its output read only in part: no stack trace, and the exit status the hosts earned', async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'qf-epipe-'));
    try {
      // 1000 hosts and no PKI: every host fails at once with a long reason, ~300 KB of JSON, far past a pipe's buffer.
      const inv = join(dir, 'hosts.yml');
      writeFileSync(inv, `all:\n  hosts:\n${Array.from({ length: 1000 }, (_, i) => `    h${i}:\n      ansible_host: 127.0.0.1\n`).join('')}`);
      const cli = fileURLToPath(new URL('../../controller/main.js', import.meta.url));
      const r = await execa('bash', ['-c', 'set -o pipefail; node "$0" --inventory "$1" --json list | head -c 100 >/dev/null', cli, inv], {
        reject: false, env: { ...process.env, QFLEET_HOME: join(dir, 'home') },
      });
      assert.doesNotMatch(r.stderr, /EPIPE|at /);
      assert.equal(r.exitCode, 1, 'every host failed: exit 1, as if the output had been read');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
