/**
 * `qfleet bootstrap`: installs and starts the agent on hosts over SSH, all in
 * parallel (bounded), each host ending ok or failed with the reason; one
 * host's failure never stops the others. Re-running upgrades in place and
 * changes only what differs: see HostBootstrap.run.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pkiPath, signAgentCsr } from '../pki/index.js';
import type { HostTarget } from '../fleet/host-target.js';
import { mtlsHealthClient, waitServing } from '../transport/health.js';
import {
  APT_POLICY_NODEJS, checkAgentSocket, commandLine, debianMajor, DETECT_NODE, DETECT_OS, DETECT_SYSTEMD, DETECT_UID, enableService, hostPaths, installFiles, installNodeApt,
  installNodeFreebsd, installTls, MAKE_STAGE, makeDirs, managedFiles, MIN_NODE_MAJOR, parseAptCandidate, parseNode, parseProbe, parseUname, PROBE_DOAS,
  PROBE_SUDO, probeInstalled, removeStage, restartService, serviceStatus, STAGED, tlsRequest,
  type Escalation, type HostPaths, type ManagedFile, type ManagedSources, type OsFamily, type RemoteCommand, type ServiceKind,
} from './plan.js';
import { certificateVerdict } from './certificate.js';
import type { HostChanges } from './changes.js';
import type { ExecResult, RemoteSession, SshTarget } from './ssh.js';

export interface HostResult {
  readonly host: string;
  readonly status: 'ok' | 'failed';
  /** Why it failed (the step and the remote command's error). */
  readonly reason?: string;
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
  /** Opens an authenticated, host-key-checked session (connectSsh, or a fake in tests). */
  readonly connect: (target: SshTarget) => Promise<RemoteSession>;
  readonly artifacts: BootstrapArtifacts;
  /** The controller's PKI (qfleet pki init): signs agent CSRs; its client certificate checks health. */
  readonly pkiDir: string;
  /** SSH login when the inventory gives none. */
  readonly defaultUser: string;
  /** Hosts worked on at once. */
  readonly forks?: number;
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
  const cli = opts.cli ?? join(dirname(bundle), 'qfleet.js');
  for (const f of [bundle, cli]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run bundle`);
  const read = (rel: string) => readFileSync(join(root, rel), 'utf8');
  return {
    bundle: readFileSync(bundle),
    cli: readFileSync(cli),
    supervisor: read('deploy/linux/qfleetd-supervise'),
    rcAgent: read('deploy/freebsd/rc.d/qfleetd'),
    rcContainers: read('deploy/freebsd/rc.d/qfleet'),
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
  ) {}

  private step(what: string): void {
    this.steps.push(what);
    this.opts.onProgress?.(this.host.name, what);
  }

  private async exec(cmd: RemoteCommand, stdin?: string): Promise<ExecResult> {
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
    const certNames = [...new Set([h.name, h.address])];
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
    else await waitMtlsServing(h, this.opts.pkiDir, this.opts.healthTimeoutMs ?? 60_000);
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

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sshTargetOf(h: HostTarget, defaultUser: string): SshTarget {
  return { name: h.name, address: h.address, port: h.sshPort, user: h.sshUser ?? defaultUser };
}

/** Bootstraps every host, `forks` at a time; resolves with one result per host, in the order given. */
export async function bootstrapHosts(hosts: readonly HostTarget[], opts: BootstrapOptions): Promise<HostResult[]> {
  for (const f of ['caCert', 'caKey', 'clientCert', 'clientKey'] as const) {
    if (!existsSync(pkiPath(opts.pkiDir, f))) throw new Error(`${pkiPath(opts.pkiDir, f)} is missing: run qfleet pki init first`);
  }
  const results: HostResult[] = new Array(hosts.length);
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const i = next++;
      results[i] = await bootstrapOne(hosts[i]!, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.forks ?? 20, hosts.length)) }, worker));
  return results;
}

async function bootstrapOne(h: HostTarget, opts: BootstrapOptions): Promise<HostResult> {
  let session: RemoteSession | undefined;
  let hb: HostBootstrap | undefined;
  try {
    session = await opts.connect(sshTargetOf(h, opts.defaultUser));
    hb = new HostBootstrap(h, session, opts);
    await hb.run();
    return { host: h.name, status: 'ok', system: hb.system, node: hb.nodeDesc, service: hb.service, paths: hb.paths, steps: hb.steps, done: hb.done };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    opts.onProgress?.(h.name, `failed: ${reason}`);
    return {
      host: h.name, status: 'failed', reason, system: hb?.system, node: hb?.nodeDesc, service: hb?.service, paths: hb?.paths, steps: hb?.steps ?? [], done: hb?.done,
    };
  } finally {
    session?.close();
  }
}
