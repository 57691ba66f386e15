/**
 * What bootstrap runs on a host, planned as data: every remote command is an
 * argv array (quoted here, in one place) plus whether it needs root. Unit
 * tests assert the exact command lines for FreeBSD and Linux.
 */
import { posix } from 'node:path';
import type { HostTarget } from '../fleet/host-target.js';

export type OsFamily = 'freebsd' | 'linux';
export type Escalation = 'none' | 'sudo' | 'doas';

export interface RemoteCommand {
  readonly argv: readonly string[];
  /** Run through sudo -n / doas -n when the login user is not root. */
  readonly root: boolean;
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX shell quoting of one word. */
export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command line sent over SSH (the login user's shell runs it). */
export function commandLine(cmd: RemoteCommand, esc: Escalation): string {
  const prefix = !cmd.root || esc === 'none' ? [] : esc === 'sudo' ? ['sudo', '-n', '--'] : ['doas', '-n'];
  return [...prefix, ...cmd.argv].map(shellQuote).join(' ');
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

/** Defaults as the agent has them (agent/config.ts), and qfleet_* host vars over them. */
export function hostPaths(os: OsFamily, vars: Readonly<Record<string, unknown>>): HostPaths {
  const fb = os === 'freebsd';
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
  const tlsDir = v('qfleet_tls_dir', fb ? '/usr/local/etc/qfleet/tls' : '/etc/qfleet/tls');
  const socket = v('qfleet_agent_socket_path', fb ? '/var/run/qfleetd.sock' : '/run/qfleetd.sock');
  return {
    installDir,
    bundle: posix.join(installDir, 'qfleetd.js'),
    cli: posix.join(installDir, 'qfleet.js'),
    supervisor: posix.join(installDir, 'qfleetd-supervise'),
    config: v('qfleet_config', fb ? '/usr/local/etc/qfleetd.conf' : '/etc/qfleet/qfleetd.conf'),
    tlsDir,
    tlsCert: posix.join(tlsDir, 'agent.crt'),
    tlsKey: posix.join(tlsDir, 'agent.key'),
    tlsCa: posix.join(tlsDir, 'ca.crt'),
    rootDir: v('qfleet_root_dir', fb ? '/usr/qfleet/default' : '/var/lib/qfleet/default'),
    stateDir: v('qfleet_state_dir', fb ? '/var/db/qfleet' : '/var/lib/qfleet/state'),
    logDir: v('qfleet_log_dir', '/var/log/qfleet'),
    socket,
    agentLog: v('qfleet_agent_log', '/var/log/qfleetd.log'),
    supervisorPidfile: posix.join(posix.dirname(socket), 'qfleetd-supervise.pid'),
  };
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
  unitAgent: 'qfleetd.service',
  unitContainers: 'qfleet-containers.service',
  cert: 'agent.crt',
  ca: 'ca.crt',
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

export function installAgentFiles(stage: string, p: HostPaths, os: OsFamily, withSupervisor: boolean): RemoteCommand[] {
  return [
    ...installFile(stage, STAGED.bundle, p.bundle, '0755'),
    ...installFile(stage, STAGED.cli, p.cli, '0755'),
    ...installFile(stage, STAGED.config, p.config, '0644'),
    ...(os === 'linux' && withSupervisor ? installFile(stage, STAGED.supervisor, p.supervisor, '0755') : []),
  ];
}

export function tlsRequest(node: string, p: HostPaths, host: Pick<HostTarget, 'name' | 'address'>, isIp: boolean): RemoteCommand {
  return root(node, p.bundle, 'tls-request', '--dir', p.tlsDir, '--name', host.name, ...(isIp ? ['--ip', host.address] : []));
}

export function installTls(stage: string, p: HostPaths): RemoteCommand[] {
  return [...installFile(stage, STAGED.cert, p.tlsCert, '0644'), ...installFile(stage, STAGED.ca, p.tlsCa, '0644')];
}

export type ServiceKind = 'rc.d' | 'systemd' | 'supervised';

export const FREEBSD_RC_DIR = '/usr/local/etc/rc.d';
export const SYSTEMD_DIR = '/etc/systemd/system';

/** Installs the service files, enables and (re)starts the agent. */
export function installService(kind: ServiceKind, stage: string, p: HostPaths, node: string): RemoteCommand[] {
  switch (kind) {
    case 'rc.d':
      return [
        ...installFile(stage, STAGED.rcAgent, `${FREEBSD_RC_DIR}/qfleetd`, '0555'),
        ...installFile(stage, STAGED.rcContainers, `${FREEBSD_RC_DIR}/qfleet`, '0555'),
        root('sysrc', 'qfleetd_enable=YES', `qfleetd_config=${p.config}`, `qfleetd_script=${p.bundle}`, `qfleetd_node=${node}`, `qfleetd_log=${p.agentLog}`),
        root('sysrc', 'qfleet_enable=YES', `qfleet_cli=${p.cli}`, `qfleet_node=${node}`, `qfleet_socket=${p.socket}`),
        root('service', 'qfleetd', 'restart'),
      ];
    case 'systemd':
      return [
        ...installFile(stage, STAGED.unitAgent, `${SYSTEMD_DIR}/qfleetd.service`, '0644'),
        ...installFile(stage, STAGED.unitContainers, `${SYSTEMD_DIR}/qfleet-containers.service`, '0644'),
        root('systemctl', 'daemon-reload'),
        root('systemctl', 'enable', 'qfleetd.service', 'qfleet-containers.service'),
        root('systemctl', 'restart', 'qfleetd.service'),
      ];
    case 'supervised':
      return [root(p.supervisor, 'restart', p.supervisorPidfile, p.agentLog, node, p.bundle, p.config)];
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

export function renderAgentUnit(template: string, node: string, p: HostPaths): string {
  return replaceLine(template, 'ExecStart=', `ExecStart=${node} ${p.bundle} --config ${p.config}`);
}

export function renderContainersUnit(template: string, node: string, p: HostPaths): string {
  let t = template.split('/run/qfleetd.sock').join(p.socket);
  t = replaceLine(t, 'ExecStart=', `ExecStart=${node} ${p.cli} --socket ${p.socket} --timeout 600 start -A`);
  return replaceLine(t, 'ExecStop=', `ExecStop=${node} ${p.cli} --socket ${p.socket} --timeout 600 stop -A`);
}
