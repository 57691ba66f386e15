import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgentCsr } from '../../../agent/tls/csr.js';
import { BootstrapFailure, bootstrapHosts, type BootstrapArtifacts, type BootstrapOptions } from '../../../controller/bootstrap/bootstrap.js';
import { HostKeyError, RemoteTimeoutError, type SshTarget } from '../../../controller/bootstrap/ssh.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import type { NameResolver } from '../../../controller/fleet/resolve.js';
import { initPki } from '../../../controller/pki/index.js';
import { ManualClock } from '../../support/manual-clock.js';
import { FakeSession, HANG, type Reply } from './fake-session.js';

const ARTIFACTS: BootstrapArtifacts = {
  bundle: Buffer.from('// agent'), cli: Buffer.from('// cli'), supervisor: '#!/bin/sh\n',
  rcAgent: '#!/bin/sh\n', rcContainers: '#!/bin/sh\n', newsyslog: '/var/log/qfleetd.log root:wheel 600 7 10240 * JC /var/run/qfleetd.pid\n', unitAgent: '[Service]\n', unitContainers: '[Service]\n',
};
const host = (name: string, address = name): HostTarget => ({ name, address, sshPort: 22, sshUser: 'root', agentPort: 7443, vars: { qfleet_service: 'supervised' } });
const tick = async (n = 20) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };
/** An error as ssh2 raises it while connecting (`level` says where it arose). */
const sshError = (message: string, level: string, code?: string) => Object.assign(new Error(message), { level, ...(code ? { code } : {}) });

/**
 * Bootstrap goes through the fan-out every command uses: its hosts end ok,
 * failed, unreachable or timed out, --forks at a time, under one deadline.
 */
