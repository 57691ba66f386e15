import { ISOLATION_MODES, type IsolationMode } from './drivers/container-config.js';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { AGENT_DEFAULTS, AGENT_TLS_FILES, type AgentDefaults } from '../common/agent-layout.js';
import { PRIVATE_BIND_SUFFIX, unixSocketExcess, unixSocketLimits } from '../common/socket-path.js';
import { InvalidArgumentError } from './errors.js';

export type OsName = 'freebsd' | 'linux';

export interface AgentConfig {
  readonly os: OsName;
  readonly zone: string;
  /** sharedfs, template and containers of this agent's zone. */
  readonly rootDir: string;
  readonly stateDir: string;
  /** Service rc-script output, one file per container. */
  readonly logDir: string;
  readonly socket: string;
  /** Agent log (JSON lines); stderr always gets them too. */
  readonly logFile: string;
  readonly stopGraceSeconds: number;
  /** On SIGTERM, how long mutating calls in flight may run on before they are answered and left for recovery. */
  readonly shutdownGraceSeconds: number;
  /** TCP address for remote clients (`0.0.0.0:7443`); empty: no TCP listener. TCP is always mutual TLS. */
  readonly listen: string;
  /** The agent's certificate, key and the fleet CA (defaults in defaults().tlsDir). */
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly tlsCa: string;
  /**
   * FreeBSD: sha256 of a release's MANIFEST by the MANIFEST's URL (freebsd_manifest_sha256), checked
   * before MANIFEST is read: what lets a plain-http mirror be used. Empty: https mirrors only.
   */
  readonly freebsdManifestSha256: Readonly<Record<string, string>>;
  /** The isolation create uses when asked for none; empty: the driver's (namespaces on Linux, jail on FreeBSD). */
  readonly defaultIsolation: '' | IsolationMode;
}

/** DESIGN.md's per-OS defaults (the same table bootstrap installs by). */
export function defaults(os: OsName): AgentDefaults {
  return AGENT_DEFAULTS[os];
}

const KEYS = ['zone', 'root_dir', 'state_dir', 'log_dir', 'socket', 'log_file', 'stop_grace_seconds', 'shutdown_grace_seconds', 'listen', 'tls_cert', 'tls_key', 'tls_ca', 'freebsd_manifest_sha256', 'default_isolation'] as const;
type Key = (typeof KEYS)[number];

/**
 * qjail.conf-style file: `name="value"` lines, `#` comments. Unknown keys are
 * errors, so a typo never silently falls back to a default path.
 */
export function parseConfigFile(text: string, file: string): Partial<Record<Key, string>> {
  const out: Partial<Record<Key, string>> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^([a-z][a-z0-9_]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s#]*))\s*(?:#.*)?$/.exec(line);
    if (!m) throw new InvalidArgumentError(`${file}:${i + 1}: cannot parse ${JSON.stringify(line)}; expected name="value".`);
    const key = m[1] as Key;
    if (!KEYS.includes(key)) throw new InvalidArgumentError(`${file}:${i + 1}: unknown setting ${key} (known: ${KEYS.join(', ')}).`);
    out[key] = m[2] ?? m[3] ?? m[4] ?? '';
  });
  return out;
}

export interface ConfigSources {
  readonly os: OsName;
  /** Path of the config file; a missing default file is fine, a missing given one is not. */
  readonly configFile?: string;
  readonly flags: Partial<Record<Key, string>>;
}

