import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsFleet, type NetnsHost } from '../support/netns-fleet.js';

const CLI = fileURLToPath(new URL('../../controller/main.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../bundle/qfleetd.js', import.meta.url));
/** What "a small constant" past the deadline may be: process start-up and output on a busy 2-core machine. */
const SLACK_MS = 5000;

/**
 * --timeout bounds when qfleet exits, whatever the network does: host1 runs a
 * real agent (bootstrapped over SSH); host2 drops every packet (an nft DROP
 * policy in its namespace: TCP connects stay pending, as to a dead or
 * firewalled host); `dnshang` is a name whose DNS server (host2's address,
 * through a resolv.conf bind-mounted in the CLI's own mount namespace) never
 * answers. Each command must give up on those at the deadline and exit within
 * the deadline plus SLACK_MS, with the answering host's result printed before
 * that. No assertion is tighter than that bound.
 */
describe('qfleet deadlines: black-holed hosts and a DNS server that never answers @root', function () {
  this.timeout(300_000);
  let fleet: NetnsFleet;
  let work: string;
  let inventory: string;
  let resolvConf: string;
  let env: NodeJS.ProcessEnv;
  let h1: NetnsHost;
  let h2: NetnsHost;

  /** The CLI in a mount namespace of its own whose /etc/resolv.conf names the dropping DNS server; the wall time it took. */
  const qfleet = async (args: readonly string[], opts: { onStdout?: (chunk: string, running: boolean) => void } = {}) => {
    const t0 = Date.now();
    const child = execa('unshare', ['-m', '--', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, 'node', CLI, '--inventory', inventory, ...args], {
      env, reject: false, timeout: 120_000, stdin: 'ignore',
    });
    child.stdout!.on('data', (b: Buffer) => opts.onStdout?.(b.toString(), child.exitCode === null));
    const r = await child;
    return { ...r, elapsed: Date.now() - t0 };
  };
  const json = (stdout: string) => JSON.parse(stdout) as { host: string; status: string; error?: string }[];
  const within = (r: { elapsed: number }, timeoutS: number) =>
    assert.ok(r.elapsed < timeoutS * 1000 + SLACK_MS, `exited ${r.elapsed} ms after start: more than the ${timeoutS} s deadline + ${SLACK_MS} ms`);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'qf-deadlines-'));
    env = { ...process.env, QFLEET_HOME: join(work, 'home'), QFLEET_INVENTORY: '' };
    fleet = await NetnsFleet.create({ hosts: 2 });
    [h1, h2] = fleet.hosts as [NetnsHost, NetnsHost];
    const vars = (h: NetnsHost, address: string) =>
      [`        ansible_host: ${address}`, `        ansible_port: ${h.sshPort}`, ...Object.entries(h.vars).map(([k, v]) => `        ${k}: "${v}"`)].join('\n');
    inventory = join(work, 'inventory.yml');
    writeFileSync(inventory, [
      'all:', '  vars:', `    ansible_user: ${fleet.user}`, '  hosts:',
      '    host1:', vars(h1, h1.address),
      '    host2:', vars(h2, h2.address),
      // A name only DNS could answer: no search domain, nothing in /etc/hosts.
      '    dnshang:', vars(h2, 'agent.dnshang.example'), '',
    ].join('\n'));
    resolvConf = join(work, 'resolv.conf');
    writeFileSync(resolvConf, `nameserver ${h2.address}\noptions timeout:5 attempts:2\n`);

    let r = await execa('node', [CLI, 'pki', 'init'], { env, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    r = await execa('node', [CLI, '--inventory', inventory, '-H', 'host1', '--json', 'bootstrap', '--identity', fleet.identityFile, '--known-hosts', fleet.knownHostsFile, '--bundle', BUNDLE],
      { env, reject: false, timeout: 240_000 });
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    // host2 now drops everything that reaches it: SSH, the agent port, DNS.
    for (const argv of [['nft', 'add', 'table', 'inet', 'qfdrop'], ['nft', 'add chain inet qfdrop in { type filter hook input priority 0; policy drop; }']]) {
      const x = await fleet.exec(h2, argv);
      assert.equal(x.exitCode, 0, `${argv.join(' ')}: ${x.stderr}`);
    }
  });

  after(async () => {
    try {
      await fleet?.destroy();
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  it('list: the answering host is listed, the black-holed host and the name that never resolves are timed out; exit 1 within the deadline', async () => {
    const r = await qfleet(['--timeout', '4', '--json', 'list']);
    within(r, 4);
    assert.equal(r.exitCode, 1, r.stderr);
    const doc = json(r.stdout);
    assert.deepEqual(doc.map((x) => [x.host, x.status]), [['dnshang', 'timed out'], ['host1', 'ok'], ['host2', 'timed out']]);
    assert.equal(doc[0]!.error, 'agent.dnshang.example did not resolve within 4s');
    assert.equal(doc[2]!.error, 'no answer within 4s');
  });

  it('list against hosts of which none answers says so, with no word about containers', async () => {
    const r = await qfleet(['--timeout', '3', '-H', 'host2,dnshang', 'list']);
    within(r, 3);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stdout.trim(), 'No host answered (0 of 2); not answering: dnshang (timed out: agent.dnshang.example did not resolve within 3s), host2 (timed out: no answer within 3s).');
  });

  it('a changing command prints the answering host as it ends, while the others are still pending, then the summary', async () => {
    const seen: { text: string; running: boolean }[] = [];
    const r = await qfleet(['--timeout', '5', 'stop', '-A'], { onStdout: (text, running) => seen.push({ text, running }) });
    within(r, 5);
    assert.equal(r.exitCode, 1);
    const first = seen.find((s) => /^host1: No chroot containers\.$/m.test(s.text));
    assert.ok(first, r.stdout);
    assert.ok(first.running, 'host1\'s line came while qfleet was still waiting for the others');
    assert.doesNotMatch(seen.slice(0, seen.indexOf(first) + 1).map((s) => s.text).join(''), /answered/, 'before the summary');
    assert.match(r.stdout.trimEnd().split('\n').at(-1)!, /^1 of 3 hosts answered; not answering: dnshang \(timed out: .*\), host2 \(timed out: no answer within 5s\)\.$/);
    assert.match(r.stderr, /^host2: timed out: no answer within 5s$/m);
  });

  it('the deadline is the whole command\'s: with --forks 1 the hosts after a hanging one are not contacted, and qfleet still exits in time', async () => {
    const r = await qfleet(['--timeout', '3', '--forks', '1', '--json', 'delete', 'web1']);
    within(r, 3);
    assert.equal(r.exitCode, 1);
    const doc = json(r.stdout);
    assert.deepEqual(doc.map((x) => [x.host, x.status]), [['dnshang', 'timed out'], ['host1', 'timed out'], ['host2', 'timed out']]);
    assert.match(doc[1]!.error!, /^not contacted: the 3s deadline fell before its turn \(--forks 1\)$/);
  });

  it('exec and console to a black-holed host give up at the connect deadline, exit 1, saying why', async () => {
    for (const args of [['exec', 'host2/web1', '--', 'true'], ['console', 'host2/web1']]) {
      const r = await qfleet(['--timeout', '3', ...args]);
      within(r, 3);
      assert.equal(r.exitCode, 1, args.join(' '));
      assert.equal(r.stderr.trim(), `qfleet: host2: no connection to the agent at ${h2.address}:7443 within 3s.`);
    }
  });

  it('exec to a host whose name never resolves gives up at the connect deadline', async () => {
    const r = await qfleet(['--timeout', '3', 'exec', 'dnshang/web1', '--', 'true']);
    within(r, 3);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr.trim(), 'qfleet: dnshang: agent.dnshang.example did not resolve within 3s.');
  });

  it('exec to the answering host still works under the same deadline (the deadline is for connecting, not for the command)', async () => {
    const r = await qfleet(['--timeout', '3', 'exec', 'host1/web1', '--', 'true']);
    assert.equal(r.exitCode, 1, 'there is no web1: the agent says so, which proves the connection');
    assert.match(r.stderr, /web1/);
  });

  it('bootstrap gives up on a black-holed host and a name that never resolves at --timeout', async () => {
    const r = await qfleet(['--timeout', '4', '-H', 'host2,dnshang', '--json', 'bootstrap', '--identity', fleet.identityFile, '--known-hosts', fleet.knownHostsFile, '--bundle', BUNDLE]);
    within(r, 4);
    assert.equal(r.exitCode, 1);
    assert.deepEqual(json(r.stdout).map((x) => [x.host, x.status]), [['dnshang', 'timed out'], ['host2', 'timed out']]);
  });
});
