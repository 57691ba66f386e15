/**
 * `qfleet bootstrap`: installs and starts the agent on hosts over SSH, through
 * the fan-out every command uses (fleet/fanout.ts): --forks at a time, one
 * deadline, each host ending ok, failed, unreachable or timed out with the
 * reason; one host's failure never stops the others. Re-running upgrades in
 * place and changes only what differs: see HostBootstrap.run.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pkiPath, signAgentCsr } from '../pki/index.js';
import { fanOut, HostError, type HostCall, type HostOutcome, type HostStatus } from '../fleet/fanout.js';
import type { Dial } from '../transport/factory.js';
import type { Clock } from '../fleet/clock.js';
import type { HostTarget } from '../fleet/host-target.js';
import type { NameResolver } from '../fleet/resolve.js';
import { mtlsHealthClient, waitServing } from '../transport/health.js';
import { agentCertNames } from '../transport/identity.js';
import {
  APT_POLICY_NODEJS, APT_POLICY_TINI, checkAgentSocket, commandLine, debianMajor, DETECT_ISOLATION_TOOLS, DETECT_NODE, DETECT_OS, DETECT_SYSTEMD, DETECT_UID, enableService, hostPaths, installFiles, installIsolationToolsApt, installNodeApt,
  installNodeFreebsd, installTls, MAKE_STAGE, makeDirs, managedFiles, MIN_NODE_MAJOR, parseAptCandidate, parseNode, parseProbe, parseUname, PROBE_DOAS,
  PROBE_SUDO, probeInstalled, removeStage, restartService, serviceStatus, STAGED, tlsRequest,
  type Escalation, type HostPaths, type ManagedFile, type ManagedSources, type OsFamily, type RemoteCommand, type ServiceKind,
} from './plan.js';
import { certificateVerdict } from './certificate.js';
import type { HostChanges } from './changes.js';
import { RemoteTimeoutError, type ExecResult, type RemoteSession, type SshTarget } from './ssh.js';
import { CLI_PROGRAM_FILE } from '../bundle-files.js';

/** What one host's bootstrap found and did; a host that failed has what it got to (BootstrapFailure). */
export interface HostResult {
  /** e.g. "FreeBSD 14.1-RELEASE amd64" */
  readonly system?: string;
  readonly node?: string;
  readonly service?: ServiceKind;
  readonly paths?: HostPaths;
  /** Steps done, in order. */
  readonly steps: readonly string[];
  /** What this run changed (set once the host got that far). */
  readonly done?: HostChanges;
}

/** The local files bootstrap uploads: the same set the plan renders and compares with the host's. */
export type BootstrapArtifacts = ManagedSources;

export interface BootstrapOptions {
  /** Opens an authenticated, host-key-checked session (connectSsh, or a fake in tests); the signal aborts when the host's deadline falls. */
  readonly connect: (target: SshTarget, signal?: AbortSignal) => Promise<RemoteSession>;
  readonly artifacts: BootstrapArtifacts;
  /** The controller's PKI (qfleet pki init): signs agent CSRs; its client certificate checks health. */
  readonly pkiDir: string;
  /** SSH login when the inventory gives none. */
  readonly defaultUser: string;
  /** Hosts worked on at once (default 20: an SSH session and an upload each). */
  readonly forks?: number;
  /** The deadline of the whole bootstrap, from its start (default BOOTSTRAP_TIMEOUT_MS): a host still at work then ends timed out. */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  /** Resolves host names before SSH dials them (the CLI's killable child); without it ssh2 looks them up. */
  readonly resolver?: NameResolver;
  /** Called as each host ends. */
  readonly onSettled?: (o: HostOutcome<HostResult>) => void;
  /** Bound on waiting for health SERVING over mutual TLS. */
  readonly healthTimeoutMs?: number;
  /** Bound on one remote command (a package install can take minutes). */
  readonly commandTimeoutMs?: number;
  readonly onProgress?: (host: string, step: string) => void;
  /** Replaces the mutual-TLS health wait (unit tests). */
  readonly waitHealthy?: (host: HostTarget) => Promise<void>;
  /** The time certificates are judged at (default Date.now). */
  readonly now?: () => number;
}

