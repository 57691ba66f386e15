import {
  ISOLATION_MODES, LEGACY_CONFIG, NO_LIMITS,
  type ContainerConfig, type ExtraMount, type IdMapping, type IsolationMode, type Limits,
} from '../drivers/container-config.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * A container config as a request or a state file gives it: any field may be
 * missing or of the wrong type. normalizeConfig() checks every field and
 * answers a ContainerConfig or throws InvalidArgumentError naming the field.
 * Whether the host can honour it is the driver's question (checkConfig).
 */
export type ConfigInput = { readonly [K in keyof ContainerConfig]?: unknown };

/** The fields `qfleet config` may change (ConfigureRequest.update_mask, without the "config." prefix). */
export const CONFIG_FIELDS = [
  'isolation', 'hostname', 'network', 'uid_map', 'gid_map', 'mounts', 'user', 'group', 'env', 'workdir',
  'limits', 'limits.memory_bytes', 'limits.cpus', 'limits.pids', 'securelevel',
] as const;
export type ConfigField = (typeof CONFIG_FIELDS)[number];

/** Fields that change how the container is built at start: only while it is stopped. */
export const STOPPED_ONLY: readonly ConfigField[] = ['isolation', 'hostname', 'network', 'uid_map', 'gid_map', 'mounts', 'securelevel'];

export const MAX_MOUNTS = 32;
export const MAX_ENV = 64;
export const MAX_MAP_LINES = 5;
const MAX_ENV_VALUE = 4096;
const MAX_PATH = 1024;
/** Linux ids are 32-bit, and (uid_t)-1 means "no id". */
const MAX_ID = 0xfffffffe;

const bad = (field: string, why: string) =>
  new InvalidArgumentError(`Error; ${field} ${why}.`, { reason: 'invalid-argument', fields: { field } });

function str(v: unknown, field: string, max = 256): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw bad(field, 'must be a string');
  if (v.length > max) throw bad(field, `is longer than ${max} characters`);
  return v;
}

function isolation(v: unknown, dflt: IsolationMode): IsolationMode {
  if (v === undefined || v === null || v === '') return dflt;
  if (!ISOLATION_MODES.includes(v as IsolationMode)) throw bad('isolation', `must be one of ${ISOLATION_MODES.join(', ')}, not ${JSON.stringify(v)}`);
  return v as IsolationMode;
}

/** An RFC 1123 host name: labels of letters, digits and dashes. */
function hostname(v: unknown): string {
  const h = str(v, 'hostname', 253);
  if (h && !/^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/.test(h)) {
    throw bad('hostname', `${JSON.stringify(h)} is not a host name (letters, digits and dashes, dot-separated labels)`);
  }
  return h;
}

function network(v: unknown): 'host' | 'none' {
  if (v === undefined || v === null || v === '') return 'host';
  if (v !== 'host' && v !== 'none') throw bad('network', `must be host or none, not ${JSON.stringify(v)}`);
  return v;
}

function id(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID) throw bad(field, 'must be a whole number from 0 to 4294967294');
  return v;
}

/** A uid or gid map: at most MAX_MAP_LINES lines, none overlapping inside or outside (the kernel refuses overlaps). */
function idMap(v: unknown, field: string): IdMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(field, 'must be a list of inside:outside:count lines');
  if (v.length > MAX_MAP_LINES) throw bad(field, `has more than ${MAX_MAP_LINES} lines`);
  const lines = v.map((l, i) => {
    const o = (l ?? {}) as Record<string, unknown>;
    const line = { inside: id(o.inside, `${field}[${i}].inside`), outside: id(o.outside, `${field}[${i}].outside`), count: id(o.count, `${field}[${i}].count`) };
    if (line.count === 0) throw bad(`${field}[${i}].count`, 'must be at least 1');
    if (line.inside + line.count - 1 > MAX_ID || line.outside + line.count - 1 > MAX_ID) throw bad(`${field}[${i}]`, 'runs past the largest id');
    return line;
  });
  for (const side of ['inside', 'outside'] as const) {
    const sorted = [...lines].sort((a, b) => a[side] - b[side]);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]![side] < sorted[i - 1]![side] + sorted[i - 1]!.count) throw bad(field, `has overlapping ${side} ranges`);
    }
  }
  return lines;
}

