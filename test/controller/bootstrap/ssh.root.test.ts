import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKnownHosts } from '../../../controller/bootstrap/known-hosts.js';
import { connectSsh, HostKeyError, type SshTarget } from '../../../controller/bootstrap/ssh.js';
import { NetnsFleet, type NetnsHost } from '../../support/netns-fleet.js';

describe('SSH host keys against real sshd in network namespaces @root', function () {
  this.timeout(120_000);
  let fleet: NetnsFleet;
  let scratch: string;

  before(async () => {
    fleet = await NetnsFleet.create({ hosts: 2 });
    scratch = mkdtempSync(join(tmpdir(), 'qf-ssh-test-'));
  });
  after(async () => {
    rmSync(scratch, { recursive: true, force: true });
    await fleet?.destroy();
  });

  const target = (h: NetnsHost): SshTarget => ({ name: h.name, address: h.address, port: h.sshPort, user: fleet.user });
  const auth = () => ({ identityFile: fleet.identityFile });

  async function expectRefused(h: NetnsHost, knownHosts: string, acceptNew: boolean, status: string): Promise<HostKeyError> {
    try {
      const s = await connectSsh(target(h), auth(), { knownHostsFiles: [knownHosts], acceptNew });
      s.close();
    } catch (e) {
      assert.ok(e instanceof HostKeyError, `expected a HostKeyError, got ${String(e)}`);
      assert.equal(e.verdict, status);
      return e;
    }
    assert.fail('the connection was not refused');
  }

  it('connects with a known key (plain [host]:port entry), runs commands and sudo -n as root', async () => {
    const h = fleet.hosts[0]!;
    const s = await connectSsh(target(h), auth(), { knownHostsFiles: [fleet.knownHostsFile], acceptNew: false });
    try {
      assert.equal((await s.exec('id -un')).stdout.trim(), fleet.user);
      assert.equal((await s.exec('sudo -n id -u')).stdout.trim(), '0');
      const r = await s.exec('cat; exit 3', { stdin: 'hello' });
      assert.deepEqual([r.code, r.stdout], [3, 'hello']);
      await s.upload(`/tmp/qf-upload-${process.pid}`, 'data', 0o640);
      assert.equal((await s.exec(`stat -c %a /tmp/qf-upload-${process.pid} && rm /tmp/qf-upload-${process.pid}`)).stdout.trim(), '640');
    } finally {
      s.close();
    }
  });

  it('connects with a hashed known_hosts entry', async () => {
    const file = join(scratch, 'hashed');
    fleet.writeKnownHosts(file, { hashed: true });
    assert.match(readFileSync(file, 'utf8'), /^\|1\|/);
    const s = await connectSsh(target(fleet.hosts[1]!), auth(), { knownHostsFiles: [file], acceptNew: false });
    s.close();
  });

  it('refuses an unknown host key (fails closed) and names --accept-new', async () => {
    const file = join(scratch, 'only-host2');
    fleet.writeKnownHosts(file, { hosts: [fleet.hosts[1]!] });
    const e = await expectRefused(fleet.hosts[0]!, file, false, 'unknown');
    assert.match(e.message, /not known.*SHA256:.*--accept-new/);
  });

  it('refuses a changed host key, with or without --accept-new, and leaves known_hosts alone', async () => {
    const file = join(scratch, 'changed');
    const other = join(scratch, 'other_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const h = fleet.hosts[0]!;
    const fake = readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(file, `[${h.address}]:${h.sshPort} ${fake}\n`);
    const before = readFileSync(file, 'utf8');
    const e = await expectRefused(h, file, false, 'changed');
    assert.match(e.message, new RegExp(`^HOST KEY OF \\[${h.address}\\]:2222 HAS CHANGED: it now offers ssh-ed25519 SHA256:\\S+, not the key in ${file}:1; `));
    await expectRefused(h, file, true, 'changed');
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  /** The `ssh-keygen ...` line a refusal names, run as written, then --accept-new: the operator's whole fix. */
  async function followTheFix(e: HostKeyError, h: NetnsHost, file: string): Promise<void> {
    const line = /`(ssh-keygen -f \S+ -R '\[[0-9.]+\]:2222')`/.exec(e.message)?.[1];
    assert.equal(line, `ssh-keygen -f ${file} -R '[${h.address}]:2222'`, e.message);
    execFileSync('sh', ['-c', line!], { stdio: 'ignore' });
    assert.equal(parseKnownHosts(readFileSync(file, 'utf8')).length, 0, 'the old entry is gone');
    const s = await connectSsh(target(h), auth(), { knownHostsFiles: [file], acceptNew: true });
    s.close();
    assert.ok(parseKnownHosts(readFileSync(file, 'utf8'))[0]!.key.equals(h.hostKey));
  }

  it('a changed key names the ssh-keygen -R line that removes the old entry; run as written, it does', async () => {
    const file = join(scratch, 'changed-fix');
    const other = join(scratch, 'other_key2');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const h = fleet.hosts[1]!;
    writeFileSync(file, `[${h.address}]:${h.sshPort} ${readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    await followTheFix(await expectRefused(h, file, false, 'changed'), h, file);
  });

  it('known_hosts has only an rsa key and the server offers only ed25519: a type mismatch, said plainly, never accepted', async () => {
    const file = join(scratch, 'rsa-only');
    const rsa = join(scratch, 'rsa_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
    const h = fleet.hosts[0]!;
    writeFileSync(file, `[${h.address}]:${h.sshPort} ${readFileSync(`${rsa}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const e = await expectRefused(h, file, false, 'type-mismatch');
    assert.match(e.message, new RegExp(`^host key type mismatch for \\[${h.address}\\]:2222: known_hosts has only ssh-rsa key for it \\(${file}:1\\), and the server offers only ssh-ed25519; qfleet does not trust a key of another type\\. `));
    await expectRefused(h, file, true, 'type-mismatch');
    await followTheFix(e, h, file);
  });

  it('--accept-new trusts an unknown key on first use and records it; the next connection needs no flag', async () => {
    const file = join(scratch, 'tofu');
    writeFileSync(file, '# empty\n');
    const h = fleet.hosts[1]!;
    const s = await connectSsh(target(h), auth(), { knownHostsFiles: [file], acceptNew: true });
    s.close();
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.hosts, `[${h.address}]:${h.sshPort}`);
    assert.ok(entries[0]!.key.equals(h.hostKey));
    const s2 = await connectSsh(target(h), auth(), { knownHostsFiles: [file], acceptNew: false });
    s2.close();
  });
});