/** The repository (or install) directory holding deploy/ and dist/bundle/. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'deploy/linux/qfleetd.service'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find deploy/ (the qfleet checkout) near the controller');
}

export function loadArtifacts(opts: { bundle?: string; cli?: string; root?: string } = {}): BootstrapArtifacts {
  const root = opts.root ?? projectRoot();
  const bundle = opts.bundle ?? join(root, 'dist/bundle/qfleetd.js');
  // The CLI's program: it runs as it is, and a host needs no compile cache for one start per boot.
  const cli = opts.cli ?? join(dirname(bundle), CLI_PROGRAM_FILE);
  for (const f of [bundle, cli]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run bundle`);
  const read = (rel: string) => readFileSync(join(root, rel), 'utf8');
  return {
    bundle: readFileSync(bundle),
    cli: readFileSync(cli),
    supervisor: read('deploy/linux/qfleetd-supervise'),
    rcAgent: read('deploy/freebsd/rc.d/qfleetd'),
    rcContainers: read('deploy/freebsd/rc.d/qfleet'),
    newsyslog: read('deploy/freebsd/newsyslog.conf.d/qfleetd.conf'),
    unitAgent: read('deploy/linux/qfleetd.service'),
    unitContainers: read('deploy/linux/qfleet-containers.service'),
  };
}

class StepError extends Error {}

/** One host's bootstrap, against an open session. Exported for the fake-session tests. */
export class HostBootstrap {
  readonly steps: string[] = [];
  private esc: Escalation = 'none';
  system?: string;
  nodeDesc?: string;
  service?: ServiceKind;
  paths?: HostPaths;
  done?: HostChanges;

  constructor(
    private readonly host: HostTarget,
    private readonly s: RemoteSession,
    private readonly opts: BootstrapOptions,
    /** The host's deadline (epoch ms) and its abort: nothing more is run on the host once it falls. */
    private readonly deadline: { readonly at: number; readonly signal?: AbortSignal; readonly now: () => number } = { at: Infinity, now: Date.now },
  ) {}

  private step(what: string): void {
    this.steps.push(what);
    this.opts.onProgress?.(this.host.name, what);
  }

  private async exec(cmd: RemoteCommand, stdin?: string): Promise<ExecResult> {
    if (this.deadline.signal?.aborted) throw new HostError('abandoned: the deadline fell', 'timed out');
    const line = commandLine(cmd, this.esc);
    return this.s.exec(line, { timeoutMs: this.opts.commandTimeoutMs ?? 600_000, ...(stdin !== undefined ? { stdin } : {}) });
  }

  /** Runs a command that must succeed. */
  private async must(cmd: RemoteCommand, what: string): Promise<string> {
    const r = await this.exec(cmd);
    if (r.code !== 0) {
      const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join(' | ');
      throw new StepError(`${what}: \`${commandLine(cmd, this.esc)}\` exited ${r.code ?? r.signal}${err ? `: ${err}` : ''}`);
    }
    return r.stdout;
  }

