import type { Command } from 'commander';
import { userInfo } from 'node:os';
import type { HostResult } from '../bootstrap/bootstrap.js';
import { describeChanges } from '../bootstrap/changes.js';
import { parseHostSpec } from '../bootstrap/targets.js';
import { EXIT } from '../context.js';
import { resolveTargets } from '../fleet/targets.js';
import type { HostTarget } from '../fleet/host-target.js';
import { defaultPkiDir } from '../pki/paths.js';

interface BootstrapFlags {
  acceptNew?: boolean;
  identity?: string;
  knownHosts?: string;
  user?: string;
  pkiDir?: string;
  bundle?: string;
  healthTimeout?: string;
}

export function register(program: Command): void {
  program
    .command('bootstrap')
    .argument('[targets...]', 'hosts: [user@]address[:port], or with an inventory a host pattern (default: -H, else all)')
    .description('install, configure (mutual TLS) and start the agent on hosts over SSH; re-run to upgrade')
    .option('--accept-new', "trust an unknown host key on first use and record it (a changed key is always refused)")
    .option('--identity <file>', 'SSH private key (default: the ssh-agent at $SSH_AUTH_SOCK)')
    .option('--known-hosts <file>', 'known_hosts file (default ~/.ssh/known_hosts, and /etc/ssh/ssh_known_hosts read too)')
    .option('--user <name>', 'SSH login when the inventory gives no ansible_user (default: yours)')
    .option('--pki-dir <dir>', 'the controller PKI from `qfleet pki init` (default $QFLEET_HOME/pki or ~/.config/qfleet/pki)')
    .option('--bundle <file>', 'the agent bundle to upload (default dist/bundle/qfleetd.js; qfleet.js beside it)')
    .option('--health-timeout <seconds>', 'how long to wait for health SERVING over mutual TLS', '60')
    .action(async (args: string[], flags: BootstrapFlags) => {
      const g = program.opts<{ inventory?: string; hosts?: string; json?: boolean; forks?: string; socket?: string }>();
      const err = (t: string) => process.stderr.write(`${t}\n`);
      let hosts: HostTarget[];
      try {
        hosts = resolveBootstrapTargets(args, g);
      } catch (e) {
        err(`qfleet bootstrap: ${(e as Error).message}`);
        process.exitCode = EXIT.usage;
        return;
      }
      const results = await runBootstrap(hosts, flags, g, err);
      if (!results) return;
      if (g.json) {
        process.stdout.write(`${JSON.stringify(results.map((r) => (r.status === 'ok'
          ? { host: r.host, status: r.status, result: { system: r.system, node: r.node, service: r.service, done: r.done, steps: r.steps } }
          : { host: r.host, status: r.status, error: r.reason, steps: r.steps })))}\n`);
      } else {
        for (const r of results) {
          process.stdout.write(r.status === 'ok'
            ? `${r.host}: ok (${r.system}; node ${r.node}; ${r.service}): ${r.done ? describeChanges(r.done) : 'done'}\n`
            : `${r.host}: FAILED: ${r.reason}\n`);
        }
        const bad = results.filter((r) => r.status !== 'ok').length;
        process.stdout.write(`${results.length - bad} of ${results.length} hosts bootstrapped${bad ? `; ${bad} failed` : ''}\n`);
      }
      process.exitCode = results.every((r) => r.status === 'ok') ? EXIT.ok : EXIT.failed;
    });
}

/**
 * Positional targets: `[user@]address[:port]` when there is no inventory (or
 * when written with @ or :port); with an inventory, a host pattern resolved
 * through it (joined with ':' as Ansible's union), else -H, else all.
 */
export function resolveBootstrapTargets(args: readonly string[], g: { inventory?: string; hosts?: string; socket?: string }): HostTarget[] {
  const inventory = g.inventory ?? (process.env.QFLEET_INVENTORY || undefined);
  if (!inventory) {
    if (!args.length) throw new Error('no hosts: give [user@]address[:port] arguments, or --inventory FILE');
    return args.map((a) => parseHostSpec(a));
  }
  const direct = args.filter((a) => a.includes('@'));
  const patterns = args.filter((a) => !a.includes('@'));
  const fromInv = patterns.length || !direct.length
    ? resolveTargets({ inventory, hosts: patterns.length ? patterns.join(':') : g.hosts, socket: g.socket ?? '/run/qfleetd.sock' }).hosts
    : [];
  return [...fromInv, ...direct.map((a) => parseHostSpec(a))];
}

async function runBootstrap(
  hosts: readonly HostTarget[],
  flags: BootstrapFlags,
  g: { json?: boolean; forks?: string },
  err: (t: string) => void,
): Promise<HostResult[] | undefined> {
  // ssh2 and the X.509 code load only when bootstrap runs, not at every qfleet start.
  const [{ bootstrapHosts, loadArtifacts }, { connectSsh, defaultKnownHostsFiles }] = await Promise.all([
    import('../bootstrap/bootstrap.js'),
    import('../bootstrap/ssh.js'),
  ]);
  const knownHostsFiles = flags.knownHosts ? [flags.knownHosts] : defaultKnownHostsFiles();
  const auth = flags.identity ? { identityFile: flags.identity } : { agentSocket: process.env.SSH_AUTH_SOCK };
  if (!auth.identityFile && !auth.agentSocket) {
    err('qfleet bootstrap: no SSH credentials: give --identity FILE or start an ssh-agent (SSH_AUTH_SOCK)');
    process.exitCode = EXIT.usage;
    return undefined;
  }
  let artifacts;
  try {
    artifacts = loadArtifacts(flags.bundle ? { bundle: flags.bundle } : {});
  } catch (e) {
    err(`qfleet bootstrap: ${(e as Error).message}`);
    process.exitCode = EXIT.failed;
    return undefined;
  }
  const tty = process.stderr.isTTY && !g.json;
  try {
    return await bootstrapHosts(hosts, {
      connect: (t) => connectSsh(t, auth, { knownHostsFiles, acceptNew: Boolean(flags.acceptNew) }),
      artifacts,
      pkiDir: flags.pkiDir ?? defaultPkiDir(),
      defaultUser: flags.user ?? userInfo().username,
      forks: g.forks ? Math.max(1, Number(g.forks)) : 20,
      healthTimeoutMs: Math.max(1, Number(flags.healthTimeout ?? 60)) * 1000,
      onProgress: tty ? (host, step) => err(`${host}: ${step}`) : undefined,
    });
  } catch (e) {
    err(`qfleet bootstrap: ${(e as Error).message}`);
    process.exitCode = EXIT.failed;
    return undefined;
  }
}
