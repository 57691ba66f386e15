import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAgentCsr } from '../../../agent/tls/csr.js';
import { bootstrapHosts, type BootstrapArtifacts, type BootstrapOptions } from '../../../controller/bootstrap/bootstrap.js';
import { describeChanges } from '../../../controller/bootstrap/changes.js';
import { hostPaths, managedFiles } from '../../../controller/bootstrap/plan.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import { initPki, pkiPath, signAgentCsr } from '../../../controller/pki/index.js';
import { FakeSession, type Reply } from './fake-session.js';

const ARTIFACTS: BootstrapArtifacts = {
  bundle: Buffer.from('// agent bundle v1'), cli: Buffer.from('// cli bundle v1'), supervisor: '#!/bin/sh\n# supervisor\n',
  rcAgent: '#!/bin/sh\n', rcContainers: '#!/bin/sh\n', newsyslog: '/var/log/qfleetd.log root:wheel 600 7 10240 * JC /var/run/qfleetd.pid\n', unitAgent: '[Service]\nExecStart=x\n', unitContainers: '[Service]\nExecStart=x\nExecStop=y\n',
};
const DAY = 86_400_000;
const PROBE = / -e 'const fs=/;
const NODE = '/usr/bin/node';
const web1: HostTarget = { name: 'web1', address: '192.0.2.10', sshPort: 22, sshUser: 'root', agentPort: 7443, vars: { qfleet_service: 'supervised' } };

/**
 * Re-running bootstrap on a host (Linux, supervised, as root) against a fake
 * session that answers the probe with what "is installed": the digests of
 * the files as some earlier run rendered them, and a certificate.
 */
