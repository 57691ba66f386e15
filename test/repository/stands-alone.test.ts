import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from '../support/repo-root.js';
import { besideRepo, forget, guardActive, recorded } from '../support/stay-inside-repo.js';

describe('the repository stands on its own (a bare clone tests green)', () => {
  const root = repoRoot();
  const parent = dirname(root);

  it('every tracked file names nothing beside the repository: no sibling folder, no reference samples, no path of the checkout\'s parent', function () {
    if (!existsSync(join(root, '.git'))) this.skip();
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
    // Built from parts so that this file does not match itself.
    const patterns = [new RegExp(['\\.\\.', 'shared'].join('/')), new RegExp(['freebsd', 'samples'].join('-'))];
    // The parent's path, unless it is / or a temporary directory (a clone at /tmp/qfleet): there every test's scratch path would match.
    if (guardActive) patterns.push(new RegExp(`${parent.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`));
    const hits: string[] = [];
    for (const f of files) {
      if (!existsSync(join(root, f))) continue;
      const text = readFileSync(join(root, f), 'latin1');
      for (const re of patterns) if (re.test(text)) hits.push(`${f} (${re.source})`);
    }
    assert.deepEqual(hits, []);
  });

  it('the run-time guard counts a path beside the repository, and never one inside it', function () {
    if (!guardActive) this.skip(); // a clone at / or straight in /tmp: no "beside" to watch
    assert.equal(besideRepo(join(parent, 'reference', 'x.txt')), true);
    assert.equal(besideRepo(join(root, 'test', 'fixtures')), false);
    assert.equal(besideRepo(join(dirname(parent), 'elsewhere')), false);
    const probe = join(parent, `qfleet-guard-probe-${process.pid}`);
    existsSync(probe);
    assert.equal(recorded(probe), true, 'existsSync beside the repository was not seen');
    forget(probe);
  });
});