/**
 * An absolute path a command line can carry as one argument: no whitespace,
 * control characters, commas or colons (fstab and mount options split on them),
 * no "." or ".." components, no trailing slash.
 */
export function checkAbsolutePath(v: unknown, field: string): string {
  const p = str(v, field, MAX_PATH);
  if (!p.startsWith('/')) throw bad(field, `must be an absolute path, not ${JSON.stringify(p)}`);
  if (/[\s\x00-\x1f\x7f,:]/.test(p)) throw bad(field, `${JSON.stringify(p)} contains whitespace, a control character, a comma or a colon`);
  if (p !== '/' && p.endsWith('/')) throw bad(field, `${JSON.stringify(p)} ends with a slash`);
  if (p.split('/').some((c) => c === '.' || c === '..')) throw bad(field, `${JSON.stringify(p)} has a . or .. component`);
  if (/\/\//.test(p)) throw bad(field, `${JSON.stringify(p)} has an empty component`);
  return p;
}

function mounts(v: unknown): ExtraMount[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad('mounts', 'must be a list');
  if (v.length > MAX_MOUNTS) throw bad('mounts', `has more than ${MAX_MOUNTS} entries`);
  const out = v.map((m, i) => {
    const o = (m ?? {}) as Record<string, unknown>;
    const f = `mounts[${i}]`;
    if (o.kind !== 'bind' && o.kind !== 'tmpfs') throw bad(`${f}.kind`, 'must be bind or tmpfs');
    const target = checkAbsolutePath(o.target, `${f}.target`);
    if (target === '/') throw bad(`${f}.target`, 'cannot be the container\'s root');
    const top = target.split('/')[1]!;
    if (['dev', 'proc', 'sys', 'sharedfs'].includes(top)) throw bad(`${f}.target`, `${target} is under /${top}, which qfleet mounts itself`);
    const source = o.kind === 'bind' ? checkAbsolutePath(o.source, `${f}.source`) : str(o.source, `${f}.source`);
    if (o.kind === 'tmpfs' && source) throw bad(`${f}.source`, 'must be empty for a tmpfs');
    if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean') throw bad(`${f}.readOnly`, 'must be true or false');
    const size = o.sizeBytes ?? 0;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`${f}.sizeBytes`, 'must be a whole number of bytes');
    if (o.kind === 'bind' && size) throw bad(`${f}.sizeBytes`, 'applies to a tmpfs only');
    return { kind: o.kind as ExtraMount['kind'], source, target, readOnly: o.readOnly === true, sizeBytes: size };
  });
  const targets = new Set<string>();
  for (const m of out) {
    if (targets.has(m.target)) throw bad('mounts', `mount ${m.target} twice`);
    targets.add(m.target);
  }
  return out;
}

/** A user or group as useradd(8) names them, or a number. */
function account(v: unknown, field: string): string {
  const s = str(v, field, 32);
  if (s && !/^([a-z_][a-z0-9_-]*\$?|[0-9]+)$/.test(s)) throw bad(field, `${JSON.stringify(s)} is not a user or group name`);
  return s;
}

function env(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('env', 'must be a map of names to values');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_ENV) throw bad('env', `has more than ${MAX_ENV} variables`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(k)) throw bad('env', `${JSON.stringify(k)} is not a variable name`);
    const s = str(val, `env.${k}`, MAX_ENV_VALUE);
    if (s.includes('\0')) throw bad(`env.${k}`, 'contains NUL');
    out[k] = s;
  }
  return out;
}

function limits(v: unknown): Limits {
  if (v === undefined || v === null) return NO_LIMITS;
  const o = v as Record<string, unknown>;
  const num = (x: unknown, field: string, integer: boolean, max: number) => {
    const n = x ?? 0;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > max || (integer && !Number.isInteger(n))) {
      throw bad(`limits.${field}`, `must be ${integer ? 'a whole number' : 'a number'} from 0 (no limit) to ${max}`);
    }
    return n;
  };
  const memoryBytes = num(o.memoryBytes, 'memory_bytes', true, Number.MAX_SAFE_INTEGER);
  if (memoryBytes > 0 && memoryBytes < 4 * 1024 * 1024) throw bad('limits.memory_bytes', 'is below 4 MiB, too little to start a shell');
  const cpus = num(o.cpus, 'cpus', false, 1024);
  if (cpus > 0 && cpus < 0.01) throw bad('limits.cpus', 'is below 0.01 CPU');
  const pids = num(o.pids, 'pids', true, 4_194_304);
  if (pids > 0 && pids < 2) throw bad('limits.pids', 'must be at least 2 (an init and one process)');
  return { memoryBytes, cpus, pids: Math.round(pids) };
}

