import type { Command } from 'commander';
import { UsageError } from './context.js';
import type { ContainerConfig } from '../proto/gen/qfleet/agent/v1/ContainerConfig.js';
import type { ExtraMount } from '../proto/gen/qfleet/agent/v1/ExtraMount.js';
import type { IdMapping } from '../proto/gen/qfleet/agent/v1/IdMapping.js';
import type { Isolation } from '../proto/gen/qfleet/agent/v1/Isolation.js';

/**
 * The container-config options of `create` and `config` (jchroot's options,
 * agent.proto's ContainerConfig). Each value is checked here for its syntax
 * and its size bound, so a bad one is a usage error (exit 2) before any host
 * is asked; what a value means on a host (a path under /dev, a mode the host
 * does not offer, an overlap in a uid map) is the agent's to judge.
 *
 * List-valued fields (uid/gid maps, the fstab, env) are replaced as a whole,
 * as services are: one mask path is one field, applied by the agent under the
 * container's lock. Merging in the controller would be a read-then-write
 * across two calls that could lose another operator's change in between.
 */

/** Bounds of what one command line may carry (the agent's own are the same or looser). */
export const OPTION_LIMITS = {
  /** Characters in any one option value. */
  valueChars: 4_200,
  mounts: 32,
  env: 64,
  envName: 128,
  envValue: 4_096,
  mapLines: 5,
  path: 1_024,
  account: 32,
  hostname: 253,
  /** --memory and a tmpfs size: at most 1 PiB, so any number here is exact in a double. */
  bytes: 2 ** 50,
  cpus: 1_024,
  pids: 4_194_304,
} as const;

const ISOLATIONS: Record<string, Isolation> = { chroot: 'ISOLATION_CHROOT', namespaces: 'ISOLATION_NAMESPACES', jail: 'ISOLATION_JAIL' };
const MAX_ID = 0xfffffffe;
const SUFFIX: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Repeatable and clearing options: recorded in command-line order, since order matters (mounts) and a clear with a value contradicts. */
type EditKind = 'mount' | 'tmpfs' | 'no-mounts' | 'env' | 'no-env' | 'uid-map' | 'no-uid-map' | 'gid-map' | 'no-gid-map';
interface Edit { kind: EditKind; value?: string }
const EDITS = '__configEdits';

export interface ConfigOptionValues {
  isolation?: string;
  hostname?: string;
  network?: string;
  user?: string;
  group?: string;
  workdir?: string;
  memory?: string;
  cpus?: string;
  pids?: string;
  securelevel?: string;
  [EDITS]?: Edit[];
}

/** What the options ask: the config to send, the mask paths it sets (agent.proto ConfigureRequest.update_mask), and a phrase per change. */
export interface ConfigChange {
  readonly config: ContainerConfig;
  readonly mask: readonly string[];
  /** `isolation set to namespaces`, `memory limit removed`, ...: for the text output and --dry-run's action. */
  readonly phrases: readonly string[];
  /** The options given, as typed (`--isolation`, `--memory`): for the refusal of an agent that would ignore them. */
  readonly flags: readonly string[];
}

/**
 * Adds the options to `create` or `config`: the same set, so one line of
 * options serves both (on create, a clearing option asks for the default).
 */
export function addConfigOptions(cmd: Command, forConfig: boolean): Command {
  const record = (kind: EditKind) => (value?: string) => {
    const prev = (cmd.getOptionValue(EDITS) as Edit[] | undefined) ?? [];
    cmd.setOptionValue(EDITS, [...prev, value === undefined ? { kind } : { kind, value }]);
  };
  // The parser keeps commander's own value harmless; the ordered record above is what is read.
  const keep = (v: string) => v;
  cmd
    .option('--isolation <mode>', `jail, namespaces or chroot (${forConfig ? 'only while stopped' : "default: the host's, see qfleet version"})`)
    .option('--hostname <name>', "the container's host name (default: its name; namespaces and jail)")
    .option('--network <host|none>', "host: the host's network (default, as qchroot); none: loopback only (jchroot -N)")
    .option('--uid-map <inside:outside:count>', "a line of the user namespace's uid map (jchroot -M; repeatable; the map is replaced)", keep)
    .option('--gid-map <inside:outside:count>', 'a line of the gid map (jchroot -G; repeatable; the map is replaced)', keep)
    .option('--mount <src:target[:ro|:rw]>', 'bind a host directory at target (read-only unless :rw; repeatable; the fstab is replaced)', keep)
    .option('--tmpfs <target[:size]>', 'a tmpfs at target, size like --memory (repeatable; with --mount, in the order given)', keep)
    .option('--user <user>', 'user the services run as (name or uid; "" for root, the default)')
    .option('--group <group>', "group the services run as (default: the user's)")
    .option('--env <NAME=value>', "the services' environment (repeatable; the environment is replaced; NAME= sets an empty value)", keep)
    .option('--workdir <dir>', "the services' working directory (default /)")
    .option('--memory <size>', 'memory limit: bytes with K, M, G or T (binary: 512M); 0 or none removes it')
    .option('--cpus <n>', 'CPU limit in CPUs (1.5); 0 or none removes it')
    .option('--pids <n>', 'process-count limit; 0 or none removes it')
    .option('--securelevel <n>', "jail: securelevel -1 (the host's) to 3");
  cmd
    .option('--no-mounts', 'clear the fstab (no extra mounts)')
    .option('--no-env', 'clear the environment')
    .option('--no-uid-map', 'clear the uid map (back to the default, 0:100000:65536)')
    .option('--no-gid-map', 'clear the gid map (back to the default, 0:100000:65536)');
  for (const k of ['mount', 'tmpfs', 'env', 'uid-map', 'gid-map', 'no-mounts', 'no-env', 'no-uid-map', 'no-gid-map'] as EditKind[]) {
    cmd.on(`option:${k}`, record(k));
  }
  return cmd;
}