describe('bootstrap through the fan-out', () => {
  let dir: string;
  let pkiDir: string;
  let csrPem: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-bs-fanout-'));
    pkiDir = join(dir, 'pki');
    await initPki(pkiDir);
    csrPem = (await makeAgentCsr({ dir: join(dir, 'agent-tls'), name: 'web1' })).csrPem;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A Linux host, as root, with node and nothing of qfleet installed; `first` rules answer before the usual ones. */
  const linux = (...first: [RegExp, Reply][]) => new FakeSession([
    ...first,
    [/^uname/, { stdout: 'Linux 6.1.0 x86_64\n' }],
    [/^id -u$/, { stdout: '0\n' }],
    [/^sh -c /, { stdout: '/usr/bin/node\nv22.11.0\n' }],
    [/ -e 'const fs=/, { stdout: '{"files":{},"cert":null,"ca":null,"keyMatches":false}\n' }],
    [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.f1\n' }],
    [/tls-request/, { stdout: csrPem }],
    [/./, {}],
  ]);

  const options = (connect: BootstrapOptions['connect'], extra: Partial<BootstrapOptions> = {}): BootstrapOptions => ({
    connect, artifacts: ARTIFACTS, pkiDir, defaultUser: 'root', waitHealthy: async () => undefined, ...extra,
  });

  it('each host ends ok, failed, unreachable or timed out, with the steps it took', async () => {
    const sessions: Record<string, () => FakeSession> = {
      ok: () => linux(),
      broken: () => linux([/^install -d/, { code: 1, stderr: 'Read-only file system' }]),
      slowstep: () => linux([/^install -d/, () => { throw new RemoteTimeoutError('remote command timed out after 600 s: install -d ...'); }]),
    };
    const refusals: Record<string, Error> = {
      refused: sshError('connect ECONNREFUSED 192.0.2.2:22', 'client-socket', 'ECONNREFUSED'),
      noroute: Object.assign(new Error('connect EHOSTUNREACH 192.0.2.3:22'), { code: 'EHOSTUNREACH' }),
      silent: sshError('Timed out while waiting for handshake', 'client-timeout'),
      hostkey: new HostKeyError('host key of keyed is not known (ssh-ed25519 SHA256:x); check it and add it to known_hosts, or rerun with --accept-new', 'unknown'),
      login: sshError('All configured authentication methods failed', 'client-authentication'),
    };
    const names = [...Object.keys(sessions), ...Object.keys(refusals)];
    const out = await bootstrapHosts(names.map((n) => host(n)), options(async (t) => {
      const r = refusals[t.name];
      if (r) throw r;
      return sessions[t.name]!();
    }));
    assert.deepEqual(out.map((o) => [o.host.name, o.status]), [
      ['ok', 'ok'],
      ['broken', 'failed'],
      ['slowstep', 'timed out'],
      ['refused', 'unreachable'],
      ['noroute', 'unreachable'],
      ['silent', 'timed out'],
      ['hostkey', 'failed'],
      ['login', 'failed'],
    ]);
    assert.match(out[0]!.result!.steps.at(-1)!, /^health SERVING over mutual TLS on ok:7443$/);
    assert.equal(out[1]!.error, 'make directories: `install -d -m 0755 /usr/local/lib/qfleet` exited 1: Read-only file system');
    const broken = out[1]!.cause;
    assert.ok(broken instanceof BootstrapFailure);
    assert.deepEqual(broken.partial.steps, ['detected Linux 6.1.0 x86_64', 'node v22.11.0 present', 'isolation tools present (tini-static, static busybox)'], 'the steps taken before it failed');
    assert.match(out[3]!.error!, /ECONNREFUSED/);
    assert.match(out[6]!.error!, /^host key of keyed is not known/);
  });

  it('the deadline falls in the middle of a step: the host ends timed out, its SSH session is closed, nothing more runs on it', async () => {
    const clock = new ManualClock();
    const hung = linux([/^install -d/, HANG]);
    const quick = linux();
    let quickDone!: () => void;
    const quickEnded = new Promise<void>((r) => (quickDone = r));
    const run = bootstrapHosts([host('hung'), host('quick')], options(async (t) => (t.name === 'hung' ? hung : quick), {
      clock, timeoutMs: 60_000, onSettled: (o) => o.host.name === 'quick' && quickDone(),
    }));
    await quickEnded;
    assert.match(hung.lines.at(-1)!, /^install -d /, 'hung is in the middle of a step');
    clock.advance(60_000);
    const out = await run;
    assert.deepEqual(out.map((o) => [o.host.name, o.status, o.error]), [['hung', 'timed out', 'no answer within 60s'], ['quick', 'ok', undefined]]);
    assert.equal(hung.closed, true, 'the session was closed when the deadline fell');
    const ran = hung.lines.length;
    await tick();
    assert.equal(hung.lines.length, ran, 'no command ran after the deadline');
    assert.equal(quick.closed, true);
  });

  it('never more than --forks SSH sessions at once', async () => {
    let open = 0;
    let most = 0;
    const out = await bootstrapHosts(['a', 'b', 'c', 'd', 'e'].map((n) => host(n)), options(async () => {
      open++;
      most = Math.max(most, open);
      const s = linux();
      const close = s.close.bind(s);
      s.close = () => { open--; close(); };
      await tick(2);
      return s;
    }, { forks: 2 }));
    assert.deepEqual(out.map((o) => o.status), ['ok', 'ok', 'ok', 'ok', 'ok']);
    assert.equal(most, 2);
  });

  it('a name is resolved by the fan-out (the killable child in the CLI) and the address found is dialled; known_hosts still sees the name', async () => {
    const dialled: SshTarget[] = [];
    const resolver: NameResolver = { lookup: async (name) => (name === 'web1.example' ? ['192.0.2.77'] : []), close: () => undefined };
    const out = await bootstrapHosts([host('web1', 'web1.example')], options(async (t) => {
      dialled.push(t);
      return linux();
    }, { resolver }));
    assert.equal(out[0]!.status, 'ok', out[0]!.error);
    assert.deepEqual(dialled, [{ name: 'web1', address: 'web1.example', port: 22, user: 'root', dial: '192.0.2.77' }]);
  });

  it('a name that does not resolve leaves its host unreachable, and SSH is never tried', async () => {
    let tried = false;
    const resolver: NameResolver = { lookup: async () => { throw new Error('getaddrinfo ENOTFOUND nowhere.example'); }, close: () => undefined };
    const [o] = await bootstrapHosts([host('nowhere', 'nowhere.example')], options(async () => { tried = true; return linux(); }, { resolver }));
    assert.equal(o!.status, 'unreachable');
    assert.match(o!.error!, /^cannot resolve nowhere\.example: getaddrinfo ENOTFOUND/);
    assert.equal(tried, false);
  });
});
