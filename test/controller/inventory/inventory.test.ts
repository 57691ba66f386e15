import { strict as assert } from 'node:assert';
import { INVENTORY_LIMITS, InventoryError, parseInventory } from '../../../controller/inventory/inventory.js';
import { DEFAULT_AGENT_PORT } from '../../../controller/fleet/host-target.js';

/** The examples below are Ansible's own, from "How to build your inventory" and the yaml inventory plugin's documentation. */
describe('inventory: Ansible YAML inventories', () => {
  it('reads groups of hosts (the basic example, with ungrouped)', () => {
    const inv = parseInventory(`
ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
`);
    assert.deepEqual(inv.hostNames, ['mail.example.com', 'foo.example.com', 'bar.example.com', 'one.example.com', 'two.example.com', 'three.example.com']);
    assert.deepEqual(inv.hostsOf('webservers'), ['foo.example.com', 'bar.example.com']);
    assert.deepEqual(inv.hostsOf('ungrouped'), ['mail.example.com']);
    assert.deepEqual(inv.hostsOf('all'), inv.hostNames);
    assert.deepEqual(inv.getGroup('all')!.children.sort(), ['dbservers', 'ungrouped', 'webservers']);
  });

  it('puts a host in several groups, and groups of groups with children', () => {
    const inv = parseInventory(`
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
east:
  hosts:
    foo.example.com:
    one.example.com:
    two.example.com:
west:
  hosts:
    bar.example.com:
    three.example.com:
prod:
  children:
    east:
test:
  children:
    west:
`);
    assert.deepEqual(inv.hostsOf('prod'), ['foo.example.com', 'one.example.com', 'two.example.com']);
    assert.deepEqual(inv.hostsOf('test'), ['bar.example.com', 'three.example.com']);
    assert.deepEqual(inv.groupsOf('foo.example.com').sort(), ['all', 'east', 'prod', 'webservers']);
    assert.deepEqual(inv.hostsOf('ungrouped'), [], 'every host is in a group');
  });

  it('expands numeric ranges keeping leading zeros, strides and letter ranges', () => {
    const inv = parseInventory(`
webservers:
  hosts:
    www[01:50].example.com:
odd:
  hosts:
    www[01:50:2].example.com:
databases:
  hosts:
    db-[a:f].example.com:
`);
    const www = inv.hostsOf('webservers');
    assert.equal(www.length, 50);
    assert.equal(www[0], 'www01.example.com');
    assert.equal(www[8], 'www09.example.com');
    assert.equal(www[49], 'www50.example.com');
    const odd = inv.hostsOf('odd');
    assert.equal(odd.length, 25);
    assert.deepEqual(odd.slice(0, 3), ['www01.example.com', 'www03.example.com', 'www05.example.com']);
    assert.deepEqual(inv.hostsOf('databases'), ['db-a.example.com', 'db-b.example.com', 'db-c.example.com', 'db-d.example.com', 'db-e.example.com', 'db-f.example.com']);
  });

  it('gives every host of a range the range’s host vars', () => {
    const inv = parseInventory(`
all:
  hosts:
    node[1:3]:
      ansible_user: admin
`);
    assert.deepEqual(inv.hostNames, ['node1', 'node2', 'node3']);
    assert.equal(inv.target('node2').sshUser, 'admin');
  });

  it('reads host vars and the connection vars ansible_host, ansible_port, ansible_user', () => {
    const inv = parseInventory(`
atlanta:
  hosts:
    host1:
      http_port: 80
      maxRequestsPerChild: 808
    host2:
      http_port: 303
      maxRequestsPerChild: 909
jumpers:
  hosts:
    jumper:
      ansible_port: 5555
      ansible_host: 192.0.2.50
      ansible_user: ops
`);
    assert.equal(inv.varsOf('host2').http_port, 303);
    const j = inv.target('jumper');
    assert.deepEqual({ name: j.name, address: j.address, sshPort: j.sshPort, sshUser: j.sshUser, agentPort: j.agentPort }, {
      name: 'jumper', address: '192.0.2.50', sshPort: 5555, sshUser: 'ops', agentPort: DEFAULT_AGENT_PORT,
    });
    const h = inv.target('host1');
    assert.equal(h.address, 'host1', 'without ansible_host the name is the address');
    assert.equal(h.sshPort, 22);
    assert.equal(h.sshUser, undefined);
  });

  it('inherits group vars down through children (the usa/southeast example); host vars win', () => {
    const inv = parseInventory(`
usa:
  children:
    southeast:
      children:
        atlanta:
          hosts:
            host1:
            host2:
              escape_pods: 4
        raleigh:
          hosts:
            host2:
            host3:
      vars:
        some_server: foo.southeast.example.com
        halon_system_timeout: 30
        self_destruct_countdown: 60
        escape_pods: 2
    northeast:
    northwest:
    southwest:
`);
    assert.deepEqual(inv.hostsOf('usa'), ['host1', 'host2', 'host3']);
    assert.deepEqual(inv.hostsOf('southeast'), ['host1', 'host2', 'host3']);
    assert.deepEqual(inv.hostsOf('northeast'), []);
    assert.equal(inv.varsOf('host3').some_server, 'foo.southeast.example.com');
    assert.equal(inv.varsOf('host1').escape_pods, 2);
    assert.equal(inv.varsOf('host2').escape_pods, 4, 'a host var beats a group var');
  });

  it('lets a deeper group’s vars override its parent’s and all’s, whatever the file order', () => {
    const inv = parseInventory(`
child:
  hosts:
    h1:
  vars:
    level: child
parent:
  children:
    child:
  vars:
    level: parent
    from_parent: yes
all:
  vars:
    level: all
    ansible_user: deploy
    qfleet_agent_port: 9443
`);
    const v = inv.varsOf('h1');
    assert.equal(v.level, 'child');
    assert.equal(v.from_parent, true, 'YAML 1.1 as PyYAML reads it: yes is true');
    const t = inv.target('h1');
    assert.equal(t.sshUser, 'deploy');
    assert.equal(t.agentPort, 9443);
  });

  it('reads the yaml plugin’s documented example (hosts written as a bare name, all with children)', () => {
    const inv = parseInventory(`
all: # keys must be unique, i.e. only one 'hosts' per group
    hosts:
        test1:
        test2:
            host_var: value
    vars:
        group_all_var: value
    children:   # key order does not matter, indentation does
        other_group:
            children:
                group_x:
                    hosts:
                        test5   # Note that one machine will work without a colon
                group_y:
                    hosts:
                        test6:  # So always use a colon
            vars:
                g2_var2: value3
            hosts:
                test4:
                    ansible_host: 127.0.0.1
        last_group:
            hosts:
                test1 # same host as above, additional group membership
            vars:
                group_last_var: value
`);
    assert.deepEqual(inv.hostNames.sort(), ['test1', 'test2', 'test4', 'test5', 'test6']);
    assert.deepEqual(inv.hostsOf('other_group').sort(), ['test4', 'test5', 'test6']);
    assert.deepEqual(inv.hostsOf('last_group'), ['test1']);
    assert.deepEqual(inv.hostsOf('ungrouped'), ['test2']);
    assert.equal(inv.varsOf('test5').g2_var2, 'value3');
    assert.equal(inv.varsOf('test5').group_all_var, 'value');
    assert.equal(inv.varsOf('test1').group_last_var, 'value');
    assert.equal(inv.target('test4').address, '127.0.0.1');
  });

  it('adds up a group defined in several places, and a host listed twice keeps both sets of vars', () => {
    const inv = parseInventory(`
a:
  children:
    shared:
      hosts:
        h1:
          x: 1
b:
  children:
    shared:
      hosts:
        h2:
        h1:
          y: 2
      vars:
        v: b
`);
    assert.deepEqual(inv.hostsOf('shared'), ['h1', 'h2']);
    assert.deepEqual(inv.getGroup('shared')!.parents, ['a', 'b']);
    assert.equal(inv.varsOf('h1').x, 1);
    assert.equal(inv.varsOf('h1').y, 2);
    assert.equal(inv.varsOf('h2').v, 'b');
  });

  it('reads host:port keys as ansible_port', () => {
    const inv = parseInventory(`
web:
  hosts:
    badwolf.example.com:5309:
    db-[a:b]:5432:
`);
    assert.deepEqual(inv.hostNames, ['badwolf.example.com', 'db-a', 'db-b']);
    assert.equal(inv.target('badwolf.example.com').sshPort, 5309);
    assert.equal(inv.target('db-b').sshPort, 5432);
  });

  it('reads a JSON inventory too (YAML is a superset)', () => {
    const inv = parseInventory('{"web": {"hosts": {"w1": {"ansible_host": "10.0.0.1"}}}}');
    assert.equal(inv.target('w1').address, '10.0.0.1');
  });

  it('treats an empty file as an inventory with no hosts', () => {
    assert.deepEqual(parseInventory('').hostNames, []);
    assert.deepEqual(parseInventory('# nothing\n').hostNames, []);
  });

  it('warns (as Ansible does) about a key that is not hosts, children or vars, and skips it', () => {
    const inv = parseInventory(`
webservers:
  foo.example.com:
  hosts:
    bar.example.com:
`);
    assert.deepEqual(inv.hostNames, ['bar.example.com']);
    assert.match(inv.warnings.join('\n'), /unexpected key "foo.example.com" in group webservers/);
  });

  for (const [what, text, re] of [
    ['a list at the top', '- web\n- db\n', /a mapping of groups, not a list/],
    ['hosts as a list', 'web:\n  hosts:\n    - w1\n', /hosts of group web must be a mapping/],
    ['vars as a list', 'web:\n  vars:\n    - a\n', /vars of group web must be a mapping/],
    ['host vars as a number', 'web:\n  hosts:\n    w1: 3\n', /vars of host w1 in group web must be a mapping/],
    ['broken YAML', 'web: [\n', /not valid YAML/],
    ['a range with unequal widths', 'web:\n  hosts:\n    w[01:100]:\n', /equal-length/],
    ['a range backwards', 'web:\n  hosts:\n    w[9:1]:\n', /begin <= end/],
    ['a group that is its own ancestor', 'a:\n  children:\n    b:\n      children:\n        a:\n', /ancestors/],
    ['a group containing itself through an alias', 'a: &g\n  children:\n    b: *g\n', /contains itself/],
    ['two YAML documents', 'web:\n  hosts:\n    w1:\n---\ndb:\n', /one YAML document, this file has 2/],
    ['an alias to no anchor', 'web: *nothing\n', /not valid YAML/],
  ] as const) {
    it(`refuses ${what}, saying where`, () => {
      assert.throws(() => parseInventory(text, 'hosts.yml'), (e: unknown) => e instanceof InventoryError && re.test(e.message) && e.message.includes('hosts.yml'));
    });
  }

  it('refuses a host var ansible_port that is not a port', () => {
    const inv = parseInventory('web:\n  hosts:\n    w1:\n      ansible_port: ssh\n');
    assert.throws(() => inv.target('w1'), /ansible_port of w1 must be a port number/);
  });
});