const usage = (m: string) => new UsageError(m);
const quote = (v: string) => JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);

function bounded(v: string, flag: string): string {
  if (v.length > OPTION_LIMITS.valueChars) throw usage(`${flag}: the value is longer than ${OPTION_LIMITS.valueChars} characters.`);
  return v;
}

/** `512M` → 536870912; K/M/G/T are binary. `none` and 0 are 0 when `zeroOk`. */
export function parseBytes(v: string, flag: string, zeroOk: boolean): number {
  if (zeroOk && v === 'none') return 0;
  const m = /^(\d{1,16})(?:\.(\d{1,6}))?([KMGT]?)$/i.exec(v);
  const n = m ? Math.floor(Number(`${m[1]}.${m[2] ?? '0'}`) * SUFFIX[m[3]!.toUpperCase()]!) : NaN;
  if (!m || !Number.isSafeInteger(n) || n > OPTION_LIMITS.bytes || (!zeroOk && n === 0)) {
    throw usage(`${flag} must be a size in bytes with an optional K, M, G or T (binary: 512M is 512 MiB), at most 1024T${zeroOk ? '; 0 or none removes the limit' : ''}, not ${quote(v)}.`);
  }
  return n;
}

export function parseCpus(v: string): number {
  if (v === 'none') return 0;
  const n = Number(v);
  if (!/^\d{1,4}(\.\d{1,3})?$/.test(v) || n > OPTION_LIMITS.cpus) {
    throw usage(`--cpus must be a number of CPUs from 0 to ${OPTION_LIMITS.cpus} (1.5 is one and a half; 0 or none removes the limit), not ${quote(v)}.`);
  }
  return n;
}

export function parsePids(v: string): number {
  if (v === 'none') return 0;
  const n = Number(v);
  if (!/^\d{1,7}$/.test(v) || n > OPTION_LIMITS.pids) {
    throw usage(`--pids must be a whole number of processes from 0 to ${OPTION_LIMITS.pids} (0 or none removes the limit), not ${quote(v)}.`);
  }
  return n;
}

export function parseIdMap(v: string, flag: string): IdMapping {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(v);
  const [inside, outside, count] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [NaN, NaN, NaN];
  if (!m || inside > MAX_ID || outside > MAX_ID || count < 1 || count > MAX_ID) {
    throw usage(`${flag} must be INSIDE:OUTSIDE:COUNT, whole ids up to ${MAX_ID} and a count of at least 1 (0:100000:65536), not ${quote(v)}.`);
  }
  return { inside, outside, count };
}

function absolute(p: string, flag: string, what: string, spec: string): string {
  if (!p.startsWith('/') || p.length > OPTION_LIMITS.path) throw usage(`${flag}: the ${what} must be an absolute path of at most ${OPTION_LIMITS.path} characters, in ${quote(spec)}.`);
  return p;
}

/**
 * `SRC:TARGET[:ro|:rw]`: a bind, read-only unless `:rw`. jchroot's fstab
 * states the mode on every line (bind,ro or bind,rw) and has no default to
 * copy; qfleet's is the safer one, since a bind shows host files to a
 * container whose root may be untrusted, and writing them should be asked for
 * in words. Paths cannot hold a colon (the agent refuses one), so the split is exact.
 */
export function parseBind(v: string): ExtraMount {
  const parts = v.split(':');
  const mode = parts.length === 3 ? parts[2] : parts.length === 2 ? 'ro' : undefined;
  if (mode !== 'ro' && mode !== 'rw') throw usage(`--mount must be SOURCE:TARGET, SOURCE:TARGET:ro or SOURCE:TARGET:rw (absolute paths), not ${quote(v)}.`);
  return { kind: 'KIND_BIND', source: absolute(parts[0]!, '--mount', 'source', v), target: absolute(parts[1]!, '--mount', 'target', v), readOnly: mode === 'ro', sizeBytes: 0 };
}