  async run(): Promise<void> {
    const h = this.host;
    // 1. OS, user, privilege.
    const uname = parseUname(await this.must(DETECT_OS, 'detect the OS'));
    this.system = `${uname.kernel} ${uname.release} ${uname.machine}`;
    const uid = Number((await this.must(DETECT_UID, 'read the login uid')).trim());
    if (uid !== 0) {
      if ((await this.exec(PROBE_SUDO)).code === 0) this.esc = 'sudo';
      else if ((await this.exec(PROBE_DOAS)).code === 0) this.esc = 'doas';
      else throw new StepError('the login user is not root and neither `sudo -n` nor `doas -n` works for it: allow it passwordless sudo or doas, or log in as root');
    }
    this.step(`detected ${this.system}${this.esc === 'none' ? '' : ` (root via ${this.esc})`}`);
    const p = hostPaths(uname.os, h.vars);
    checkAgentSocket(uname.os, p.socket);
    this.paths = p;

    // 2. Node.
    const node = await this.ensureNode(uname.os);
    this.nodeDesc = `${node.version} at ${node.path}`;

    // 2b. What the default isolation needs (Linux namespaces): installed when apt has it, else said.
    if (uname.os !== 'freebsd') await this.ensureIsolationTools();

    // 3. Service kind.
    const forced = h.vars.qfleet_service;
    let kind: ServiceKind;
    if (forced === 'rc.d' || forced === 'systemd' || forced === 'supervised') kind = forced;
    else if (forced !== undefined) throw new StepError(`host var qfleet_service must be rc.d, systemd or supervised, not ${JSON.stringify(forced)}`);
    else kind = uname.os === 'freebsd' ? 'rc.d' : (await this.exec(DETECT_SYSTEMD)).code === 0 ? 'systemd' : 'supervised';
    this.service = kind;

    // 4. What would be installed, against what is: only what differs is uploaded, and the agent restarts only if it needs to.
    const files = managedFiles(kind, p, node.path, this.opts.artifacts, h.agentPort);
    const installed = parseProbe(await this.must(probeInstalled(node.path, files.map((f) => f.dest), p), 'read what is installed'));
    const changed = files.filter((f) => installed.files[f.dest] !== sha256(f.data));
    const certNames = agentCertNames(h);
    const cert = certificateVerdict(installed.tls, {
      caPem: readFileSync(pkiPath(this.opts.pkiDir, 'caCert'), 'utf8'), names: certNames, now: this.opts.now?.() ?? Date.now(),
    });
    let agent: HostChanges['agent'] = changed.some((f) => f.restartsAgent) || cert.reissue ? 'restarted' : 'left running';
    if (agent === 'left running' && (await this.exec(serviceStatus(kind, p, node.path))).code !== 0) agent = 'started';

    if (changed.length || cert.reissue) {
      const stage = (await this.must(MAKE_STAGE, 'make a staging directory')).trim();
      if (!/^\/tmp\/qfleet-bootstrap\.[A-Za-z0-9]+$/.test(stage)) throw new StepError(`unexpected staging directory ${JSON.stringify(stage)}`);
      try {
        for (const c of makeDirs(p)) await this.must(c, 'make directories');
        if (changed.length) await this.installChanged(stage, changed);
        if (cert.reissue) await this.reissueCertificate(stage, node.path, p, certNames, cert.why);
      } finally {
        await this.exec(removeStage(stage)).catch(() => undefined);
      }
    } else {
      this.step('agent bundle and configuration unchanged');
    }
    if (!cert.reissue) this.step(`certificate kept (expires in ${cert.expiresInDays} days)`);

    // 5. Service: enabled when anything changed; restarted only when the agent's own files or certificate did, or started if it was not running.
    if (changed.length || agent !== 'left running') {
      for (const c of enableService(kind, p, node.path)) await this.must(c, `enable the ${kind} service`);
    }
    if (agent !== 'left running') {
      for (const c of restartService(kind, p, node.path)) await this.must(c, `${agent === 'started' ? 'start' : 'restart'} the ${kind} service`);
      this.step(agent === 'started' ? `service (${kind}) was not running: started` : `service (${kind}) enabled and restarted`);
    } else {
      this.step(`service (${kind}) running, left as it is`);
    }
    this.done = { updated: changed.map((f) => f.dest), certificateReissued: cert.reissue ? cert.why : undefined, agent };

    // 7. Health over mutual TLS.
    if (this.opts.waitHealthy) await this.opts.waitHealthy(h);
    // Never past the host's deadline: the fan-out has given up on it by then.
    else await waitMtlsServing(h, this.opts.pkiDir, Math.min(this.opts.healthTimeoutMs ?? 60_000, Math.max(0, this.deadline.at - this.deadline.now())));
    this.step(`health SERVING over mutual TLS on ${h.address}:${h.agentPort}`);
  }

  private async installChanged(stage: string, changed: readonly ManagedFile[]): Promise<void> {
    let bytes = 0;
    for (const f of changed) {
      await this.s.upload(`${stage}/${f.staged}`, f.data, 0o644);
      bytes += Buffer.byteLength(f.data);
    }
    for (const c of installFiles(stage, changed)) await this.must(c, 'install the agent');
    this.step(`updated ${changed.map((f) => f.dest).join(', ')} (${(bytes / 1024 / 1024).toFixed(1)} MiB uploaded)`);
  }

  /** TLS: key made (or kept) on the host, CSR signed here, certificate and CA sent back. */
  private async reissueCertificate(stage: string, node: string, p: HostPaths, names: readonly string[], why: string): Promise<void> {
    const h = this.host;
    const csr = await this.must(tlsRequest(node, p, h, isIP(h.address) !== 0), 'make the agent key and CSR');
    const m = /-----BEGIN CERTIFICATE REQUEST-----[\s\S]+?-----END CERTIFICATE REQUEST-----/.exec(csr);
    if (!m) throw new StepError(`tls-request printed no certificate request: ${csr.slice(0, 200)}`);
    const { certPem, caPem } = await signAgentCsr(this.opts.pkiDir, `${m[0]}\n`, names);
    await this.s.upload(`${stage}/${STAGED.cert}`, certPem, 0o644);
    await this.s.upload(`${stage}/${STAGED.ca}`, caPem, 0o644);
    for (const c of installTls(stage, p)) await this.must(c, 'install the agent certificate');
    this.step(`TLS: certificate re-issued (${why}): key made or kept on the host, signed by the fleet CA`);
  }

