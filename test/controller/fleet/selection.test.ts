import { strict as assert } from 'node:assert';
import { parseSelection, resolveSelection, SelectionError } from '../../../controller/fleet/selection.js';

describe('fleet: container selection (exact names, -A, qjail group prefix written web=)', () => {
  const on = ['web', 'web1', 'web2', 'webmail', 'xweb', 'db1'];
  const pick = (args: string[], all = false) => resolveSelection(parseSelection(args, all), on);

  it('takes exact names by default: web never matches web2', () => {
    assert.deepEqual(pick(['web']), { names: ['web'], missing: [] });
    assert.deepEqual(pick(['web2', 'db1']), { names: ['db1', 'web2'], missing: [] });
  });
  it('reports exact names the host lacks', () => assert.deepEqual(pick(['web3', 'db1']), { names: ['db1'], missing: ['web3'] }));
  it('matches a prefix only when written with =: web= takes web, web1, web2, webmail but not xweb', () => {
    assert.deepEqual(pick(['web=']), { names: ['web', 'web1', 'web2', 'webmail'], missing: [] });
  });
  it('mixes prefixes and names without duplicates', () => assert.deepEqual(pick(['db=', 'web1', 'web=']).names, ['db1', 'web', 'web1', 'web2', 'webmail']));
  it('a prefix matching nothing on a host is not an error there', () => assert.deepEqual(pick(['mail=']), { names: [], missing: [] }));
  it('-A takes every container, in name order', () => assert.deepEqual(pick([], true).names, [...on].sort()));
  it('refuses names with -A, nothing at all, and a bare =', () => {
    assert.throws(() => parseSelection(['web'], true), SelectionError);
    assert.throws(() => parseSelection([], false), /or use -A/);
    assert.throws(() => parseSelection(['='], false), /group prefix/);
    assert.throws(() => parseSelection(['a=b='], false), /group prefix/);
  });
});