/** `TARGET[:SIZE]`: a tmpfs, read-write, its size like --memory (no size: the kernel's default). */
export function parseTmpfs(v: string): ExtraMount {
  const parts = v.split(':');
  if (parts.length > 2) throw usage(`--tmpfs must be TARGET or TARGET:SIZE (an absolute path; 64M), not ${quote(v)}.`);
  const sizeBytes = parts[1] === undefined ? 0 : parseBytes(parts[1], '--tmpfs size', false);
  return { kind: 'KIND_TMPFS', source: '', target: absolute(parts[0]!, '--tmpfs', 'target', v), readOnly: false, sizeBytes };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseEnv(list: readonly string[]): Record<string, string> {
  if (list.length > OPTION_LIMITS.env) throw usage(`--env: at most ${OPTION_LIMITS.env} variables.`);
  const env: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    const name = i > 0 ? kv.slice(0, i) : '';
    const value = kv.slice(i + 1);
    if (!ENV_NAME.test(name) || name.length > OPTION_LIMITS.envName) {
      throw usage(`--env must be NAME=value, NAME of letters, digits and _ not starting with a digit (at most ${OPTION_LIMITS.envName}), not ${quote(kv)}.`);
    }
    if (value.length > OPTION_LIMITS.envValue || value.includes('\0')) throw usage(`--env ${name}: the value is longer than ${OPTION_LIMITS.envValue} characters or holds NUL.`);
    if (Object.hasOwn(env, name)) throw usage(`--env ${name} is given twice.`);
    env[name] = value;
  }
  return env;
}

function account(v: string, flag: string): string {
  if (v.length > OPTION_LIMITS.account || !/^([A-Za-z0-9_][A-Za-z0-9_.-]*\$?)?$/.test(v)) {
    throw usage(`${flag} must be a user or group name or a number (at most ${OPTION_LIMITS.account} characters), not ${quote(v)}.`);
  }
  return v;
}

/** Human words of a size: 536870912 → 512M (exact when it is a whole number of a unit). */
export function sizeWord(bytes: number): string {
  for (const u of ['T', 'G', 'M', 'K'] as const) if (bytes >= SUFFIX[u]! && bytes % SUFFIX[u]! === 0) return `${bytes / SUFFIX[u]!}${u}`;
  return `${bytes}`;
}

export function mountWord(m: { kind?: unknown; source?: string; target?: string; readOnly?: boolean; sizeBytes?: unknown }): string {
  if (m.kind === 'KIND_TMPFS') {
    const size = Number(m.sizeBytes ?? 0);
    return `tmpfs:${m.target}${size ? `:${sizeWord(size)}` : ''}`;
  }
  return `${m.source}:${m.target}:${m.readOnly ? 'ro' : 'rw'}`;
}

export const mapWord = (l: { inside?: number; outside?: number; count?: number }) => `${l.inside}:${l.outside}:${l.count}`;

/**
 * The options as a ConfigChange: only the fields given are in the config and
 * the mask; undefined when none was given (the request then carries no config,
 * exactly as before isolation existed).
 */