  /**
   * Linux: tini and a static busybox, without which the agent offers chroot
   * only. Installed with apt where it has them; elsewhere the step says what
   * to install, and the host is bootstrapped anyway (its capabilities say why
   * namespaces are missing).
   */
  private async ensureIsolationTools(): Promise<void> {
    if ((await this.exec(DETECT_ISOLATION_TOOLS)).code === 0) {
      this.step('isolation tools present (tini-static, static busybox)');
      return;
    }
    const r = await this.exec(APT_POLICY_TINI);
    if (r.code !== 0 || !parseAptCandidate(r.stdout)) {
      this.step('isolation tools missing: install tini (tini-static) and a static busybox for namespaces containers; until then this host offers chroot only');
      return;
    }
    await this.must(installIsolationToolsApt(), 'install tini and busybox-static with apt-get (namespaces containers need them)');
    this.step('installed tini and busybox-static (namespaces containers)');
  }

  private async ensureNode(os: OsFamily): Promise<{ path: string; version: string }> {
    const probe = async () => {
      const r = await this.exec(DETECT_NODE);
      return r.code === 0 ? parseNode(r.stdout) : undefined;
    };
    let node = await probe();
    if (node && node.major >= MIN_NODE_MAJOR) {
      this.step(`node ${node.version} present`);
      return node;
    }
    const had = node ? `node ${node.version}` : 'no node';
    if (os === 'freebsd') {
      await this.must(installNodeFreebsd(), `install node22 with pkg (host has ${had})`);
    } else {
      const r = await this.exec(APT_POLICY_NODEJS);
      const cand = r.code === 0 ? parseAptCandidate(r.stdout) : undefined;
      if (!cand) {
        throw new StepError(`Node.js ${MIN_NODE_MAJOR} or newer is needed and the host has ${had}, with no apt package nodejs to install: install Node.js ${MIN_NODE_MAJOR}+ (from your distribution or nodejs.org) and re-run bootstrap`);
      }
      if (!(debianMajor(cand) >= MIN_NODE_MAJOR)) {
        throw new StepError(
          `Node.js ${MIN_NODE_MAJOR} or newer is needed; the host has ${had} and apt offers nodejs ${cand}, too old: ` +
            `add a newer Node.js (e.g. NodeSource's apt repository for Node 22, or a nodejs.org build in /usr/local/bin) and re-run bootstrap`,
        );
      }
      await this.must(installNodeApt(), `install nodejs ${cand} with apt-get`);
    }
    node = await probe();
    if (!node || node.major < MIN_NODE_MAJOR) throw new StepError(`node is still ${node ? node.version : 'missing'} after installing it`);
    this.step(`installed node ${node.version}`);
    return node;
  }
}

async function waitMtlsServing(h: HostTarget, pkiDir: string, timeoutMs: number): Promise<void> {
  const client = mtlsHealthClient(h, pkiDir);
  try {
    await waitServing(client, timeoutMs);
  } finally {
    client.close();
  }
}

// Hex, as the host's probe (plan.ts probeInstalled) prints its files' digests; ssh.ts's is a key fingerprint, base64 as OpenSSH shows it.
function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sshTargetOf(h: HostTarget, defaultUser: string, dial?: Dial): SshTarget {
  return { name: h.name, address: h.address, port: h.sshPort, user: h.sshUser ?? defaultUser, ...(dial ? { dial: dial.ip } : {}) };
}

/** With no --timeout, how long bootstrap may take (a Node install from packages included). */
export const BOOTSTRAP_TIMEOUT_MS = 30 * 60_000;

/** A host whose bootstrap did not end ok: why, its status, and what it got to (steps, facts). */
export class BootstrapFailure extends HostError {
  constructor(
    message: string,
    status: Exclude<HostStatus, 'ok'>,
    readonly partial: Partial<HostResult> & { readonly steps: readonly string[] },
    options?: ErrorOptions,
  ) {
    super(message, status, options);
  }
}

