import { strict as assert } from 'node:assert';
import { parseDocument } from 'yaml';
import { parsePlainYaml } from '../../../controller/inventory/plain-yaml.js';
import { parseInventory, YAML_OPTIONS } from '../../../controller/inventory/inventory.js';

/** What `yaml` itself reads, as parseInventory reads it (errors included). */
function slow(text: string): { errors: number; data: unknown } {
  const doc = parseDocument(text, YAML_OPTIONS);
  return { errors: doc.errors.length, data: doc.toJS({ maxAliasCount: 1000 }) };
}

/** Either the fast reader gives up, or it reads exactly what yaml reads from a valid document. */
function agrees(text: string): unknown {
  const fast = parsePlainYaml(text, YAML_OPTIONS);
  if (fast !== undefined) {
    const s = slow(text);
    assert.equal(s.errors, 0, `fast reader accepted what yaml rejects: ${JSON.stringify(text)}`);
    assert.deepStrictEqual(fast, s.data, JSON.stringify(text));
  }
  return fast;
}

describe('controller/inventory/plain-yaml: the fast reader of plain inventories', () => {
  it('reads a plain inventory (groups, hosts, vars, comments, blank lines) exactly as yaml does', () => {
    const text = [
      '# the fleet',
      'all:',
      '  vars:',
      '    qfleet_agent_port: 7443',
      '    ansible_user: root',
      '',
      '  children:',
      '    web:',
      '      hosts:',
      '        web-01.example.com:',
      '          ansible_host: 10.0.0.1',
      '        web-02:   ',
      '    db:',
      '      # none yet',
      '      hosts:',
      'ungrouped:',
      '',
    ].join('\n');
    const fast = agrees(text);
    assert.notEqual(fast, undefined);
    assert.deepStrictEqual(fast, {
      all: { vars: { qfleet_agent_port: 7443, ansible_user: 'root' }, children: { web: { hosts: { 'web-01.example.com': { ansible_host: '10.0.0.1' }, 'web-02': null } }, db: { hosts: null } } },
      ungrouped: null,
    });
  });

  it('resolves every word by YAML 1.1 with PyYAML booleans, as yaml does', () => {
    const words = ['yes', 'No', 'ON', 'off', 'y', 'n', 'Y', 'true', 'False', 'null', 'Null', 'NULL', '0x1F', '0o17', '0777', '0b101', '1_000', '-12', '+5', '3.25', '.5', '-.inf', '.NaN', '1e3', '6.8523015e+5',
      '190:20:30', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '127.0.0.1', 'fe80::1', '0', '00', '08', '-', '-x', 'a/b', 'x.y.z', '12345678901234567890'];
    for (const w of words) {
      agrees(`a:\n  v: ${w}\n`);
      agrees(`${w}:\n  v: 1\n`);
      agrees(`a:\n  ${w}: x\n`);
    }
    // The ones that are plainly words are read fast.
    assert.deepStrictEqual(agrees('a:\n  b: yes\n  c: y\n  d: 0777\n  e: 127.0.0.1\n  f: Null\n'), { a: { b: true, c: 'y', d: 511, e: '127.0.0.1', f: null } });
  });

  it('gives up on whatever is not a plain nesting of one-word keys and values', () => {
    const others = [
      'a: "quoted"\n', "a: 'q'\n", 'a: [1, 2]\n', 'a: {b: 1}\n', 'a:\n  - x\n', 'a: &x 1\nb: *x\n', 'a: !!str 1\n', 'a: |\n  text\n', 'a: two words\n',
      'a: 1 # note\n', 'a:\n\tb: 1\n', 'a:\n  b: 1\na:\n  c: 2\n', 'web:80:\n', 'www[01:50]:\n', 'a: b\n  c\n', 'a:\n    b: 1\n  c: 2\n', '  a: 1\n', '---\na: 1\n',
      'a:\r\n  b: 1\r\n', '<<: 1\n', 'a:b\n', '__proto__:\n  x: 1\n', 'ünï:\n', '', '# only a comment\n', 'a: -\n', 'a:\n  b: 1\n    c: 2\n',
      'yes:\n', '1:\n', 'null:\n',
    ];
    for (const t of others) assert.equal(agrees(t), undefined, JSON.stringify(t));
  });

  it('leaves parseInventory reading the same inventories the same way', () => {
    const plain = 'all:\n  vars:\n    qfleet_agent_port: 7443\n  children:\n    bench:\n      hosts:\n        b-1:\n          ansible_host: 127.2.0.2\n        b-2:\n';
    const quoted = plain.replace('127.2.0.2', '"127.2.0.2"');
    assert.equal(parsePlainYaml(quoted, YAML_OPTIONS), undefined);
    const a = parseInventory(plain);
    const b = parseInventory(quoted);
    assert.deepStrictEqual(a.hostNames, b.hostNames);
    for (const h of a.hostNames) assert.deepStrictEqual(a.target(h), b.target(h));
  });
});
