import { execa, type ResultPromise } from 'execa';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The peers' side of the fleet benchmark: N sshd "hosts" on loopback addresses
 * 127.0.1.1…, one sshd process each, a bench user with a clean /bin/sh login
 * (root's start-up files are slow here), a key and a known_hosts file, so pdsh
 * and ansible run `ls` on them exactly as an administrator would.
 */
export const SSH_PORT = 2222;
export const BENCH_USER = 'qfbench';

export interface SshFarm {
  readonly hosts: readonly string[];
  readonly key: string;
  readonly knownHosts: string;
  stop(): Promise<void>;
}

export function loopbackAddress(block: number, i: number): string {
  // i from 0: 127.<block>.<hi>.<lo>, skipping .0 and .255
  const n = i + 1;
  return `127.${block}.${Math.floor(n / 254)}.${(n % 254) + 1}`;
}

export async function startSshFarm(dir: string, count: number): Promise<SshFarm> {
  mkdirSync(dir, { recursive: true });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  await ensureUser(dir);
  const key = join(dir, 'id_ed25519');
  const hostKey = join(dir, 'host_ed25519');
  if (!existsSync(key)) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  if (!existsSync(hostKey)) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${key}.pub`));
  chmodSync(authorized, 0o644);
  const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const hosts = Array.from({ length: count }, (_, i) => loopbackAddress(1, i));
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, hosts.map((h) => `[${h}]:${SSH_PORT} ${hostPub}\n`).join(''));

  const children: ResultPromise[] = [];
  for (const [i, h] of hosts.entries()) {
    const cfg = join(dir, `sshd-${i}.conf`);
    writeFileSync(cfg, [
      `ListenAddress ${h}:${SSH_PORT}`, `HostKey ${hostKey}`, `PidFile ${join(dir, `sshd-${i}.pid`)}`,
      `AuthorizedKeysFile ${authorized}`, 'StrictModes no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
      'UsePAM no', 'PrintMotd no', 'PrintLastLog no', 'UseDNS no', 'MaxStartups 1000:30:2000', `AllowUsers ${BENCH_USER}`, '',
    ].join('\n'));
    // stderr stays a (buffered) pipe: with it on /dev/null these sshd processes never listened.
    children.push(execa('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { reject: false, stdin: 'ignore' }));
  }
  // Ready when every address accepts a login (bounded).
  for (const h of hosts) await waitForLogin(h, key, knownHosts);
  return {
    hosts,
    key,
    knownHosts,
    stop: async () => {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(children.map((c) => Promise.race([c, new Promise((r) => setTimeout(r, 3000))])));
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    },
  };
}

async function ensureUser(dir: string): Promise<void> {
  const r = await execa('id', ['-u', BENCH_USER], { reject: false });
  if (r.exitCode !== 0) await execa('useradd', ['--system', '--no-create-home', '--home-dir', dir, '--shell', '/bin/sh', BENCH_USER]);
  // '*': no password can log in, but the account is not "locked" ('!'), which sshd without PAM refuses.
  await execa('usermod', ['-p', '*', '--home', dir, BENCH_USER]);
}

export function sshArgs(key: string, knownHosts: string): string[] {
  return ['-p', String(SSH_PORT), '-i', key, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];
}

async function waitForLogin(host: string, key: string, knownHosts: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await execa('ssh', [...sshArgs(key, knownHosts), `${BENCH_USER}@${host}`, 'true'], { reject: false, timeout: 10_000 });
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`sshd on ${host}:${SSH_PORT} never accepted the bench login`);
}

/** One cold `pdsh -R ssh ... ls` over every host; resolves with seconds, rejects if any host failed. */
export async function timePdsh(farm: SshFarm): Promise<number> {
  const env = {
    ...process.env,
    PDSH_SSH_ARGS: `${sshArgs(farm.key, farm.knownHosts).join(' ')} -a -x -l%u %h`,
  };
  const t0 = process.hrtime.bigint();
  const r = await execa('pdsh', ['-R', 'ssh', '-f', String(farm.hosts.length), '-l', BENCH_USER, '-w', farm.hosts.join(','), 'ls', '/'], {
    env, reject: false, timeout: 600_000,
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const answered = new Set(r.stdout.split('\n').map((l) => l.split(':')[0]).filter(Boolean));
  if (r.exitCode !== 0 || answered.size !== farm.hosts.length) {
    throw new Error(`pdsh: exit ${r.exitCode}, ${answered.size}/${farm.hosts.length} hosts answered: ${r.stderr.slice(0, 400)}`);
  }
  return secs;
}

/** One cold `ansible all -m command -a ls` (fresh control-path dir: no persisted connections). */
export async function timeAnsible(farm: SshFarm, workDir: string): Promise<number> {
  const inv = join(workDir, 'ansible-hosts.ini');
  writeFileSync(inv, `[bench]\n${farm.hosts.map((h) => `${h} ansible_port=${SSH_PORT}`).join('\n')}\n`);
  const cp = join(workDir, `cp-${Date.now()}`);
  mkdirSync(cp, { recursive: true });
  const env = {
    ...process.env,
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
    ANSIBLE_REMOTE_USER: BENCH_USER,
    ANSIBLE_PRIVATE_KEY_FILE: farm.key,
    ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${farm.knownHosts} -o ControlMaster=auto -o ControlPersist=60s`,
    ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
    ANSIBLE_LOCAL_TEMP: join(workDir, 'ansible-tmp'),
    ANSIBLE_NOCOLOR: '1',
    // Every "host" shares this filesystem and the bench user's home is root's: give ansible a tmp it can write.
    ANSIBLE_REMOTE_TMP: '/tmp/.qfbench-ansible',
  };
  const t0 = process.hrtime.bigint();
  const r = await execa('ansible', ['all', '-i', inv, '-f', String(farm.hosts.length), '-m', 'command', '-a', 'ls /', '-o'], {
    env, reject: false, timeout: 900_000,
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await endPersistedConnections(cp);
  const ok = r.stdout.split('\n').filter((l) => / \| CHANGED \| rc=0 /.test(l)).length;
  if (r.exitCode !== 0 || ok !== farm.hosts.length) {
    throw new Error(`ansible: exit ${r.exitCode}, ${ok}/${farm.hosts.length} hosts ok: ${(r.stdout + r.stderr).slice(0, 600)}`);
  }
  return secs;
}

/**
 * Ends what an Ansible run leaves behind once it is timed: its ControlPersist
 * ssh masters (60 s) and their sshd sessions, a few hundred processes. Left
 * alive, they shared the machine with the next tools timed (qfleet and the
 * TLS floor ran up to twice as slow in the iterations after Ansible's): each
 * run is meant to start cold, Ansible's own included (a fresh control path
 * directory). Bounded: 5 s for each wait, then SIGKILL.
 */
async function endPersistedConnections(controlDir: string): Promise<void> {
  const gone = async (args: string[]) => {
    for (let i = 0; i < 50; i++) {
      if ((await execa('pgrep', args, { reject: false })).exitCode !== 0) return true;
      await new Promise((res) => setTimeout(res, 100));
    }
    return false;
  };
  await execa('pkill', ['-f', controlDir], { reject: false });
  if (!(await gone(['-f', controlDir]))) await execa('pkill', ['-KILL', '-f', controlDir], { reject: false });
  // The sshd sessions run as the bench user; the listeners run as root and stay.
  if (!(await gone(['-u', BENCH_USER]))) await execa('pkill', ['-KILL', '-u', BENCH_USER], { reject: false });
}
