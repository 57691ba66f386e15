import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INVENTORY_LIMITS } from '../../../controller/inventory/inventory.js';
import { loadInventory } from '../../../controller/inventory/load.js';

describe('loadInventory: the inventory file', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'qf-inv-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file', () => {
    const f = join(dir, 'hosts.yml');
    writeFileSync(f, 'web:\n  hosts:\n    w1:\n');
    assert.deepEqual(loadInventory(f).hostNames, ['w1']);
  });

  it('refuses a file over the size limit, naming it', () => {
    const f = join(dir, 'huge.yml');
    writeFileSync(f, '');
    truncateSync(f, INVENTORY_LIMITS.bytes + 1); // sparse: no disk used
    assert.throws(() => loadInventory(f), /huge\.yml: larger than 16 MiB/);
  });

  it('says when there is no such file', () => {
    assert.throws(() => loadInventory(join(dir, 'nope.yml')), /cannot read the inventory .*nope\.yml: no such file/);
  });
});
