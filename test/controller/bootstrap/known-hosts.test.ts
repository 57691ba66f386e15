import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appendKnownHost, blobKeyType, hashHostName, hostFieldMatches, hostLookupName, knownHostsLine, knownKeyTypes, parseKnownHosts, readKnownHostsFiles,
  removalHints, verifyHostKey,
} from '../../../controller/bootstrap/known-hosts.js';
import { hostKeyRefusal } from '../../../controller/bootstrap/ssh.js';

/** An SSH public-key blob of the given type with arbitrary key bytes. */
function blob(type: string, fill: number): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  const kl = Buffer.alloc(4);
  kl.writeUInt32BE(32);
  return Buffer.concat([len, t, kl, Buffer.alloc(32, fill)]);
}
const KEY_A = blob('ssh-ed25519', 1);
const KEY_B = blob('ssh-ed25519', 2);
const KEY_E = blob('ecdsa-sha2-nistp256', 3);
const KEY_R = blob('ssh-ed25519', 4);
const b64 = (b: Buffer) => b.toString('base64');

describe('known_hosts', () => {
  it('lookup names: bare host for port 22, [host]:port otherwise', () => {
    assert.equal(hostLookupName('10.0.0.1', 22), '10.0.0.1');
    assert.equal(hostLookupName('10.0.0.1', 2222), '[10.0.0.1]:2222');
    assert.equal(hostLookupName('web1.example', 2200), '[web1.example]:2200');
  });

  it('parses plain, comma lists, comments, markers; skips malformed and mismatched lines', () => {
    const text = [
      '# comment',
      '',
      `web1,10.0.0.1 ssh-ed25519 ${b64(KEY_A)} root@web1`,
      `[10.0.0.2]:2222 ecdsa-sha2-nistp256 ${b64(KEY_E)}`,
      `@revoked * ssh-ed25519 ${b64(KEY_B)}`,
      `@cert-authority *.example ssh-ed25519 ${b64(KEY_A)}`,
      '@bogus host ssh-ed25519 AAAA',
      'onlyhost',
      `mismatch ssh-rsa ${b64(KEY_A)}`,
      'bad ssh-ed25519 not*base64',
    ].join('\n');
    const e = parseKnownHosts(text, 'kh');
    assert.deepEqual(e.map((x) => [x.marker, x.hosts, x.keyType, x.line]), [
      [undefined, 'web1,10.0.0.1', 'ssh-ed25519', 3],
      [undefined, '[10.0.0.2]:2222', 'ecdsa-sha2-nistp256', 4],
      ['revoked', '*', 'ssh-ed25519', 5],
      ['cert-authority', '*.example', 'ssh-ed25519', 6],
    ]);
    assert.ok(e[0]!.key.equals(KEY_A));
    assert.equal(blobKeyType(KEY_E), 'ecdsa-sha2-nistp256');
  });

  it('matches plain names exactly; the port is part of the name', () => {
    assert.ok(hostFieldMatches('web1,10.0.0.1', '10.0.0.1'));
    assert.ok(hostFieldMatches('web1,10.0.0.1', 'WEB1'));
    assert.ok(!hostFieldMatches('web1,10.0.0.1', 'web10'));
    assert.ok(!hostFieldMatches('web1,10.0.0.1', '10.0.0.11'));
    assert.ok(hostFieldMatches('[10.0.0.2]:2222', '[10.0.0.2]:2222'));
    assert.ok(!hostFieldMatches('[10.0.0.2]:2222', '10.0.0.2'));
    assert.ok(!hostFieldMatches('10.0.0.2', '[10.0.0.2]:2222'));
    assert.ok(!hostFieldMatches('[10.0.0.2]:2222', '[10.0.0.2]:22220'));
  });

  it('matches hashed entries (|1|salt|hash, as ssh-keygen -H writes) including [host]:port', () => {
    // A fixed vector: HMAC-SHA1 with this salt over "[10.231.5.11]:2222".
    const salt = Buffer.from('0123456789abcdef0123', 'latin1');
    const field = hashHostName('[10.231.5.11]:2222', salt);
    assert.match(field, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+$/);
    assert.ok(hostFieldMatches(field, '[10.231.5.11]:2222'));
    assert.ok(!hostFieldMatches(field, '10.231.5.11'));
    assert.ok(!hostFieldMatches(field, '[10.231.5.11]:22'));
    assert.ok(!hostFieldMatches('|1|broken', 'x'));
    // A random salt each time, and still matching.
    assert.notEqual(hashHostName('h'), hashHostName('h'));
    assert.ok(hostFieldMatches(hashHostName('h'), 'h'));
  });

  it('matches an entry made by OpenSSH ssh-keygen -H', () => {
    // ssh-keygen -H on a file holding "[10.9.8.7]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQuQ4Jyz48BR1fuHqWmiJIzlp2SzxndjZ+kZY8lmjp6"
    const line = '|1|oZO6IOqr8jdocdAaxNCc7jU1YlM=|VZagsDrXNmXJaKzZ2BY1tYkn27Y= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQuQ4Jyz48BR1fuHqWmiJIzlp2SzxndjZ+kZY8lmjp6';
    const [e] = parseKnownHosts(line);
    assert.ok(hostFieldMatches(e!.hosts, '[10.9.8.7]:2222'));
    assert.ok(!hostFieldMatches(e!.hosts, '10.9.8.7'));
    assert.ok(!hostFieldMatches(e!.hosts, '[10.9.8.7]:2223'));
    assert.equal(verifyHostKey([e!], ['[10.9.8.7]:2222'], e!.key).status, 'known');
  });

  it('supports * and ? patterns and ! negation', () => {
    assert.ok(hostFieldMatches('*.example', 'a.example'));
    assert.ok(hostFieldMatches('web?', 'web1'));
    assert.ok(!hostFieldMatches('web?', 'web10'));
    assert.ok(!hostFieldMatches('*.example,!bad.example', 'bad.example'));
    assert.ok(hostFieldMatches('*.example,!bad.example', 'good.example'));
  });

  it('a host known only through @cert-authority is refused, never unknown (so --accept-new cannot trust it)', () => {
    const e = parseKnownHosts([`@cert-authority *.example ssh-ed25519 ${b64(KEY_A)}`, `plain.example ssh-ed25519 ${b64(KEY_B)}`].join('\n'));
    assert.equal(verifyHostKey(e, ['web1.example'], KEY_R).status, 'cert-authority');
    assert.equal(verifyHostKey(e, ['plain.example'], KEY_B).status, 'known', 'a plain entry still decides');
    assert.equal(verifyHostKey(e, ['other.org'], KEY_R).status, 'unknown');
  });

  it('verdicts: known, unknown, changed (same or other type), revoked', () => {
    const e = parseKnownHosts([
      `[10.0.0.1]:2222 ssh-ed25519 ${b64(KEY_A)}`,
      `${hashHostName('10.0.0.3')} ecdsa-sha2-nistp256 ${b64(KEY_E)}`,
      `@revoked 10.0.0.9 ssh-ed25519 ${b64(KEY_R)}`,
    ].join('\n'));
    assert.equal(verifyHostKey(e, ['[10.0.0.1]:2222'], KEY_A).status, 'known');
    assert.equal(verifyHostKey(e, ['[10.0.0.1]:2222'], KEY_B).status, 'changed');
    assert.equal(verifyHostKey(e, ['[10.0.0.1]:2222'], KEY_E).status, 'changed');
    assert.equal(verifyHostKey(e, ['10.0.0.1'], KEY_A).status, 'unknown', 'port 22 is another name');
    assert.equal(verifyHostKey(e, ['[10.0.0.2]:2222'], KEY_A).status, 'unknown');
    assert.equal(verifyHostKey(e, ['10.0.0.3'], KEY_E).status, 'known');
    assert.equal(verifyHostKey(e, ['10.0.0.3'], KEY_A).status, 'changed');
    assert.equal(verifyHostKey(e, ['10.0.0.9'], KEY_R).status, 'revoked');
    // A revoked key is never accepted, whatever host presents it.
    assert.equal(verifyHostKey(e, ['10.0.0.1'], KEY_R).status, 'revoked');
    // Known under its inventory name too.
    assert.equal(verifyHostKey(e, ['[10.0.0.5]:2222', '[10.0.0.1]:2222'], KEY_A).status, 'known');
    assert.deepEqual(knownKeyTypes(e, ['10.0.0.3']), ['ecdsa-sha2-nistp256']);
  });

  it('appends an accept-new line on a line of its own, creating the file 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-kh-'));
    try {
      const f = join(dir, 'sub/known_hosts');
      appendKnownHost(f, knownHostsLine('[10.0.0.1]:2222', KEY_A));
      writeFileSync(f, `${readFileSync(f, 'utf8')}# no newline at the end`);
      appendKnownHost(f, knownHostsLine('10.0.0.2', KEY_B));
      const e = parseKnownHosts(readFileSync(f, 'utf8'));
      assert.deepEqual(e.map((x) => x.hosts), ['[10.0.0.1]:2222', '10.0.0.2']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a refused key says where it was known and how to remove the old entry', () => {
    const kh = [
      `[10.0.0.1]:2222 ssh-ed25519 ${b64(KEY_A)}`,
      `web1,10.0.0.4 ssh-ed25519 ${b64(KEY_A)}`,
      `${hashHostName('[10.0.0.3]:2222')} ssh-ed25519 ${b64(KEY_A)}`,
      `*.example ssh-ed25519 ${b64(KEY_A)}`,
    ].join('\n');

    it('ssh-keygen -f FILE -R NAME with the name as known_hosts has it: [host]:port quoted for a port other than 22, hashed entries too', () => {
      const e = parseKnownHosts(kh, '/root/.ssh/known_hosts');
      assert.deepEqual(removalHints(e, ['[10.0.0.1]:2222']), [`ssh-keygen -f /root/.ssh/known_hosts -R '[10.0.0.1]:2222'`]);
      assert.deepEqual(removalHints(e, ['10.0.0.4', 'web1']), ['ssh-keygen -f /root/.ssh/known_hosts -R 10.0.0.4']);
      assert.deepEqual(removalHints(e, ['[10.0.0.3]:2222']), [`ssh-keygen -f /root/.ssh/known_hosts -R '[10.0.0.3]:2222'`]);
      assert.deepEqual(removalHints(e, ['w.example']), ['edit /root/.ssh/known_hosts:4 by hand (its pattern *.example matches w.example)']);
      const spaced = parseKnownHosts(kh, '/home/ops/my keys/known_hosts');
      assert.deepEqual(removalHints(spaced, ['[10.0.0.1]:2222']), [`ssh-keygen -f '/home/ops/my keys/known_hosts' -R '[10.0.0.1]:2222'`]);
    });

    it('files are named by their full path', () => {
      const dir = mkdtempSync(join(tmpdir(), 'qf-kh-'));
      const cwd = process.cwd();
      try {
        writeFileSync(join(dir, 'kh'), kh);
        process.chdir(dir);
        assert.equal(readKnownHostsFiles(['kh'])[0]!.file, join(dir, 'kh'));
      } finally {
        process.chdir(cwd);
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a changed key: the new fingerprint, FILE:LINE of the old one, and the exact line that removes it', () => {
      const e = parseKnownHosts(kh, '/root/.ssh/known_hosts');
      const names = ['[10.0.0.1]:2222', '[host1]:2222'];
      const v = verifyHostKey(e, names, KEY_B);
      assert.equal(v.status, 'changed');
      if (v.status !== 'changed') return;
      const err = hostKeyRefusal(v, names, KEY_B);
      assert.equal(err.verdict, 'changed');
      assert.match(err.message, /^HOST KEY OF \[10\.0\.0\.1\]:2222 HAS CHANGED: it now offers ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}, not the key in \/root\/\.ssh\/known_hosts:1; /);
      assert.ok(err.message.endsWith("remove the old entry with `ssh-keygen -f /root/.ssh/known_hosts -R '[10.0.0.1]:2222'` and rerun with --accept-new"), err.message);
    });
  });
});
