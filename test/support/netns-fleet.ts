/**
 * A test fleet on this machine: N hosts, each a network namespace the test
 * makes itself (`ip netns add qf-…`), joined by veth pairs to one bridge on a
 * private /24 (10.231.X.0/24, X picked free), each running its own sshd (own
 * host key, config, port and pidfile) as a child of the test. A test login user
 * of its own (qft-<tag>, so fleets made at once never share one)
 * with a clean /bin/sh and passwordless sudo (a sudoers.d file the fixture
 * writes and removes), an ed25519 key for the controller and a known_hosts file.
 *
 * The filesystem is shared, so each host's agent gets its own paths through
 * host vars (qfleet_*), all under the fixture's directory.
 *
 * Network rule: traffic only to loopback and to these namespaces' addresses.
 * Every wait is bounded; destroy() ends every process in the namespaces by PID,
 * deletes the namespaces, the bridge, the user, the sudoers file and the files.
 */
import { execa, type ResultPromise } from 'execa';
import { createConnection } from 'node:net';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { HostTarget } from '../../controller/fleet/host-target.js';
import { DEFAULT_AGENT_PORT } from '../../controller/fleet/host-target.js';
import { hostLookupName, knownHostsLine } from '../../controller/bootstrap/known-hosts.js';

export interface NetnsFleetOptions {
  /** Number of hosts (1..200). */
  readonly hosts?: number;
  /** sshd's port in every namespace (not 22, to exercise `[host]:port`). */
  readonly sshPort?: number;
  readonly agentPort?: number;
  /** Where the fixture's files go (default: a new directory under /var/tmp). */
  readonly baseDir?: string;
}

export interface NetnsHost {
  /** Inventory name (host1, host2, …). */
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  readonly sshPort: number;
  /** This host's own directory: sshd files and the agent's paths. */
  readonly dir: string;
  /** sshd's host public key blob. */
  readonly hostKey: Buffer;
  /** qfleet_* host vars: every agent path under `dir`. */
  readonly vars: Readonly<Record<string, string>>;
  /** As inventory and targeting would resolve it. */
  readonly target: HostTarget;
  sshdPid: number | undefined;
}

const USER_COMMENT = 'qfleet netns test fixture';

async function run(argv: string[], opts: { timeout?: number; reject?: boolean } = {}) {
  const [cmd, ...args] = argv;
  return execa(cmd!, args, { timeout: opts.timeout ?? 20_000, reject: opts.reject ?? true, stdin: 'ignore' });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tcpAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(false), 1000).unref();
  });
}

/** Picks X so that 10.231.X.0/24 is on no interface of this machine. */
async function freeSubnet(): Promise<number> {
  const { stdout } = await run(['ip', '-4', '-o', 'addr', 'show']);
  const used = new Set([...stdout.matchAll(/inet 10\.231\.(\d+)\./g)].map((m) => Number(m[1])));
  const start = 1 + (process.pid % 200);
  for (let i = 0; i < 250; i++) {
    const x = 1 + ((start + i) % 250);
    if (!used.has(x)) return x;
  }
  throw new Error('no free 10.231.X.0/24 subnet');
}

export class NetnsFleet {
  readonly hosts: NetnsHost[] = [];
  /** The login user, one per fixture (qft-<tag>), so fleets made at once never share or remove each other's. */
  readonly user: string;
  /** The controller's private key (ed25519, no passphrase). */
  readonly identityFile: string;
  /** A known_hosts file with every host's key (plain `[addr]:port` entries). */
  readonly knownHostsFile: string;
  readonly bridge: string;
  bridgeAddress = '';
  private readonly tag: string;
  private readonly sshds = new Map<string, ResultPromise>();
  private createdUser = false;
  private readonly sudoersFile: string;
  private destroyed = false;

  private constructor(readonly dir: string, private readonly opts: Required<Omit<NetnsFleetOptions, 'baseDir'>>) {
    this.tag = randomBytes(2).toString('hex');
    this.user = `qft-${this.tag}`;
    this.bridge = `qf${this.tag}br`;
    this.identityFile = join(dir, 'id_ed25519');
    this.knownHostsFile = join(dir, 'known_hosts');
    this.sudoersFile = `/etc/sudoers.d/qfleet-test-${this.tag}`;
  }

