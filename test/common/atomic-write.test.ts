import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempPathFor, writeFileAtomic, writeFileAtomicSync } from '../../common/atomic-write.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('common/atomic-write: one way to replace a file (state store, agent key, PKI)', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'qf-atomic-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const [kind, write] of [
    ['async', (p: string, d: string, m?: number) => writeFileAtomic(p, d, m === undefined ? {} : { mode: m })],
    ['sync', async (p: string, d: string, m?: number) => writeFileAtomicSync(p, d, m === undefined ? {} : { mode: m })],
  ] as const) {
    describe(kind, () => {
      it('replaces the file whole and leaves no temp file beside it', async () => {
        const f = join(dir, 'state.json');
        writeFileSync(f, 'old');
        await write(f, 'new');
        assert.equal(readFileSync(f, 'utf8'), 'new');
        assert.deepEqual(readdirSync(dir), ['state.json']);
      });

      it('gives the file exactly its mode, whatever the umask (0600 unless told)', async () => {
        const old = process.umask(0o077);
        try {
          await write(join(dir, 'ca.crt'), 'cert', 0o644);
          await write(join(dir, 'ca.key'), 'key');
        } finally {
          process.umask(old);
        }
        assert.equal(mode(join(dir, 'ca.crt')), 0o644);
        assert.equal(mode(join(dir, 'ca.key')), 0o600);
      });

      it('a failed rename leaves what was there and no temp file', async () => {
        // The target is a directory that is not empty: the temp file is written, the rename is refused.
        const target = join(dir, 'taken');
        mkdirSync(target);
        writeFileSync(join(target, 'inside'), 'old');
        await assert.rejects(write(target, 'new'));
        assert.deepEqual(readdirSync(dir), ['taken']);
        assert.equal(readFileSync(join(target, 'inside'), 'utf8'), 'old');
      });

      it('never writes through a symlink planted at its temp path', async () => {
        const victim = join(dir, 'victim');
        writeFileSync(victim, 'untouched');
        const f = join(dir, 'x.json');
        const planted = tempPathFor(f).replace(/\.(\d+)\.tmp$/, (_, n: string) => `.${Number(n) + 1}.tmp`);
        symlinkSync(victim, planted);
        await assert.rejects(Promise.resolve().then(() => write(f, 'data')), /EEXIST/);
        assert.equal(readFileSync(victim, 'utf8'), 'untouched');
      });
    });
  }

  it('temp files are hidden and end in .tmp, beside the file (what the state store cleans after a crash)', () => {
    assert.match(tempPathFor('/var/db/qfleet/web1.json'), new RegExp(`^/var/db/qfleet/\\.web1\\.json\\.${process.pid}\\.\\d+\\.tmp$`));
  });
});