describe('inventory: YAML 1.1 scalars as PyYAML reads them', () => {
  it('takes yes/no/on/off as booleans but keeps y and n as text', () => {
    const v = parseInventory('all:\n  vars:\n    a: yes\n    b: off\n    c: y\n    n: N\n  hosts:\n    h:\n').varsOf('h');
    assert.deepEqual([v.a, v.b, v.c, v.n], [true, false, 'y', 'N']);
  });
});

describe('inventory: YAML 1.1 numbers, merges and repeats as PyYAML reads them', () => {
  it('reads YAML 1.1 octal, binary, underscores and base-60 integers, and keeps 1e3 (no dot) as text, as PyYAML does', () => {
    const v = parseInventory('all:\n  vars:\n    oct: 0755\n    bin: 0b101\n    big: 1_000\n    sexa: 1:30\n    e: 1e3\n    f: 1.5e+3\n  hosts:\n    h:\n').varsOf('h');
    assert.deepEqual([v.oct, v.bin, v.big, v.sexa, v.f], [0o755, 5, 1000, 90, 1500]);
    assert.notEqual(typeof v.e, 'number', 'PyYAML resolves a float only with a dot');
  });

  it('merges << keys and lets a repeated key keep its last value (no error), as PyYAML does', () => {
    const v = parseInventory('all:\n  vars:\n    base: &b {x: 1, y: 2}\n    merged:\n      <<: *b\n      y: 3\n    k: first\n    k: last\n  hosts:\n    h:\n').varsOf('h');
    assert.deepEqual(v.merged, { x: 1, y: 3 });
    assert.equal(v.k, 'last');
  });

  it('treats a file of comments alone as an empty inventory', () => {
    assert.deepEqual(parseInventory('# nothing here yet\n').hostNames, []);
  });
});