/** Defaults, overridden by the config file, overridden by flags. */
export function loadConfig(src: ConfigSources): AgentConfig {
  const d = defaults(src.os);
  let file: Partial<Record<Key, string>> = {};
  const path = src.configFile ?? d.configFile;
  try {
    file = parseConfigFile(readFileSync(path, 'utf8'), path);
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    if (!missing || src.configFile) throw missing ? new InvalidArgumentError(`config file ${path} does not exist.`) : e;
  }
  const get = (k: Key) => src.flags[k] ?? file[k];
  const zone = get('zone') ?? 'default';
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(zone) || zone === 'state') throw new InvalidArgumentError(`zone ${JSON.stringify(zone)} is invalid.`);
  const cfg: AgentConfig = {
    os: src.os,
    zone,
    rootDir: get('root_dir') ?? join(d.base, zone),
    stateDir: get('state_dir') ?? (zone === 'default' ? d.stateDir : join(d.stateDir, zone)),
    logDir: get('log_dir') ?? d.logDir,
    socket: get('socket') ?? d.socket,
    logFile: get('log_file') ?? '',
    stopGraceSeconds: Number(get('stop_grace_seconds') ?? 10),
    shutdownGraceSeconds: Number(get('shutdown_grace_seconds') ?? 30),
    listen: get('listen') ?? '',
    tlsCert: get('tls_cert') ?? join(d.tlsDir, AGENT_TLS_FILES.cert),
    tlsKey: get('tls_key') ?? join(d.tlsDir, AGENT_TLS_FILES.key),
    tlsCa: get('tls_ca') ?? join(d.tlsDir, AGENT_TLS_FILES.ca),
    freebsdManifestSha256: parseManifestPins(get('freebsd_manifest_sha256') ?? ''),
    defaultIsolation: (get('default_isolation') ?? '') as AgentConfig['defaultIsolation'],
  };
  const paths = { root_dir: cfg.rootDir, state_dir: cfg.stateDir, log_dir: cfg.logDir, socket: cfg.socket, tls_cert: cfg.tlsCert, tls_key: cfg.tlsKey, tls_ca: cfg.tlsCa };
  for (const [k, v] of Object.entries(paths)) checkPath(k, v);
  checkSocketLength(cfg.socket, cfg.os);
  if (!Number.isFinite(cfg.stopGraceSeconds) || cfg.stopGraceSeconds < 0 || cfg.stopGraceSeconds > 3600) {
    throw new InvalidArgumentError('stop_grace_seconds must be between 0 and 3600.');
  }
  if (!Number.isFinite(cfg.shutdownGraceSeconds) || cfg.shutdownGraceSeconds < 0 || cfg.shutdownGraceSeconds > 600) {
    throw new InvalidArgumentError('shutdown_grace_seconds must be between 0 and 600.');
  }
  if (cfg.defaultIsolation && !ISOLATION_MODES.includes(cfg.defaultIsolation)) {
    throw new InvalidArgumentError(`default_isolation must be one of ${ISOLATION_MODES.join(', ')} (or empty for the OS's default), not ${JSON.stringify(cfg.defaultIsolation)}.`);
  }
  if (cfg.listen && !/^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d{1,5}$/.test(cfg.listen)) {
    throw new InvalidArgumentError(`listen must be HOST:PORT (e.g. 0.0.0.0:7443) or empty, not ${JSON.stringify(cfg.listen)}.`);
  }
  return cfg;
}

/**
 * `freebsd_manifest_sha256="URL=SHA256 …"`: each MANIFEST URL exactly as the agent fetches it
 * (MIRROR/<uname -m>/<uname -p>/<release>/MANIFEST), `=`, its 64-hex sha256; several pins are
 * separated by whitespace. The URL is split off at the last `=` (a digest has none).
 */
export function parseManifestPins(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pin of value.split(/\s+/).filter(Boolean)) {
    const at = pin.lastIndexOf('=');
    const url = at < 0 ? '' : pin.slice(0, at);
    const digest = at < 0 ? pin : pin.slice(at + 1);
    if (!/^https?:\/\/[^\s\x00-\x1f\x7f]+\/MANIFEST$/.test(url)) {
      throw new InvalidArgumentError(
        `freebsd_manifest_sha256: ${JSON.stringify(pin)} is not URL=SHA256 with an http(s) URL ending in /MANIFEST ` +
          '(e.g. http://mirror.example/releases/amd64/amd64/14.1-RELEASE/MANIFEST=<64 hex digits>).',
      );
    }
    if (!/^[0-9a-fA-F]{64}$/.test(digest)) {
      throw new InvalidArgumentError(`freebsd_manifest_sha256: the digest for ${url} must be a sha256 of 64 hex digits, not ${JSON.stringify(digest)}.`);
    }
    if (url in out) throw new InvalidArgumentError(`freebsd_manifest_sha256: ${url} is pinned twice.`);
    out[url] = digest.toLowerCase();
  }
  return out;
}

/**
 * Paths are absolute, without whitespace (spaces, tabs, newlines) or '..'.
 * Whitespace is refused rather than escaped: FreeBSD's `mount -p` prints mount
 * points unescaped (so a container under a path with a space could not be
 * told apart in the mount table), and rc.d's command_args, daemon(8) and
 * sysrc values split on it.
 */
function checkPath(key: string, v: string): void {
  if (v === '') throw new InvalidArgumentError(`${key} is empty: give an absolute path (or leave the setting out for the default).`);
  if (!isAbsolute(v) || /\s/.test(v) || v.split('/').includes('..')) {
    throw new InvalidArgumentError(`${key} must be an absolute path without spaces or '..', not ${JSON.stringify(v)}.`);
  }
}

/** Refuses a socket path a unix socket cannot have, before anything is made. */
export function checkSocketLength(socket: string, os: OsName): void {
  const excess = unixSocketExcess(socket, os, true);
  if (!excess) return;
  const { system, path: max, directory: dirMax } = unixSocketLimits(os);
  if (excess.what === 'path') {
    throw new InvalidArgumentError(
      `socket ${JSON.stringify(socket)} is ${excess.bytes} bytes long; a unix socket path can have at most ${max} on ${system}: choose a shorter path (e.g. ${defaults(os).socket}).`,
    );
  }
  throw new InvalidArgumentError(
    `socket ${JSON.stringify(socket)} is in a directory too long for a unix socket: qfleetd binds it first in a private directory beside it ` +
      `(${dirname(socket)}${PRIVATE_BIND_SUFFIX}), which can have at most ${max} bytes on ${system}, so the directory can have at most ${dirMax}; choose a shorter path (e.g. ${defaults(os).socket}).`,
  );
}
