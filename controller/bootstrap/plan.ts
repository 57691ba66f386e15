/**
 * What bootstrap runs on a host, planned as data: every remote command is an
 * argv array (quoted here, in one place) plus whether it needs root. Unit
 * tests assert the exact command lines for FreeBSD and Linux.
 */
import { shJoin } from '../../common/shell-quote.js';
import { posix } from 'node:path';
import { AGENT_DEFAULTS, AGENT_TLS_FILES } from '../../common/agent-layout.js';
import { unixSocketExcess, unixSocketLimits } from '../../common/socket-path.js';
import type { HostTarget } from '../fleet/host-target.js';

export type OsFamily = 'freebsd' | 'linux';
export type Escalation = 'none' | 'sudo' | 'doas';

export interface RemoteCommand {
  readonly argv: readonly string[];
  /** Run through sudo -n / doas -n when the login user is not root. */
  readonly root: boolean;
}

/** The command line sent over SSH (the login user's shell runs it). */
export function commandLine(cmd: RemoteCommand, esc: Escalation): string {
  const prefix = !cmd.root || esc === 'none' ? [] : esc === 'sudo' ? ['sudo', '-n', '--'] : ['doas', '-n'];
  return shJoin([...prefix, ...cmd.argv]);
}

const user = (...argv: string[]): RemoteCommand => ({ argv, root: false });
const root = (...argv: string[]): RemoteCommand => ({ argv, root: true });

/** Where everything goes on one host. */
export interface HostPaths {
  readonly installDir: string;
  readonly bundle: string;
  readonly cli: string;
  readonly supervisor: string;
  readonly config: string;
  readonly tlsDir: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly tlsCa: string;
  readonly rootDir: string;
  readonly stateDir: string;
  readonly logDir: string;
  readonly socket: string;
  /** The agent's own output (daemon(8) -o, or the supervisor's log). */
  readonly agentLog: string;
  readonly supervisorPidfile: string;
}