describe('inventory: bounded reading', () => {
  it('refuses a file larger than its limit before parsing it', () => {
    const text = `# ${'x'.repeat(INVENTORY_LIMITS.bytes)}\n`;
    assert.throws(() => parseInventory(text, 'huge.yml'), /huge\.yml: larger than 16 MiB/);
  });

  it('refuses more aliases than its limit (a billion-laughs document)', () => {
    const refs = Array.from({ length: INVENTORY_LIMITS.aliases + 1 }, (_, i) => `    v${i}: *a`).join('\n');
    assert.throws(() => parseInventory(`all:\n  vars:\n    a: &a 1\n${refs}\n`, 'laughs.yml'), /laughs\.yml: not valid YAML/);
  });

  it('refuses groups repeated through aliases beyond its bound of group definitions', () => {
    // Each level names the level below twice: 2^20 group visits from a few lines.
    const lines = ['l0: &l0 {hosts: {h: null}}'];
    for (let i = 1; i <= 20; i++) lines.push(`l${i}: &l${i}\n  children: {a${i}: *l${i - 1}, b${i}: *l${i - 1}}`);
    assert.throws(() => parseInventory(`${lines.join('\n')}\n`, 'wide.yml'), /wide\.yml: more than 100000 group definitions/);
  });
});
