import { strict as assert } from 'node:assert';
import { parseInventory } from '../../../controller/inventory/inventory.js';
import { PatternError, selectHosts, splitPattern } from '../../../controller/inventory/pattern.js';

const inv = parseInventory(`
webservers:
  hosts:
    web1:
    web2:
    web10:
dbservers:
  hosts:
    db1:
    db2:
    web2:
staging:
  hosts:
    web1:
    db1:
prod:
  children:
    webservers:
    dbservers:
  hosts:
    mail:
`, 'hosts.yml');

describe('inventory: Ansible host patterns', () => {
  const sel = (p: string) => selectHosts(inv, p);

  it('splits on commas, else on colons outside brackets', () => {
    assert.deepEqual(splitPattern('a,b:c'), ['a', 'b:c']);
    assert.deepEqual(splitPattern('a:&b:!c'), ['a', '&b', '!c']);
    assert.deepEqual(splitPattern('w[1:2]:db'), ['w[1:2]', 'db']);
  });
  it('names hosts one by one (-H host1,host2)', () => assert.deepEqual(sel('web1,db2'), ['web1', 'db2']));
  it('names a group, and all', () => {
    assert.deepEqual(sel('dbservers'), ['web2', 'db1', 'db2'].sort((a, b) => inv.hostNames.indexOf(a) - inv.hostNames.indexOf(b)));
    assert.deepEqual(sel('all'), inv.hostNames);
    assert.deepEqual(sel('*'), inv.hostNames);
  });
  it('takes a group’s children’s hosts', () => assert.deepEqual(sel('prod').sort(), ['db1', 'db2', 'mail', 'web1', 'web10', 'web2']));
  it('matches globs against hosts and groups', () => {
    assert.deepEqual(sel('web?'), ['web1', 'web2']);
    assert.deepEqual(sel('web*').sort(), ['web1', 'web10', 'web2'], 'web* is the hosts, and the group webservers');
    assert.deepEqual(sel('db*').sort(), ['db1', 'db2', 'web2'], 'db* takes the group dbservers too');
  });
  it('takes a union with :', () => assert.deepEqual(sel('staging:mail').sort(), ['db1', 'mail', 'web1']));
  it('takes an intersection with :&', () => assert.deepEqual(sel('webservers:&dbservers'), ['web2']));
  it('excludes with :!', () => assert.deepEqual(sel('webservers:!staging').sort(), ['web10', 'web2']));
  it('starts from all when there are only exclusions', () => assert.deepEqual(sel('!prod'), []));
  it('applies unions first, then intersections, then exclusions, whatever the order written', () => {
    assert.deepEqual(sel('!web1:webservers:&staging'), []);
    assert.deepEqual(sel('!db1:staging:dbservers').sort(), ['db2', 'web1', 'web2']);
  });
  it('matches ~regex from the start of the name', () => {
    assert.deepEqual(sel('~web[12]$').sort(), ['web1', 'web2']);
    assert.throws(() => sel('~eb1'), PatternError, 'anchored like Python re.match');
  });
  it('picks by position with group[i] and group[a:b] (inclusive)', () => {
    assert.deepEqual(sel('webservers[0]'), ['web1']);
    assert.deepEqual(sel('webservers[-1]'), ['web10']);
    assert.deepEqual(sel('webservers[1:2]'), ['web2', 'web10']);
  });
  for (const bad of ['nosuch', 'web1,nosuch', 'webservers:&nosuch', 'all:!nosuch', 'zz*']) {
    it(`names the unknown term in ${bad}`, () => {
      assert.throws(() => sel(bad), (e: unknown) => e instanceof PatternError && /"(nosuch|zz\*)"/.test(e.message) && e.message.includes('hosts.yml'));
    });
  }
});
