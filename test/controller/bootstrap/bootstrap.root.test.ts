import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, buildCliBundle } from '../../../deploy/bundle/build.js';
import { BootstrapFailure, bootstrapHosts, loadArtifacts, type BootstrapOptions, type HostResult } from '../../../controller/bootstrap/bootstrap.js';
import type { HostOutcome } from '../../../controller/fleet/fanout.js';
import { describeChanges } from '../../../controller/bootstrap/changes.js';
import { healthCheck, unixHealthClient } from '../../../controller/transport/health.js';
import { connectSsh } from '../../../controller/bootstrap/ssh.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import { initPki } from '../../../controller/pki/index.js';
import { NetnsFleet, type NetnsHost } from '../../support/netns-fleet.js';

describe('qfleet bootstrap of 3 network-namespace hosts over real SSH @root', function () {
  this.timeout(300_000);
  let fleet: NetnsFleet;
  let work: string;
  let opts: BootstrapOptions;
  const progress: string[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'qf-bootstrap-'));
    const bundle = await buildBundle({ outfile: join(work, 'bundle/qfleetd.js') });
    await buildCliBundle({ outfile: join(work, 'bundle/qfleet.js') });
    await initPki(join(work, 'pki'));
    fleet = await NetnsFleet.create({ hosts: 3 });
    opts = {
      connect: (t) => connectSsh(t, { identityFile: fleet.identityFile }, { knownHostsFiles: [fleet.knownHostsFile], acceptNew: false }),
      artifacts: loadArtifacts({ bundle: bundle.outfile }),
      pkiDir: join(work, 'pki'),
      defaultUser: 'nobody',
      healthTimeoutMs: 30_000,
      onProgress: (host, step) => progress.push(`${host}: ${step}`),
    };
  });
  after(async () => {
    await fleet?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  function agentPid(h: NetnsFleet['hosts'][number]): number {
    return Number(readFileSync(join(h.vars.qfleet_state_dir!, 'qfleetd.pid'), 'utf8').trim());
  }
  function supervisorPid(h: NetnsFleet['hosts'][number]): number {
    return Number(readFileSync(join(h.dir, 'run/qfleetd-supervise.pid'), 'utf8').trim());
  }
  /** The hosts' results, once each is asserted ok (with its steps when it is not). */
  function assertOk(outcomes: HostOutcome<HostResult>[]): HostResult[] {
    for (const o of outcomes.slice(0, 3)) {
      const steps = o.cause instanceof BootstrapFailure ? o.cause.partial.steps : [];
      assert.equal(o.status, 'ok', `${o.host.name}: ${o.error}\n${steps.join('\n')}`);
    }
    return outcomes.slice(0, 3).map((o) => o.result!);
  }

  let first: HostOutcome<HostResult>[];
  const unreachable: HostTarget = {
    name: 'ghost', address: '127.0.0.1', sshPort: 1, sshUser: 'qfleet-test', agentPort: 7443, vars: {},
  };

  it('installs, configures TLS, starts and reaches health SERVING over mutual TLS on every host; a dead host fails alone', async () => {
    const t0 = Date.now();
    first = await bootstrapHosts([...fleet.hosts.map((h) => h.target), unreachable], opts);
    const results = assertOk(first);
    // Nothing listens on its SSH port: unreachable, as a host whose agent refuses the connection is in every other command.
    assert.equal(first[3]!.status, 'unreachable');
    assert.match(first[3]!.error!, /ECONNREFUSED|refused/);
    for (const r of results) {
      assert.match(r.system!, /^Linux \S+ \S+$/);
      assert.equal(r.service, 'supervised');
      assert.match(r.steps.at(-1)!, /health SERVING over mutual TLS/);
    }
    for (const h of fleet.hosts) {
      // Its own paths, its own key (never left the host), config written as name="value" lines.
      assert.ok(existsSync(join(h.vars.qfleet_install_dir!, 'qfleetd.js')));
      assert.ok(existsSync(join(h.vars.qfleet_install_dir!, 'qfleet.js')));
      const conf = readFileSync(h.vars.qfleet_config!, 'utf8');
      assert.match(conf, new RegExp(`socket="${h.vars.qfleet_agent_socket_path}"`));
      assert.match(conf, /listen="0\.0\.0\.0:7443"/);
      assert.ok(existsSync(join(h.vars.qfleet_tls_dir!, 'agent.key')));
      // The local socket answers too (the agent runs in the host's namespace, as root).
      const c = unixHealthClient(h.vars.qfleet_agent_socket_path!);
      try {
        assert.equal(await healthCheck(c), 'SERVING');
      } finally {
        c.close();
      }
    }
    process.stdout.write(`      (bootstrap of 3 hosts: ${Date.now() - t0} ms)\n`);
  });

  const tls = (h: NetnsHost, f: 'agent.key' | 'agent.crt' | 'ca.crt') => readFileSync(join(h.vars.qfleet_tls_dir!, f), 'utf8');
  function supervisors(pids: number[]): number[] {
    return pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('qfleetd-supervise');
      } catch {
        return false;
      }
    });
  }

  it('re-running with nothing changed leaves every agent running as it is: same process, same certificate, nothing uploaded', async () => {
    const before = fleet.hosts.map((h) => ({ agent: agentPid(h), cert: tls(h, 'agent.crt'), bundle: statSync(join(h.vars.qfleet_install_dir!, 'qfleetd.js')).mtimeMs }));
    const again = assertOk(await bootstrapHosts(fleet.hosts.map((h) => h.target), opts));
    for (const [i, h] of fleet.hosts.entries()) {
      const r = again[i]!;
      assert.deepEqual(r.done, { updated: [], certificateReissued: undefined, agent: 'left running' }, r.steps.join('\n'));
      assert.equal(describeChanges(r.done!), 'unchanged');
      assert.equal(agentPid(h), before[i]!.agent, 'not restarted');
      assert.equal(tls(h, 'agent.crt'), before[i]!.cert, 'certificate kept');
      assert.equal(statSync(join(h.vars.qfleet_install_dir!, 'qfleetd.js')).mtimeMs, before[i]!.bundle, 'the bundle was not rewritten');
      assert.match(r.steps.at(-1)!, /health SERVING over mutual TLS/);
    }
  });

  it('a new agent bundle: uploaded and the agent restarted on it; same key, same certificate, one supervisor per host', async () => {
    const newer = { ...opts, artifacts: { ...opts.artifacts, bundle: Buffer.concat([opts.artifacts.bundle, Buffer.from('\n// a newer build\n')]) } };
    const before = fleet.hosts.map((h) => ({ agent: agentPid(h), key: tls(h, 'agent.key'), cert: tls(h, 'agent.crt') }));
    const again = assertOk(await bootstrapHosts(fleet.hosts.map((h) => h.target), newer));
    for (const [i, h] of fleet.hosts.entries()) {
      assert.equal(describeChanges(again[i]!.done!), 'updated qfleetd.js; restarted');
      assert.notEqual(agentPid(h), before[i]!.agent, 'the agent was restarted on the new bundle');
      assert.ok(readFileSync(join(h.vars.qfleet_install_dir!, 'qfleetd.js'), 'utf8').endsWith('// a newer build\n'));
      assert.equal(tls(h, 'agent.key'), before[i]!.key, 'the key is kept');
      assert.equal(tls(h, 'agent.crt'), before[i]!.cert, 'the certificate is kept');
      const sup = supervisorPid(h);
      const inNs = await fleet.pids(h);
      assert.ok(inNs.includes(sup), 'the supervisor runs in the host namespace');
      assert.deepEqual(supervisors(inNs), [sup], 'exactly one supervisor');
    }
    opts = newer;
  });

  it('a certificate within 30 days of expiry is re-issued on the same key, and the agent restarted to serve it', async () => {
    const h = fleet.hosts[0]!;
    const before = { agent: agentPid(h), key: tls(h, 'agent.key'), cert: tls(h, 'agent.crt') };
    const [r] = assertOk(await bootstrapHosts([h.target], { ...opts, now: () => Date.now() + 340 * 86_400_000 }));
    assert.match(describeChanges(r!.done!), /^files unchanged; certificate re-issued \(it expires in 2\d days, within the 30-day renewal window\); restarted$/);
    assert.notEqual(tls(h, 'agent.crt'), before.cert);
    assert.equal(tls(h, 'agent.key'), before.key, 'the key stays on the host, unchanged');
    assert.notEqual(agentPid(h), before.agent);
  });

  it('a new fleet CA: the certificate is re-issued from it and the agent answers mutual TLS with the new CA', async () => {
    const h = fleet.hosts[2]!;
    await initPki(join(work, 'pki2'));
    const [r] = assertOk(await bootstrapHosts([h.target], { ...opts, pkiDir: join(work, 'pki2') }));
    assert.equal(describeChanges(r!.done!), 'files unchanged; certificate re-issued (the fleet CA changed); restarted');
    assert.equal(tls(h, 'ca.crt').trim(), readFileSync(join(work, 'pki2/ca.crt'), 'utf8').trim());
    assert.match(r!.steps.at(-1)!, /health SERVING over mutual TLS/);
    // Back to the first CA, for the tests after this one.
    const [back] = assertOk(await bootstrapHosts([h.target], opts));
    assert.equal(back!.done!.certificateReissued, 'the fleet CA changed');
  });

  it('the supervisor restarts a crashed agent', async () => {
    const h = fleet.hosts[0]!;
    const old = agentPid(h);
    process.kill(old, 'SIGKILL');
    const c = unixHealthClient(h.vars.qfleet_agent_socket_path!);
    try {
      let ok = false;
      for (let i = 0; i < 60 && !ok; i++) {
        await new Promise((r) => setTimeout(r, 250));
        try {
          ok = existsSync(join(h.vars.qfleet_state_dir!, 'qfleetd.pid')) && agentPid(h) !== old && (await healthCheck(c, '', 1000)) === 'SERVING';
        } catch { /* not yet */ }
      }
      assert.ok(ok, 'a new agent answers within 15 s');
    } finally {
      c.close();
    }
  });

  it('the CLI: refuses an unknown key (exit 1), then --accept-new records it and bootstraps through an inventory', async () => {
    const cli = fileURLToPath(new URL('../../../controller/main.js', import.meta.url));
    const h = fleet.hosts[1]!;
    const kh = join(work, 'cli_known_hosts');
    writeFileSync(kh, '');
    const inv = join(work, 'inventory.yml');
    const vars = Object.entries({ ansible_host: h.address, ansible_port: h.sshPort, ansible_user: fleet.user, ...h.vars })
      .map(([k, v]) => `      ${k}: "${String(v)}"`).join('\n');
    writeFileSync(inv, `all:\n  hosts:\n    ${h.name}:\n${vars}\n`);
    const common = ['--identity', fleet.identityFile, '--known-hosts', kh, '--pki-dir', join(work, 'pki'), '--bundle', join(work, 'bundle/qfleetd.js')];
    const refused = await execa('node', [cli, '--inventory', inv, 'bootstrap', ...common, h.name], { reject: false });
    assert.equal(refused.exitCode, 1, refused.stderr);
    assert.match(refused.stdout, new RegExp(`${h.name}: FAILED: host key of \\[${h.address.replace(/\./g, '\\.')}\\]:2222 is not known`));
    assert.equal(readFileSync(kh, 'utf8'), '');
    const ok = await execa('node', [cli, '--inventory', inv, '--json', 'bootstrap', ...common, '--accept-new', h.name], { reject: false });
    assert.equal(ok.exitCode, 0, `${ok.stdout}\n${ok.stderr}`);
    const out = JSON.parse(ok.stdout) as { host: string; status: string; result: { done: { updated: string[]; agent: string } } }[];
    assert.deepEqual(out.map((r) => [r.host, r.status]), [[h.name, 'ok']]);
    // The CLI's bundle is the build from before the "newer" one: it goes back, and the agent restarts on it.
    assert.deepEqual(out[0]!.result.done, { updated: [join(h.vars.qfleet_install_dir!, 'qfleetd.js')], agent: 'restarted' });
    const text = await execa('node', [cli, '--inventory', inv, 'bootstrap', ...common, h.name], { reject: false });
    assert.equal(text.exitCode, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^${h.name}: ok \\(Linux \\S+ \\S+; node v\\S+ at \\S+; supervised\\): unchanged$`, 'm'));
    assert.match(readFileSync(kh, 'utf8'), new RegExp(`^\\[${h.address.replace(/\./g, '\\.')}\\]:2222 ssh-ed25519 ${h.hostKey.toString('base64').replace(/[+/]/g, '\\$&')}\n$`));
  });
});
