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
    assert.match(e.message, /HAS CHANGED/);
    await expectRefused(h, file, true, 'changed');
    assert.equal(readFileSync(file, 'utf8'), before);
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
