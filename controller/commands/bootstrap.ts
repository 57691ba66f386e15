import type { Command } from 'commander';
import { userInfo } from 'node:os';
import type { HostResult } from '../bootstrap/bootstrap.js';
import { describeChanges } from '../bootstrap/changes.js';
import type { SshTarget } from '../bootstrap/ssh.js';
import { resolveBootstrapTargets } from '../bootstrap/targets.js';
import { action, exitCodeOf, UsageError, type CliContext } from '../context.js';
import { boundedSeconds, LIMITS } from '../durations.js';
import type { HostOutcome } from '../fleet/fanout.js';
import type { HostTarget } from '../fleet/host-target.js';
import { problem, progressLine } from '../fleet/report.js';
import { byCodePoint } from '../fleet/selection.js';
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
    .option('--health-timeout <seconds>', 'how long to wait for health SERVING over mutual TLS (1 to 600)', '60')
    .action(
      action(program, async (ctx, args: string[], flags: BootstrapFlags) => {
        const g = program.opts<{ inventory?: string; hosts?: string }>();
        let hosts: HostTarget[];
        try {
          hosts = resolveBootstrapTargets(args, { ...g, socket: ctx.socket }, ctx.env);
        } catch (e) {
          throw new UsageError(`bootstrap: ${(e as Error).message}`);
        }
        return runBootstrap(ctx, hosts, flags);
      }),
    );
}

/**
 * Every host through the common fan-out (bootstrapHosts): its --forks
 * (default 20 here: each host is an SSH session and an upload), its one
 * deadline (--timeout, which then bounds the command), its names resolved in
 * the killable child (a name whose DNS never answers fails there, before SSH
 * is tried) and dialled at the address found. Each host ends ok, failed,
 * unreachable or timed out; its line is printed as it ends, a progress line
 * and the steps on a terminal; then `N of M hosts bootstrapped`.
 */
async function runBootstrap(ctx: CliContext, hosts: readonly HostTarget[], flags: BootstrapFlags): Promise<number> {
  // ssh2 and the X.509 code load only when bootstrap runs, not at every qfleet start.
  const [{ bootstrapHosts, BootstrapFailure, BOOTSTRAP_TIMEOUT_MS, loadArtifacts, requirePki }, { connectSsh, defaultKnownHostsFiles }] = await Promise.all([
    import('../bootstrap/bootstrap.js'),
    import('../bootstrap/ssh.js'),
  ]);
  const knownHostsFiles = flags.knownHosts ? [flags.knownHosts] : defaultKnownHostsFiles();
  const auth = flags.identity ? { identityFile: flags.identity } : { agentSocket: ctx.env.SSH_AUTH_SOCK };
  if (!auth.identityFile && !auth.agentSocket) throw new UsageError('bootstrap: no SSH credentials: give --identity FILE or start an ssh-agent (SSH_AUTH_SOCK)');
  const pkiDir = flags.pkiDir ?? defaultPkiDir(ctx.env);
  requirePki(pkiDir); // before the bundle is read: the PKI is the first thing to set up
  const artifacts = loadArtifacts(flags.bundle ? { bundle: flags.bundle } : {});
  const waiting = hosts.map((h) => h.name);
  let done = 0;
  const draw = () => ctx.status(progressLine(done, hosts.length, waiting));
  draw();
  const outcomes = await bootstrapHosts(hosts, {
    connect: (t: SshTarget, signal?: AbortSignal) => connectSsh(t, auth, { knownHostsFiles, acceptNew: Boolean(flags.acceptNew) }, undefined, signal),
    artifacts,
    pkiDir,
    defaultUser: flags.user ?? userInfo().username,
    healthTimeoutMs: boundedSeconds(flags.healthTimeout ?? '60', '--health-timeout', LIMITS.healthTimeoutSeconds, { min: 1 }) * 1000,
    onProgress: (host: string, step: string) => ctx.note(`${host}: ${step}`),
    // bootstrap's own default of 20 hosts at once (an SSH session and an upload each), unless --forks says otherwise.
    forks: ctx.forksGiven ? ctx.forks : 20,
    timeoutMs: ctx.longTimeoutMs(BOOTSTRAP_TIMEOUT_MS),
    clock: ctx.clock,
    resolver: ctx.resolver(),
    onSettled: (o) => {
      done++;
      waiting.splice(waiting.indexOf(o.host.name), 1);
      if (ctx.json) return;
      ctx.status('');
      ctx.out(bootstrapLine(o));
      draw();
    },
  });
  ctx.status('');
  const sorted = [...outcomes].sort((a, b) => byCodePoint(a.host.name, b.host.name));
  if (ctx.json) {
    ctx.out(JSON.stringify(sorted.map((o) => {
      const r = o.result;
      if (o.status === 'ok' && r) return { host: o.host.name, status: 'ok', result: { system: r.system, node: r.node, service: r.service, done: r.done, steps: r.steps } };
      return { host: o.host.name, status: o.status, error: o.error ?? o.status, steps: o.cause instanceof BootstrapFailure ? o.cause.partial.steps : [] };
    })));
  } else {
    const bad = outcomes.filter((o) => o.status !== 'ok').length;
    ctx.out(`${outcomes.length - bad} of ${outcomes.length} hosts bootstrapped${bad ? `; ${bad} failed` : ''}`);
  }
  return exitCodeOf(outcomes);
}

/** One host's line: `web1: ok (Linux 6.1 x86_64; node v22 at /usr/bin/node; systemd): unchanged`, or `web1: FAILED: why` (`FAILED: unreachable: why`, ...). */
function bootstrapLine(o: HostOutcome<HostResult>): string {
  const r = o.result;
  if (o.status === 'ok' && r) return `${o.host.name}: ok (${r.system}; node ${r.node}; ${r.service}): ${r.done ? describeChanges(r.done) : 'done'}`;
  return `${o.host.name}: FAILED: ${problem(o)}`;
}