/**
 * One host's SSH connection, as the fan-out's "client": made when the host's
 * turn comes (with the address the resolver found), opened by the work, and
 * closed by the fan-out when the host ends, also when its deadline falls in
 * the middle of a step (the remote command's channel closes with it).
 */
export class SshConnection {
  private session?: RemoteSession;
  private closed = false;
  constructor(readonly target: SshTarget, private readonly connect: BootstrapOptions['connect']) {}

  async open(signal?: AbortSignal): Promise<RemoteSession> {
    const s = await this.connect(this.target, signal);
    // Closed while connecting (the deadline fell): nobody will use it.
    if (this.closed) s.close();
    else this.session = s;
    return s;
  }

  close(): void {
    this.closed = true;
    this.session?.close();
  }
}

/**
 * How a connection error ends the host: `unreachable` when nothing answered
 * on the SSH port (refused, no route, no such name), `timed out` when the
 * handshake did not complete in time, else `failed` (a refused host key or
 * login: the host answered and said no).
 */
export function connectStatus(e: unknown): Exclude<HostStatus, 'ok'> {
  const err = e as { level?: string; code?: string };
  if (err.level === 'client-timeout') return 'timed out';
  if (err.level === 'client-socket' || err.level === 'client-dns') return 'unreachable';
  if (typeof err.code === 'string' && /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENOTFOUND|EAI_AGAIN|ECONNRESET)$/.test(err.code)) return 'unreachable';
  return 'failed';
}

/** Bootstrap signs with the CA and checks health with the controller's certificate: all four files must be there. */
export function requirePki(pkiDir: string): void {
  for (const f of ['caCert', 'caKey', 'clientCert', 'clientKey'] as const) {
    if (!existsSync(pkiPath(pkiDir, f))) throw new Error(`bootstrap: ${pkiPath(pkiDir, f)} is missing: run qfleet pki init first`);
  }
}

/**
 * Bootstraps every host through the fan-out: `forks` at a time, under one
 * deadline; resolves with one outcome per host, in the order given. A host's
 * result is its HostResult when ok; else the outcome's error says why and its
 * cause (a BootstrapFailure) carries the steps taken.
 */
export async function bootstrapHosts(hosts: readonly HostTarget[], opts: BootstrapOptions): Promise<HostOutcome<HostResult>[]> {
  requirePki(opts.pkiDir);
  const now = opts.clock ? () => opts.clock!.now() : Date.now;
  return fanOut(hosts, (call: HostCall<SshConnection>) => bootstrapOne(call, opts, now), {
    factory: (h, dial) => new SshConnection(sshTargetOf(h, opts.defaultUser, dial), opts.connect),
    forks: opts.forks ?? 20,
    timeoutMs: opts.timeoutMs ?? BOOTSTRAP_TIMEOUT_MS,
    clock: opts.clock,
    resolver: opts.resolver,
    onSettled: opts.onSettled as ((o: HostOutcome<unknown>) => void) | undefined,
  });
}

async function bootstrapOne(call: HostCall<SshConnection>, opts: BootstrapOptions, now: () => number): Promise<HostResult> {
  const h = call.host;
  const fail = (e: unknown, status: Exclude<HostStatus, 'ok'>, hb?: HostBootstrap): never => {
    const reason = e instanceof Error ? e.message : String(e);
    // After the deadline the fan-out has already reported the host timed out: no second word on it.
    if (!call.signal.aborted) opts.onProgress?.(h.name, `failed: ${reason}`);
    throw new BootstrapFailure(reason, status, {
      system: hb?.system, node: hb?.nodeDesc, service: hb?.service, paths: hb?.paths, steps: hb?.steps ?? [], done: hb?.done,
    }, { cause: e });
  };
  let session: RemoteSession;
  try {
    session = await call.client.open(call.signal);
  } catch (e) {
    return fail(e, connectStatus(e));
  }
  const hb = new HostBootstrap(h, session, opts, { at: now() + call.timeoutMs, signal: call.signal, now });
  try {
    await hb.run();
  } catch (e) {
    return fail(e, e instanceof HostError ? e.status : e instanceof RemoteTimeoutError ? 'timed out' : 'failed', hb);
  }
  return { system: hb.system, node: hb.nodeDesc, service: hb.service, paths: hb.paths, steps: hb.steps, done: hb.done };
}