  /** Makes the fleet; on any failure it cleans up what it made and rethrows. */
  static async create(opts: NetnsFleetOptions = {}): Promise<NetnsFleet> {
    if (process.getuid?.() !== 0) throw new Error('NetnsFleet needs root');
    for (const bin of ['/usr/sbin/sshd', '/usr/bin/sudo', '/usr/bin/ssh-keygen']) {
      if (!existsSync(bin)) throw new Error(`${bin} is missing: apt-get install -y openssh-server sudo`);
    }
    const n = opts.hosts ?? 3;
    if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error('hosts must be 1..200');
    const base = opts.baseDir ?? '/var/tmp';
    mkdirSync(base, { recursive: true });
    const dir = mkdtempSync(join(base, 'qfleet-netns-'));
    chmodSync(dir, 0o755);
    const fleet = new NetnsFleet(dir, { hosts: n, sshPort: opts.sshPort ?? 2222, agentPort: opts.agentPort ?? DEFAULT_AGENT_PORT });
    try {
      await fleet.setUp();
      return fleet;
    } catch (e) {
      await fleet.destroy().catch(() => undefined);
      throw e;
    }
  }

  private async setUp(): Promise<void> {
    await this.makeUser();
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'qfleet-controller', '-f', this.identityFile]);
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${this.identityFile}.pub`));
    chmodSync(join(this.dir, 'authorized_keys'), 0o644); // explicit: writeFileSync's mode is cut by the umask
    // sshd's privilege-separation directory (Debian's init script makes it); shared with any other sshd here, so left in place.
    if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

    const x = await freeSubnet();
    this.bridgeAddress = `10.231.${x}.1`;
    await run(['ip', 'link', 'add', this.bridge, 'type', 'bridge']);
    await run(['ip', 'addr', 'add', `${this.bridgeAddress}/24`, 'dev', this.bridge]);
    await run(['ip', 'link', 'set', this.bridge, 'up']);

    for (let i = 1; i <= this.opts.hosts; i++) {
      const name = `host${i}`;
      const ns = `qf-${this.tag}-${name}`;
      const address = `10.231.${x}.${10 + i}`;
      const veth = `qf${this.tag}v${i}`;
      const hdir = join(this.dir, name);
      mkdirSync(hdir, { mode: 0o755 });
      await run(['ip', 'netns', 'add', ns]);
      await run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await run(['ip', 'link', 'set', veth, 'master', this.bridge, 'up']);
      await run(['ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
      await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${name}-host-key`, '-f', join(hdir, 'ssh_host_ed25519_key')]);
      const pub = readFileSync(join(hdir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/);
      const vars = {
        qfleet_install_dir: join(hdir, 'lib'),
        qfleet_config: join(hdir, 'etc/qfleetd.conf'),
        qfleet_tls_dir: join(hdir, 'etc/tls'),
        qfleet_root_dir: join(hdir, 'root'),
        qfleet_state_dir: join(hdir, 'state'),
        qfleet_log_dir: join(hdir, 'log'),
        qfleet_agent_socket_path: join(hdir, 'run/qfleetd.sock'),
        qfleet_agent_log: join(hdir, 'log/qfleetd.log'),
        // Never this machine's own systemd: the namespaces share its filesystem.
        qfleet_service: 'supervised',
      };
      const target: HostTarget = {
        name, address, sshPort: this.opts.sshPort, sshUser: this.user, agentPort: this.opts.agentPort,
        vars: { ansible_host: address, ansible_port: this.opts.sshPort, ansible_user: this.user, ...vars },
      };
      this.hosts.push({ name, ns, address, sshPort: this.opts.sshPort, dir: hdir, hostKey: Buffer.from(pub[1]!, 'base64'), vars, target, sshdPid: undefined });
    }
    this.writeKnownHosts(this.knownHostsFile);
    await Promise.all(this.hosts.map((h) => this.startSshd(h)));
  }

  private async makeUser(): Promise<void> {
    const existing = await run(['getent', 'passwd', this.user], { reject: false });
    if (existing.exitCode === 0) {
      // A leftover of an interrupted run is ours to reuse; anyone else's user is not.
      if (!existing.stdout.split(':')[4]?.startsWith(USER_COMMENT)) throw new Error(`user ${this.user} exists and is not the fixture's`);
    } else {
      await run(['useradd', '-M', '-c', USER_COMMENT, '-d', join(this.dir, 'home'), '-s', '/bin/sh', this.user]);
    }
    this.createdUser = true;
    // '*' (not '!'): an account sshd considers unlocked, with no password anyone can use.
    await run(['usermod', '-p', '*', '-d', join(this.dir, 'home'), this.user]);
    const home = join(this.dir, 'home');
    mkdirSync(home, { mode: 0o755 });
    const { stdout } = await run(['id', '-u', this.user]);
    const { stdout: gid } = await run(['id', '-g', this.user]);
    chownSync(home, Number(stdout), Number(gid));
    writeFileSync(this.sudoersFile, `${this.user} ALL=(ALL) NOPASSWD: ALL\nDefaults:${this.user} !requiretty\n`, { mode: 0o440 });
    const check = await run(['visudo', '-c', '-f', this.sudoersFile], { reject: false });
    if (check.exitCode !== 0) throw new Error(`sudoers file rejected: ${check.stderr}${check.stdout}`);
  }

  private sshdConfig(h: NetnsHost): string {
    return [
      `Port ${h.sshPort}`,
      `ListenAddress ${h.address}`,
      `HostKey ${join(h.dir, 'ssh_host_ed25519_key')}`,
      `PidFile ${join(h.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
      'StrictModes no', // the fixture's files live under a world-writable /var/tmp
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin no',
      `AllowUsers ${this.user}`,
      'Subsystem sftp internal-sftp',
      'PrintMotd no',
      'X11Forwarding no',
      'MaxStartups 200:30:400',
      'MaxSessions 50',
      'LogLevel ERROR',
      '',
    ].join('\n');
  }

  /** Starts (or restarts) one host's sshd and waits (bounded) until it accepts TCP. */
  async startSshd(h: NetnsHost): Promise<void> {
    const conf = join(h.dir, 'sshd_config');
    writeFileSync(conf, this.sshdConfig(h), { mode: 0o644 });
    const child = execa('ip', ['netns', 'exec', h.ns, '/usr/sbin/sshd', '-D', '-e', '-f', conf], {
      reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: { stderr: true },
    });
    this.sshds.set(h.name, child);
    h.sshdPid = child.pid; // `ip netns exec` execs sshd: same PID
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      if (await tcpAnswers(h.address, h.sshPort)) return;
      await sleep(50);
    }
    const r = await Promise.race([child, sleep(500)]);
    throw new Error(`sshd in ${h.ns} did not come up: ${(r as { stderr?: string } | undefined)?.stderr ?? 'no answer in 10 s'}`);
  }

  /** Writes a known_hosts with the given hosts' keys (all by default). */
  writeKnownHosts(file: string, opts: { hashed?: boolean; hosts?: readonly NetnsHost[] } = {}): void {
    const lines = (opts.hosts ?? this.hosts).map((h) => knownHostsLine(hostLookupName(h.address, h.sshPort), h.hostKey, { hashed: opts.hashed ?? false }));
    writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '', { mode: 0o600 });
  }

  host(name: string): NetnsHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Runs argv inside a host's namespace (as root, on the shared filesystem). */
  async exec(h: NetnsHost, argv: string[], timeout = 20_000) {
    return run(['ip', 'netns', 'exec', h.ns, ...argv], { timeout, reject: false });
  }

  /** PIDs of every process in a host's namespace. */
  async pids(h: NetnsHost): Promise<number[]> {
    const r = await run(['ip', 'netns', 'pids', h.ns], { reject: false });
    return r.stdout.split('\n').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 1);
  }

  /** Ends every process in a host's namespace by PID: SIGTERM, then SIGKILL after a bounded wait. */
  async killAll(h: NetnsHost, graceMs = 5000): Promise<void> {
    let pids = await this.pids(h);
    for (const p of pids) signal(p, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (pids.length && Date.now() < deadline) {
      await sleep(100);
      pids = pids.filter(alive);
    }
    for (const p of await this.pids(h)) signal(p, 'SIGKILL');
    const kdeadline = Date.now() + 3000;
    while ((await this.pids(h)).length && Date.now() < kdeadline) await sleep(100);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const errors: string[] = [];
    const step = async (what: string, f: () => Promise<unknown> | unknown) => {
      try {
        await f();
      } catch (e) {
        errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    for (const h of this.hosts) await step(`end processes in ${h.ns}`, () => this.killAll(h));
    for (const c of this.sshds.values()) await step('reap sshd', () => Promise.race([c, sleep(2000)]));
    for (const h of this.hosts) await step(`delete ${h.ns}`, () => run(['ip', 'netns', 'delete', h.ns], { reject: false }));
    await step('delete bridge', () => run(['ip', 'link', 'delete', this.bridge], { reject: false }));
    await step('remove sudoers file', () => rmSync(this.sudoersFile, { force: true }));
    if (this.createdUser) await step('remove test user', () => run(['userdel', this.user], { reject: false }));
    await step('remove files', () => removeTree(this.dir));
    if (errors.length) throw new Error(`netns fleet clean-up: ${errors.join('; ')}`);
  }
}

/** Removes the fixture's tree, refusing while anything is mounted under it (an agent's container). */
async function removeTree(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (mounts.length) throw new Error(`not removing ${dir}: still mounted: ${mounts.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch { /* gone already */ }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