export function parseConfigOptions(o: ConfigOptionValues): ConfigChange | undefined {
  const config: ContainerConfig = {};
  const mask: string[] = [];
  const phrases: string[] = [];
  const flags: string[] = [];
  const set = (path: string, flag: string, phrase: string) => {
    mask.push(path);
    phrases.push(phrase);
    if (!flags.includes(flag)) flags.push(flag);
  };
  for (const k of ['isolation', 'hostname', 'network', 'user', 'group', 'workdir', 'memory', 'cpus', 'pids', 'securelevel'] as const) {
    const v = o[k];
    if (v !== undefined) bounded(v, `--${k}`);
  }
  if (o.isolation !== undefined) {
    const iso = ISOLATIONS[o.isolation];
    if (!iso) throw usage(`--isolation must be jail, namespaces or chroot, not ${quote(o.isolation)}.`);
    config.isolation = iso;
    set('isolation', '--isolation', `isolation set to ${o.isolation}`);
  }
  if (o.hostname !== undefined) {
    const h = o.hostname;
    if (h.length > OPTION_LIMITS.hostname || (h !== '' && !/^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/.test(h))) {
      throw usage(`--hostname must be a host name (letters, digits and dashes, dot-separated labels, at most ${OPTION_LIMITS.hostname}; "" for the container's name), not ${quote(h)}.`);
    }
    config.hostname = h;
    set('hostname', '--hostname', h ? `hostname set to ${h}` : 'hostname set to the name');
  }
  if (o.network !== undefined) {
    if (o.network !== 'host' && o.network !== 'none') throw usage(`--network must be host or none, not ${quote(o.network)}.`);
    config.network = o.network === 'host' ? 'NETWORK_HOST' : 'NETWORK_NONE';
    set('network', '--network', `network set to ${o.network}`);
  }
  const edits = o[EDITS] ?? [];
  for (const e of edits) if (e.value !== undefined) bounded(e.value, `--${e.kind}`);
  const of = (...kinds: EditKind[]) => edits.filter((e) => kinds.includes(e.kind));
  const clash = (values: EditKind[], clear: EditKind) => {
    if (of(...values).length && of(clear).length) {
      throw usage(`--${clear} clears what ${values.map((k) => `--${k}`).join(' and ')} would replace: give one or the other.`);
    }
  };
  for (const [field, flag] of [['uid_map', 'uid-map'], ['gid_map', 'gid-map']] as const) {
    clash([flag], `no-${flag}`);
    const lines = of(flag).map((e) => parseIdMap(e.value!, `--${flag}`));
    if (lines.length > OPTION_LIMITS.mapLines) throw usage(`--${flag}: at most ${OPTION_LIMITS.mapLines} lines.`);
    if (lines.length) {
      config[field === 'uid_map' ? 'uidMap' : 'gidMap'] = lines;
      set(field, `--${flag}`, `${flag.replace('-', ' ')} set to ${lines.map(mapWord).join(' ')}`);
    } else if (of(`no-${flag}`).length) {
      config[field === 'uid_map' ? 'uidMap' : 'gidMap'] = [];
      set(field, `--no-${flag}`, `${flag.replace('-', ' ')} cleared`);
    }
  }
  clash(['mount', 'tmpfs'], 'no-mounts');
  const fstab = of('mount', 'tmpfs').map((e) => (e.kind === 'mount' ? parseBind(e.value!) : parseTmpfs(e.value!)));
  if (fstab.length > OPTION_LIMITS.mounts) throw usage(`--mount and --tmpfs: at most ${OPTION_LIMITS.mounts} mounts.`);
  if (fstab.length) {
    config.mounts = fstab;
    set('mounts', of('mount').length ? '--mount' : '--tmpfs', `mounts set to ${fstab.map(mountWord).join(' ')}`);
  } else if (of('no-mounts').length) {
    config.mounts = [];
    set('mounts', '--no-mounts', 'mounts cleared');
  }
  if (o.user !== undefined) {
    config.user = account(o.user, '--user');
    set('user', '--user', `user set to ${o.user || 'root'}`);
  }
  if (o.group !== undefined) {
    config.group = account(o.group, '--group');
    set('group', '--group', o.group ? `group set to ${o.group}` : "group set to the user's");
  }
  clash(['env'], 'no-env');
  if (of('env').length) {
    config.env = parseEnv(of('env').map((e) => e.value!));
    set('env', '--env', `env set to ${Object.keys(config.env).join(' ')}`);
  } else if (of('no-env').length) {
    config.env = {};
    set('env', '--no-env', 'env cleared');
  }
  if (o.workdir !== undefined) {
    config.workdir = o.workdir === '' ? '' : absolute(o.workdir, '--workdir', 'directory', o.workdir);
    set('workdir', '--workdir', `workdir set to ${o.workdir || '/'}`);
  }
  const limits: { memoryBytes?: number; cpus?: number; pids?: number } = {};
  if (o.memory !== undefined) {
    limits.memoryBytes = parseBytes(o.memory, '--memory', true);
    set('limits.memory_bytes', '--memory', limits.memoryBytes ? `memory limit set to ${sizeWord(limits.memoryBytes)}` : 'memory limit removed');
  }
  if (o.cpus !== undefined) {
    limits.cpus = parseCpus(o.cpus);
    set('limits.cpus', '--cpus', limits.cpus ? `cpu limit set to ${limits.cpus}` : 'cpu limit removed');
  }
  if (o.pids !== undefined) {
    limits.pids = parsePids(o.pids);
    set('limits.pids', '--pids', limits.pids ? `pids limit set to ${limits.pids}` : 'pids limit removed');
  }
  if (Object.keys(limits).length) config.limits = limits;
  if (o.securelevel !== undefined) {
    if (!/^(-1|[0-3])$/.test(o.securelevel)) throw usage(`--securelevel must be -1 (the host's) or 0 to 3, not ${quote(o.securelevel)}.`);
    config.securelevel = Number(o.securelevel);
    set('securelevel', '--securelevel', o.securelevel === '-1' ? "securelevel set to the host's" : `securelevel set to ${o.securelevel}`);
  }
  return mask.length ? { config, mask, phrases, flags } : undefined;
}