/** Defaults as the agent has them (common/agent-layout.ts), and qfleet_* host vars over them. */
export function hostPaths(os: OsFamily, vars: Readonly<Record<string, unknown>>): HostPaths {
  const agent = AGENT_DEFAULTS[os];
  const v = (k: string, d: string): string => {
    const x = vars[k];
    if (x === undefined || x === null || x === '') return d;
    const s = String(x);
    if (!s.startsWith('/') || /[\s"'\\$`]/.test(s) || s.split('/').includes('..')) {
      throw new Error(`host var ${k} must be an absolute path without spaces, quotes or '..', not ${JSON.stringify(s)}`);
    }
    return s.replace(/\/+$/, '') || '/';
  };
  const installDir = v('qfleet_install_dir', '/usr/local/lib/qfleet');
  const tlsDir = v('qfleet_tls_dir', agent.tlsDir);
  const socket = v('qfleet_agent_socket_path', agent.socket);
  return {
    installDir,
    bundle: posix.join(installDir, 'qfleetd.js'),
    cli: posix.join(installDir, 'qfleet.js'),
    supervisor: posix.join(installDir, 'qfleetd-supervise'),
    config: v('qfleet_config', agent.configFile),
    tlsDir,
    tlsCert: posix.join(tlsDir, AGENT_TLS_FILES.cert),
    tlsKey: posix.join(tlsDir, AGENT_TLS_FILES.key),
    tlsCa: posix.join(tlsDir, AGENT_TLS_FILES.ca),
    // The default zone's root, as the agent's root_dir default is for it.
    rootDir: v('qfleet_root_dir', posix.join(agent.base, 'default')),
    stateDir: v('qfleet_state_dir', agent.stateDir),
    logDir: v('qfleet_log_dir', agent.logDir),
    socket,
    agentLog: v('qfleet_agent_log', '/var/log/qfleetd.log'),
    supervisorPidfile: posix.join(posix.dirname(socket), 'qfleetd-supervise.pid'),
  };
}

/** The agent would refuse this socket (agent/config.ts checkSocketLength, the same rule): say so before anything is installed. */
export function checkAgentSocket(os: OsFamily, socket: string): void {
  if (!unixSocketExcess(socket, os, true)) return;
  const { system, path, directory } = unixSocketLimits(os);
  throw new Error(`the agent's socket ${socket} is too long for a unix socket on ${system}: at most ${path} bytes, in a directory of at most ${directory}`);
}

/** The agent's config file (qjail.conf-style `name="value"` lines). */
export function renderAgentConfig(p: HostPaths, agentPort: number): string {
  return [
    '# Written by qfleet bootstrap; re-running bootstrap rewrites it.',
    `root_dir="${p.rootDir}"`,
    `state_dir="${p.stateDir}"`,
    `log_dir="${p.logDir}"`,
    `socket="${p.socket}"`,
    `listen="0.0.0.0:${agentPort}"`,
    `tls_cert="${p.tlsCert}"`,
    `tls_key="${p.tlsKey}"`,
    `tls_ca="${p.tlsCa}"`,
    '',
  ].join('\n');
}

// ---- facts ----

export const DETECT_OS = user('uname', '-s', '-r', '-m');
export const DETECT_UID = user('id', '-u');
export const PROBE_SUDO = user('sudo', '-n', 'true');
export const PROBE_DOAS = user('doas', '-n', 'true');
/** Finds node where packages put it, even if the login PATH lacks /usr/local/bin. */
export const DETECT_NODE = user('sh', '-c', 'PATH="$PATH:/usr/local/bin:/usr/bin:/bin"; n=$(command -v node) && echo "$n" && "$n" -v');
export const DETECT_SYSTEMD = user('test', '-d', '/run/systemd/system');
export const APT_POLICY_NODEJS = user('apt-cache', 'policy', 'nodejs');

export interface UnameFacts {
  readonly os: OsFamily;
  readonly kernel: string;
  readonly release: string;
  readonly machine: string;
}

export function parseUname(out: string): UnameFacts {
  const [kernel, release, machine] = out.trim().split(/\s+/);
  if (!kernel || !release || !machine) throw new Error(`cannot read uname output ${JSON.stringify(out.trim())}`);
  const os = kernel === 'FreeBSD' ? 'freebsd' : kernel === 'Linux' ? 'linux' : undefined;
  if (!os) throw new Error(`unsupported OS ${kernel} ${release}: qfleet runs on FreeBSD and Linux`);
  return { os, kernel, release, machine };
}

export const MIN_NODE_MAJOR = 20;

/** `path\nv22.1.0` → the path and major version. */
export function parseNode(out: string): { path: string; version: string; major: number } | undefined {
  const [path, version] = out.trim().split('\n').map((s) => s.trim());
  const m = /^v(\d+)\./.exec(version ?? '');
  if (!path || !m) return undefined;
  return { path, version: version!, major: Number(m[1]) };
}

/** The candidate version in `apt-cache policy nodejs` output, if any. */
export function parseAptCandidate(out: string): string | undefined {
  const m = /Candidate:\s*(\S+)/.exec(out);
  return m && m[1] !== '(none)' ? m[1] : undefined;
}

/** Debian versions like `18.19.0+dfsg-6~deb12u2` or `1:20.1.0-1`: the upstream major. */
export function debianMajor(version: string): number {
  const up = version.replace(/^\d+:/, '');
  return Number(/^(\d+)/.exec(up)?.[1] ?? NaN);
}

export function installNodeFreebsd(): RemoteCommand {
  return root('env', 'ASSUME_ALWAYS_YES=yes', 'pkg', 'install', '-y', 'node22');
}

/**
 * Linux: the static tools a namespaces container (the default isolation) needs
 * besides util-linux: tini-static as its init and a static busybox that runs
 * inside after pivot_root. Exit 0 when both are there.
 */
export const DETECT_ISOLATION_TOOLS = user('sh', '-c', 'for d in /usr/bin /bin /usr/sbin /sbin; do [ -x $d/tini-static ] && t=1; [ -x $d/busybox ] && b=1; done; [ -n "$t" ] && [ -n "$b" ]');
export const APT_POLICY_TINI = user('apt-cache', 'policy', 'tini');

export function installIsolationToolsApt(): RemoteCommand {
  return root('env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', 'tini', 'busybox-static');
}

export function installNodeApt(): RemoteCommand {
  return root('env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', 'nodejs');
}

// ---- install ----

export const MAKE_STAGE = user('mktemp', '-d', '/tmp/qfleet-bootstrap.XXXXXX');
export const removeStage = (stage: string): RemoteCommand => user('rm', '-rf', '--', stage);

/** Files staged by SFTP (as the login user) before root installs them. */
export const STAGED = {
  bundle: 'qfleetd.js',
  cli: 'qfleet.js',
  config: 'qfleetd.conf',
  supervisor: 'qfleetd-supervise',
  rcAgent: 'rc.qfleetd',
  rcContainers: 'rc.qfleet',
  newsyslog: 'newsyslog.qfleetd.conf',
  unitAgent: 'qfleetd.service',
  unitContainers: 'qfleet-containers.service',
  startRecord: 'qfleetd.start',
  cert: AGENT_TLS_FILES.cert,
  ca: AGENT_TLS_FILES.ca,
} as const;

export function makeDirs(p: HostPaths): RemoteCommand[] {
  return [
    root('install', '-d', '-m', '0755', p.installDir),
    root('install', '-d', '-m', '0755', posix.dirname(p.config)),
    root('install', '-d', '-m', '0700', p.tlsDir),
  ];
}

/** Replaces a file by rename, so a running agent keeps its old file until it restarts. */
function installFile(stage: string, staged: string, dest: string, mode: string): RemoteCommand[] {
  return [root('install', '-m', mode, posix.join(stage, staged), `${dest}.new`), root('mv', '-f', `${dest}.new`, dest)];
}

/** One file bootstrap installs: uploaded to the stage as `staged`, installed at `dest`. */
export interface ManagedFile {
  readonly staged: string;
  readonly dest: string;
  /** Mode given to install(1). */
  readonly mode: string;
  readonly data: Buffer | string;
  /** Its directory may not exist yet (install -d first). */
  readonly makeDir?: boolean;
  /**
   * A change takes effect only when the agent restarts (its bundle, config,
   * supervisor, rc script or unit, and how it is started); the CLI and the
   * containers' boot service are read when they run.
   */
  readonly restartsAgent: boolean;
}

/** The local files and templates bootstrap installs from (deploy/, dist/bundle/). */
export interface ManagedSources {
  readonly bundle: Buffer;
  readonly cli: Buffer;
  readonly supervisor: string;
  readonly rcAgent: string;
  readonly rcContainers: string;
  /** newsyslog.conf(5) rule for the agent's output (deploy/freebsd/newsyslog.conf.d/qfleetd.conf). */
  readonly newsyslog: string;
  readonly unitAgent: string;
  readonly unitContainers: string;
}

/** Installed beside the bundle: how the agent is enabled and started, so a change there (node's path, say) restarts it too. */
export const START_RECORD = 'qfleetd.start';

/**
 * Every file bootstrap installs on a host of this kind, rendered: what a
 * re-run compares (by SHA-256) with what is installed, file by file.
 */
export function managedFiles(kind: ServiceKind, p: HostPaths, node: string, src: ManagedSources, agentPort: number): ManagedFile[] {
  const record = [
    '# Written by qfleet bootstrap: how this host\'s agent is enabled and started. Bootstrap restarts the agent when this changes.',
    ...[...enableService(kind, p, node), ...restartService(kind, p, node)].map((c) => commandLine(c, 'none')),
    '',
  ].join('\n');
  return [
    { staged: STAGED.bundle, dest: p.bundle, mode: '0755', data: src.bundle, restartsAgent: true },
    { staged: STAGED.cli, dest: p.cli, mode: '0755', data: src.cli, restartsAgent: false },
    { staged: STAGED.config, dest: p.config, mode: '0644', data: renderAgentConfig(p, agentPort), restartsAgent: true },
    ...(kind === 'supervised' ? [{ staged: STAGED.supervisor, dest: p.supervisor, mode: '0755', data: src.supervisor, restartsAgent: true }] : []),
    ...(kind === 'rc.d'
      ? [
        { staged: STAGED.rcAgent, dest: `${FREEBSD_RC_DIR}/qfleetd`, mode: '0555', data: src.rcAgent, restartsAgent: true },
        { staged: STAGED.rcContainers, dest: `${FREEBSD_RC_DIR}/qfleet`, mode: '0555', data: src.rcContainers, restartsAgent: false },
        { staged: STAGED.newsyslog, dest: FREEBSD_NEWSYSLOG_CONF, mode: '0644', data: renderNewsyslog(src.newsyslog, p), makeDir: true, restartsAgent: false },
      ]
      : []),
    ...(kind === 'systemd'
      ? [
        { staged: STAGED.unitAgent, dest: `${SYSTEMD_DIR}/qfleetd.service`, mode: '0644', data: renderAgentUnit(src.unitAgent, node, p), restartsAgent: true },
        { staged: STAGED.unitContainers, dest: `${SYSTEMD_DIR}/qfleet-containers.service`, mode: '0644', data: renderContainersUnit(src.unitContainers, node, p), restartsAgent: false },
      ]
      : []),
    { staged: STAGED.startRecord, dest: posix.join(p.installDir, START_RECORD), mode: '0644', data: record, restartsAgent: true },
  ];
}

export function installFiles(stage: string, files: readonly ManagedFile[]): RemoteCommand[] {
  return files.flatMap((f) => [...(f.makeDir ? [root('install', '-d', '-m', '0755', posix.dirname(f.dest))] : []), ...installFile(stage, f.staged, f.dest, f.mode)]);
}

/**
 * Reads, as root, the SHA-256 of each file (null when missing), the agent's
 * certificate and CA (public), and whether agent.key is the certificate's key
 * (the key itself is only read there). Node is on the host by then; one JSON line out.
 */
const PROBE_SCRIPT = [
  "const fs=require('fs'),c=require('crypto'),a=JSON.parse(process.argv[1]),o={files:{},cert:null,ca:null,keyMatches:false};",
  "const r=(f)=>{try{return fs.readFileSync(f)}catch(e){if(e.code==='ENOENT'||e.code==='ENOTDIR')return null;throw e}};",
  "for(const f of a.files){const b=r(f);o.files[f]=b&&c.createHash('sha256').update(b).digest('hex')}",
  "const cert=r(a.cert),ca=r(a.ca),key=r(a.key);o.cert=cert&&cert.toString('utf8');o.ca=ca&&ca.toString('utf8');",
  "try{o.keyMatches=Boolean(cert&&key&&new c.X509Certificate(cert).checkPrivateKey(c.createPrivateKey(key)))}catch{}",
  'process.stdout.write(JSON.stringify(o)+"\\n")',
].join('');

export function probeInstalled(node: string, files: readonly string[], p: HostPaths): RemoteCommand {
  return root(node, '-e', PROBE_SCRIPT, JSON.stringify({ files, cert: p.tlsCert, key: p.tlsKey, ca: p.tlsCa }));
}

export interface Installed {
  /** SHA-256 (hex) of each file, null when missing. */
  readonly files: Readonly<Record<string, string | null>>;
  readonly tls: { readonly cert?: string; readonly ca?: string; readonly keyMatches: boolean };
}

export function parseProbe(out: string): Installed {
  let o: { files?: Record<string, string | null>; cert?: string | null; ca?: string | null; keyMatches?: boolean };
  try {
    o = JSON.parse(out.trim().split('\n').at(-1) ?? '') as typeof o;
  } catch {
    throw new Error(`cannot read the probe's answer: ${JSON.stringify(out.slice(0, 200))}`);
  }
  return { files: o.files ?? {}, tls: { cert: o.cert ?? undefined, ca: o.ca ?? undefined, keyMatches: o.keyMatches === true } };
}

export function tlsRequest(node: string, p: HostPaths, host: Pick<HostTarget, 'name' | 'address'>, isIp: boolean): RemoteCommand {
  return root(node, p.bundle, 'tls-request', '--dir', p.tlsDir, '--name', host.name, ...(isIp ? ['--ip', host.address] : []));
}

export function installTls(stage: string, p: HostPaths): RemoteCommand[] {
  return [...installFile(stage, STAGED.cert, p.tlsCert, '0644'), ...installFile(stage, STAGED.ca, p.tlsCa, '0644')];
}

export type ServiceKind = 'rc.d' | 'systemd' | 'supervised';

export const FREEBSD_RC_DIR = '/usr/local/etc/rc.d';
/** Included by FreeBSD's /etc/newsyslog.conf (`<include> /usr/local/etc/newsyslog.conf.d/[!.]*.conf`). */
export const FREEBSD_NEWSYSLOG_CONF = '/usr/local/etc/newsyslog.conf.d/qfleetd.conf';
export const SYSTEMD_DIR = '/etc/systemd/system';

/** Enables the agent (and the containers' boot service) without starting or restarting anything. */
export function enableService(kind: ServiceKind, p: HostPaths, node: string): RemoteCommand[] {
  switch (kind) {
    case 'rc.d':
      return [
        root('sysrc', 'qfleetd_enable=YES', `qfleetd_config=${p.config}`, `qfleetd_script=${p.bundle}`, `qfleetd_node=${node}`, `qfleetd_log=${p.agentLog}`),
        root('sysrc', 'qfleet_enable=YES', `qfleet_cli=${p.cli}`, `qfleet_node=${node}`, `qfleet_socket=${p.socket}`),
      ];
    case 'systemd':
      return [root('systemctl', 'daemon-reload'), root('systemctl', 'enable', 'qfleetd.service', 'qfleet-containers.service')];
    case 'supervised':
      return [];
  }
}

/** Starts the agent, or restarts it on the installed files. */
export function restartService(kind: ServiceKind, p: HostPaths, node: string): RemoteCommand[] {
  switch (kind) {
    case 'rc.d':
      return [root('service', 'qfleetd', 'restart')];
    case 'systemd':
      return [root('systemctl', 'restart', 'qfleetd.service')];
    case 'supervised':
      return [root(p.supervisor, 'restart', p.supervisorPidfile, p.agentLog, node, p.bundle, p.config)];
  }
}

/** Exits 0 when the agent's service is running. */
export function serviceStatus(kind: ServiceKind, p: HostPaths, node: string): RemoteCommand {
  switch (kind) {
    case 'rc.d':
      return root('service', 'qfleetd', 'status');
    case 'systemd':
      return root('systemctl', 'is-active', '--quiet', 'qfleetd.service');
    case 'supervised':
      return root(p.supervisor, 'status', p.supervisorPidfile, p.agentLog, node, p.bundle, p.config);
  }
}

// ---- service files, rendered from deploy/ ----

function replaceLine(text: string, prefix: string, line: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(prefix));
  if (i < 0) throw new Error(`template has no ${prefix} line`);
  lines[i] = line;
  return lines.join('\n');
}

/** The newsyslog rule with the host's agent log (qfleet_agent_log) in place of the default. */
export function renderNewsyslog(template: string, p: HostPaths): string {
  return template.split('\n').map((l) => (l.startsWith('/var/log/qfleetd.log ') ? p.agentLog + l.slice('/var/log/qfleetd.log'.length) : l)).join('\n');
}

export function renderAgentUnit(template: string, node: string, p: HostPaths): string {
  return replaceLine(template, 'ExecStart=', `ExecStart=${node} ${p.bundle} --config ${p.config}`);
}

export function renderContainersUnit(template: string, node: string, p: HostPaths): string {
  let t = template.split('/run/qfleetd.sock').join(p.socket);
  t = replaceLine(t, 'ExecStart=', `ExecStart=${node} ${p.cli} --socket ${p.socket} --timeout 600 start -A`);
  return replaceLine(t, 'ExecStop=', `ExecStop=${node} ${p.cli} --socket ${p.socket} --timeout 600 stop -A`);
}