describe('bootstrap re-runs: only what changed is uploaded, the agent restarts only when it must', () => {
  let dir: string;
  let pkiDir: string;
  let csrPem: string;
  let certPem: string;
  let caPem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-rerun-'));
    pkiDir = join(dir, 'pki');
    await initPki(pkiDir);
    csrPem = (await makeAgentCsr({ dir: join(dir, 'agent-tls'), name: 'web1', ips: ['192.0.2.10'] })).csrPem;
    certPem = (await signAgentCsr(pkiDir, csrPem, ['web1', '192.0.2.10'])).certPem;
    caPem = readFileSync(pkiPath(pkiDir, 'caCert'), 'utf8');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The probe's answer for a host installed from `from` with node at `node`. */
  function installedAs(from: BootstrapArtifacts, node = NODE, tls: { cert?: string | null; keyMatches?: boolean } = {}): string {
    const files = Object.fromEntries(managedFiles('supervised', hostPaths('linux', web1.vars), node, from, 7443)
      .map((f) => [f.dest, createHash('sha256').update(f.data).digest('hex')]));
    return `${JSON.stringify({ files, cert: tls.cert === undefined ? certPem : tls.cert, ca: caPem, keyMatches: tls.keyMatches ?? true })}\n`;
  }

  function session(probe: string, opts: { running?: boolean } = {}): FakeSession {
    const rules: [RegExp, Reply][] = [
      [/^uname/, { stdout: 'Linux 6.1.0 x86_64\n' }],
      [/^id -u$/, { stdout: '0\n' }],
      [/^sh -c /, { stdout: `${NODE}\nv20.19.2\n` }],
      [PROBE, { stdout: probe }],
      [/qfleetd-supervise status /, { code: opts.running === false ? 3 : 0 }],
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.r1\n' }],
      [/tls-request/, { stdout: csrPem }],
      [/./, {}],
    ];
    return new FakeSession(rules);
  }

  async function run(s: FakeSession, extra: Partial<BootstrapOptions> = {}) {
    const [o] = await bootstrapHosts([web1], {
      connect: async () => s, artifacts: ARTIFACTS, pkiDir, defaultUser: 'root', waitHealthy: async () => undefined, ...extra,
    });
    assert.equal(o!.status, 'ok', o!.error);
    return { r: o!.result!, uploaded: s.uploads.map((u) => u.path.split('/').pop()), restarted: s.lines.some((l) => /qfleetd-supervise restart /.test(l)) };
  }

  it('nothing changed and the agent runs: nothing uploaded, installed or restarted; "unchanged"', async () => {
    const s = session(installedAs(ARTIFACTS));
    const { r, uploaded, restarted } = await run(s);
    assert.deepEqual(uploaded, []);
    assert.equal(restarted, false);
    assert.ok(!s.lines.some((l) => /^mktemp|^install |^mv |tls-request/.test(l)), s.lines.join('\n'));
    assert.ok(s.lines.some((l) => /qfleetd-supervise status /.test(l)), 'it checked that the agent runs');
    assert.deepEqual(r.done, { updated: [], certificateReissued: undefined, agent: 'left running' });
    assert.equal(describeChanges(r.done!), 'unchanged');
    assert.ok(r.steps.includes('agent bundle and configuration unchanged'));
    assert.ok(r.steps.some((x) => /^certificate kept \(expires in 36\d days\)$/.test(x)), r.steps.join('\n'));
  });

  it('a new agent bundle: only it is uploaded and installed, the agent restarts, the certificate stays', async () => {
    const s = session(installedAs({ ...ARTIFACTS, bundle: Buffer.from('// agent bundle v0') }));
    const { r, uploaded, restarted } = await run(s);
    assert.deepEqual(uploaded, ['qfleetd.js']);
    assert.equal(restarted, true);
    assert.ok(!s.lines.some((l) => /tls-request/.test(l)));
    assert.equal(describeChanges(r.done!), 'updated qfleetd.js; restarted');
  });

  it('only the CLI changed: it is updated, the agent is left running', async () => {
    const s = session(installedAs({ ...ARTIFACTS, cli: Buffer.from('// cli bundle v0') }));
    const { r, uploaded, restarted } = await run(s);
    assert.deepEqual(uploaded, ['qfleet.js']);
    assert.equal(restarted, false);
    assert.equal(describeChanges(r.done!), 'updated qfleet.js');
  });

  it('node moved: how the agent is started changed, so it is restarted on the new node', async () => {
    const s = session(installedAs(ARTIFACTS, '/usr/local/bin/node'));
    const { r, uploaded, restarted } = await run(s);
    assert.deepEqual(uploaded, ['qfleetd.start']);
    assert.equal(restarted, true);
    assert.match(s.uploads[0]!.data, /qfleetd-supervise restart \/run\/qfleetd-supervise\.pid \/var\/log\/qfleetd\.log \/usr\/bin\/node /);
    assert.equal(describeChanges(r.done!), 'updated qfleetd.start; restarted');
  });

  it('unchanged but not running: started, nothing uploaded', async () => {
    const s = session(installedAs(ARTIFACTS), { running: false });
    const { r, uploaded, restarted } = await run(s);
    assert.deepEqual(uploaded, []);
    assert.equal(restarted, true);
    assert.equal(describeChanges(r.done!), 'files unchanged; started (it was not running)');
  });

  it('the certificate nears expiry: re-issued from a CSR made on the host, then the agent restarts', async () => {
    const s = session(installedAs(ARTIFACTS));
    const { r, uploaded, restarted } = await run(s, { now: () => Date.now() + 350 * DAY });
    assert.deepEqual(uploaded, ['agent.crt', 'ca.crt']);
    assert.equal(restarted, true);
    assert.ok(s.lines.indexOf('/usr/bin/node /usr/local/lib/qfleet/qfleetd.js tls-request --dir /etc/qfleet/tls --name web1 --ip 192.0.2.10') >= 0);
    assert.match(describeChanges(r.done!), /^files unchanged; certificate re-issued \(it expires in 1[45] days, within the 30-day renewal window\); restarted$/);
  });

  it("the host's name changed in the inventory: re-issued for the new name", async () => {
    const s = session(installedAs(ARTIFACTS));
    const [o] = await bootstrapHosts([{ ...web1, name: 'web1-new' }], {
      connect: async () => s, artifacts: ARTIFACTS, pkiDir, defaultUser: 'root', waitHealthy: async () => undefined,
    });
    assert.equal(o!.status, 'ok', o!.error);
    const r = o!.result;
    assert.match(r!.done!.certificateReissued!, /^its names changed \(DNS:web1, IP Address:192\.0\.2\.10; now DNS:web1-new, IP Address:192\.0\.2\.10\)$/);
    assert.equal(r!.done!.agent, 'restarted');
  });

  it('a first run (nothing installed): everything uploaded, certificate issued, started', async () => {
    const s = session('{"files":{},"cert":null,"ca":null,"keyMatches":false}\n');
    const { r, uploaded, restarted } = await run(s);
    assert.deepEqual(uploaded, ['qfleetd.js', 'qfleet.js', 'qfleetd.conf', 'qfleetd-supervise', 'qfleetd.start', 'agent.crt', 'ca.crt']);
    assert.equal(restarted, true);
    assert.equal(describeChanges(r.done!), 'updated qfleetd.js, qfleet.js, qfleetd.conf, qfleetd-supervise, qfleetd.start; certificate issued; restarted');
  });

  it('a socket host var the agent would refuse fails that host before anything is read or installed', async () => {
    const s = session('{}');
    const long = `/run/${'x'.repeat(120)}/qfleetd.sock`;
    const [o] = await bootstrapHosts([{ ...web1, vars: { ...web1.vars, qfleet_agent_socket_path: long } }], {
      connect: async () => s, artifacts: ARTIFACTS, pkiDir, defaultUser: 'root', waitHealthy: async () => undefined,
    });
    assert.equal(o!.status, 'failed');
    assert.equal(o!.error, `the agent's socket ${long} is too long for a unix socket on Linux: at most 107 bytes, in a directory of at most 81`);
    assert.deepEqual(s.lines, ['uname -s -r -m', 'id -u']);
    assert.deepEqual(s.uploads, []);
  });
});
