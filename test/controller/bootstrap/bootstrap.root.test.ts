import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, buildCliBundle } from '../../../deploy/bundle/build.js';
import { bootstrapHosts, loadArtifacts, type BootstrapOptions, type HostResult } from '../../../controller/bootstrap/bootstrap.js';
import { healthCheck, unixHealthClient } from '../../../controller/bootstrap/health.js';
import { connectSsh } from '../../../controller/bootstrap/ssh.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import { initPki } from '../../../controller/pki/index.js';
import { NetnsFleet } from '../../support/netns-fleet.js';

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
  function assertOk(results: HostResult[]): void {
    for (const r of results.slice(0, 3)) assert.equal(r.status, 'ok', `${r.host}: ${r.reason}\n${r.steps.join('\n')}`);
  }

  let first: HostResult[];
  const unreachable: HostTarget = {
    name: 'ghost', address: '127.0.0.1', sshPort: 1, sshUser: 'qfleet-test', agentPort: 7443, vars: {},
  };

  it('installs, configures TLS, starts and reaches health SERVING over mutual TLS on every host; a dead host fails alone', async () => {
    const t0 = Date.now();
    first = await bootstrapHosts([...fleet.hosts.map((h) => h.target), unreachable], opts);
    assertOk(first);
    assert.equal(first[3]!.status, 'failed');
    assert.match(first[3]!.reason!, /ECONNREFUSED|refused/);
    for (const r of first.slice(0, 3)) {
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

  it('re-running upgrades in place: same key, a new agent process, one supervisor per host, still SERVING', async () => {
    const before = fleet.hosts.map((h) => ({ agent: agentPid(h), key: readFileSync(join(h.vars.qfleet_tls_dir!, 'agent.key'), 'utf8') }));
    const again = await bootstrapHosts(fleet.hosts.map((h) => h.target), opts);
    assertOk(again);
    for (const [i, h] of fleet.hosts.entries()) {
      assert.notEqual(agentPid(h), before[i]!.agent, 'the agent was restarted on the new bundle');
      assert.equal(readFileSync(join(h.vars.qfleet_tls_dir!, 'agent.key'), 'utf8'), before[i]!.key, 'the key is kept');
      const sup = supervisorPid(h);
      const inNs = await fleet.pids(h);
      assert.ok(inNs.includes(sup), 'the supervisor runs in the host namespace');
      const supervisors = inNs.filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('qfleetd-supervise');
        } catch {
          return false;
        }
      });
      assert.deepEqual(supervisors, [sup], 'exactly one supervisor');
    }
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
    const out = JSON.parse(ok.stdout) as { host: string; status: string }[];
    assert.deepEqual(out.map((r) => [r.host, r.status]), [[h.name, 'ok']]);
    assert.match(readFileSync(kh, 'utf8'), new RegExp(`^\\[${h.address.replace(/\./g, '\\.')}\\]:2222 ssh-ed25519 ${h.hostKey.toString('base64').replace(/[+/]/g, '\\$&')}\n$`));
  });
});