function securelevel(v: unknown): number {
  if (v === undefined || v === null) return -1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v > 3) throw bad('securelevel', 'must be -1 (the host\'s) to 3');
  return v;
}

/** Every field checked; missing ones take their defaults (isolation: `defaultIsolation`). */
export function normalizeConfig(input: ConfigInput | undefined, defaultIsolation: IsolationMode): ContainerConfig {
  const i = input ?? {};
  return {
    isolation: isolation(i.isolation, defaultIsolation),
    hostname: hostname(i.hostname),
    network: network(i.network),
    uidMap: idMap(i.uidMap, 'uid_map'),
    gidMap: idMap(i.gidMap, 'gid_map'),
    mounts: mounts(i.mounts),
    user: account(i.user, 'user'),
    group: account(i.group, 'group'),
    env: env(i.env),
    workdir: i.workdir ? checkAbsolutePath(i.workdir, 'workdir') : '',
    limits: limits(i.limits),
    securelevel: securelevel(i.securelevel),
  };
}

/**
 * `current` with the fields in `mask` taken from `input` (checked). A field
 * not in the mask keeps its value; one in it but absent from `input` returns
 * to its default ("limits.pids" with no pids clears that limit).
 */
export function patchConfig(current: ContainerConfig, mask: readonly string[], input: ConfigInput): ContainerConfig {
  const next = normalizeConfig({ ...input, isolation: input.isolation ?? current.isolation }, current.isolation);
  const out: Record<string, unknown> = { ...current };
  let lim: Limits = current.limits;
  for (const raw of mask) {
    const f = raw.startsWith('config.') ? raw.slice('config.'.length) : raw;
    switch (f as ConfigField) {
      case 'isolation': out.isolation = next.isolation; break;
      case 'hostname': out.hostname = next.hostname; break;
      case 'network': out.network = next.network; break;
      case 'uid_map': out.uidMap = next.uidMap; break;
      case 'gid_map': out.gidMap = next.gidMap; break;
      case 'mounts': out.mounts = next.mounts; break;
      case 'user': out.user = next.user; break;
      case 'group': out.group = next.group; break;
      case 'env': out.env = next.env; break;
      case 'workdir': out.workdir = next.workdir; break;
      case 'limits': lim = next.limits; break;
      case 'limits.memory_bytes': lim = { ...lim, memoryBytes: next.limits.memoryBytes }; break;
      case 'limits.cpus': lim = { ...lim, cpus: next.limits.cpus }; break;
      case 'limits.pids': lim = { ...lim, pids: next.limits.pids }; break;
      case 'securelevel': out.securelevel = next.securelevel; break;
      default:
        throw bad('update_mask', `names ${JSON.stringify(raw)}, which is not a field qfleet config changes (${['services', ...CONFIG_FIELDS].join(', ')})`);
    }
  }
  out.limits = lim;
  return out as unknown as ContainerConfig;
}

/** The config in a state file, or why it is unusable (undefined: a record from before isolation, which is chroot). */
export function configFromRecord(v: unknown): ContainerConfig | string {
  if (v === undefined) return LEGACY_CONFIG;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'field "config" is not an object';
  try {
    return normalizeConfig(v as ConfigInput, 'chroot');
  } catch (e) {
    return `field "config" is unusable: ${(e as Error).message.replace(/^Error; /, '')}`;
  }
}

/** Mask fields that differ between two configs and need the container stopped. */
export function stoppedOnlyChanges(a: ContainerConfig, b: ContainerConfig): string[] {
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  const changed: string[] = [];
  if (a.isolation !== b.isolation) changed.push('isolation');
  if (a.hostname !== b.hostname) changed.push('hostname');
  if (a.network !== b.network) changed.push('network');
  if (!same(a.uidMap, b.uidMap)) changed.push('uid_map');
  if (!same(a.gidMap, b.gidMap)) changed.push('gid_map');
  if (!same(a.mounts, b.mounts)) changed.push('mounts');
  if (a.securelevel !== b.securelevel) changed.push('securelevel');
  return changed;
}
