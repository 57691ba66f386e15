import type { Container__Output } from '../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult__Output } from '../proto/gen/qfleet/agent/v1/ContainerResult.js';
import type { InstallResult__Output } from '../proto/gen/qfleet/agent/v1/InstallResult.js';
import type { VersionResponse__Output } from '../proto/gen/qfleet/agent/v1/VersionResponse.js';
import type { ContainerConfig__Output } from '../proto/gen/qfleet/agent/v1/ContainerConfig.js';
import type { Capabilities__Output } from '../proto/gen/qfleet/agent/v1/Capabilities.js';

// qfleet's own JSON (docs/json.md), not raw protobuf: words for states and
// outcomes, RFC 3339 times, numbers as JSON numbers, every documented key
// always present (null when there is nothing to say). Pure functions: the
// shape is tested without an agent, and it changes only with the docs.

export type ContainerStateWord = 'stopped' | 'running' | 'broken' | 'creating' | 'starting' | 'stopping' | 'deleting' | 'recovering' | 'unknown';

export interface ContainerJson {
  name: string;
  state: ContainerStateWord;
  /** Why broken, or what holds it in a transient state; null when stopped or running. */
  reason: string | null;
  services: Array<{ name: string; running: boolean }>;
  mounts: Array<{ source: string; target: string; fstype: string; options: string[] }>;
  baseRelease: string | null;
  /** Why baseRelease is behind the host's running kernel (FreeBSD -pN); null when it is not. */
  baseBehind: string | null;
  created: string | null;
  /** While an operation holds it (transient states): since when. */
  busySince: string | null;
  /** null while the agent has not measured it yet (List does not wait for a first walk of the tree). */
  diskUsageBytes: number | null;
  path: string;
  /** How it is contained (config.isolation, here for tables and jq); null when the agent does not say (an unusable state file, an agent before API 3: chroot). */
  isolation: IsolationWord | null;
  /** How it runs; null when the agent does not say. */
  config: ConfigJson | null;
  /** namespaces: the host pid of its init while it runs; null otherwise. */
  initPid: number | null;
  /** jail: its jail id while it runs; null otherwise. */
  jid: number | null;
}

export type IsolationWord = 'chroot' | 'namespaces' | 'jail' | 'unknown';

/** A container's config (agent.proto ContainerConfig): words for enums, numbers for sizes, null for "the default". */
export interface ConfigJson {
  isolation: IsolationWord;
  /** null: the container's name. */
  hostname: string | null;
  network: 'host' | 'none' | 'unknown';
  /** Empty: the agent's default map (0:100000:65536 on Linux). */
  uidMap: Array<{ inside: number; outside: number; count: number }>;
  gidMap: Array<{ inside: number; outside: number; count: number }>;
  /** The fstab, in mount order. sizeBytes: a tmpfs's size, 0 for the kernel's default (and for a bind). */
  mounts: Array<{ kind: 'bind' | 'tmpfs' | 'unknown'; source: string | null; target: string; readOnly: boolean; sizeBytes: number }>;
  /** null: root. */
  user: string | null;
  /** null: the user's. */
  group: string | null;
  env: Record<string, string>;
  /** null: /. */
  workdir: string | null;
  /** 0: no limit. */
  limits: { memoryBytes: number; cpus: number; pids: number };
  /** jail: null is the host's (-1). */
  securelevel: number | null;
}

export type OutcomeWord = 'started' | 'bypassed' | 'already-started' | 'stopped' | 'already-stopped' | 'deleted' | 'failed' | 'would-change' | 'unknown';

export interface ResultJson {
  name: string;
  outcome: OutcomeWord;
  /** True when the host changed; false for a no-op (bypassed, already started/stopped) or a failure. */
  changed: boolean;
  /** qchroot's line, e.g. "Start chroot completed." */
  message: string;
}

const STATES: Record<string, ContainerStateWord> = {
  STATE_STOPPED: 'stopped',
  STATE_RUNNING: 'running',
  STATE_BROKEN: 'broken',
  STATE_CREATING: 'creating',
  STATE_STARTING: 'starting',
  STATE_STOPPING: 'stopping',
  STATE_DELETING: 'deleting',
  STATE_RECOVERING: 'recovering',
};

const OUTCOMES: Record<string, OutcomeWord> = {
  OUTCOME_STARTED: 'started',
  OUTCOME_BYPASSED: 'bypassed',
  OUTCOME_ALREADY_STARTED: 'already-started',
  OUTCOME_STOPPED: 'stopped',
  OUTCOME_ALREADY_STOPPED: 'already-stopped',
  OUTCOME_DELETED: 'deleted',
  OUTCOME_FAILED: 'failed',
  // Only in answers to validate_only (qfleet --dry-run), which change nothing.
  OUTCOME_WOULD_CHANGE: 'would-change',
};

const CHANGED: ReadonlySet<OutcomeWord> = new Set(['started', 'stopped', 'deleted']);

/** A protobuf Timestamp (seconds as a string, nanos) as RFC 3339 in UTC, or null when unset. */
export function rfc3339(ts: { seconds?: string | number | null; nanos?: number | null } | null | undefined): string | null {
  if (!ts) return null;
  const ms = Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1_000_000);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null;
}

function num(v: string | number | null | undefined): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
}

const ISOLATION_WORDS: Record<string, IsolationWord> = { ISOLATION_CHROOT: 'chroot', ISOLATION_NAMESPACES: 'namespaces', ISOLATION_JAIL: 'jail' };

/** ISOLATION_NAMESPACES → namespaces; unspecified or newer than this qfleet → unknown. */
export function isolationWord(i: string | number): IsolationWord {
  return ISOLATION_WORDS[String(i)] ?? 'unknown';
}

export function configJson(c: ContainerConfig__Output): ConfigJson {
  const map = (l: { inside: number; outside: number; count: number }) => ({ inside: l.inside, outside: l.outside, count: l.count });
  return {
    isolation: isolationWord(c.isolation),
    hostname: c.hostname || null,
    network: c.network === 'NETWORK_NONE' ? 'none' : c.network === 'NETWORK_HOST' || c.network === 'NETWORK_UNSPECIFIED' ? 'host' : 'unknown',
    uidMap: c.uidMap.map(map),
    gidMap: c.gidMap.map(map),
    mounts: c.mounts.map((m) => ({
      kind: m.kind === 'KIND_BIND' ? 'bind' : m.kind === 'KIND_TMPFS' ? 'tmpfs' : 'unknown',
      source: m.source || null,
      target: m.target,
      readOnly: m.readOnly,
      sizeBytes: num(m.sizeBytes),
    })),
    user: c.user || null,
    group: c.group || null,
    env: { ...c.env },
    workdir: c.workdir || null,
    limits: { memoryBytes: num(c.limits?.memoryBytes), cpus: num(c.limits?.cpus), pids: num(c.limits?.pids) },
    securelevel: c.securelevel === undefined || c.securelevel < 0 ? null : c.securelevel,
  };
}

/** A container's disk use in bytes; null while the agent has not measured it (the table and --json say the same). */
export function diskUsageOf(c: Pick<Container__Output, 'diskUsageBytes'>): number | null {
  return c.diskUsageBytes === undefined || c.diskUsageBytes === null ? null : num(c.diskUsageBytes);
}

/** The word for a container's state (the table and --json say the same). */
export function stateWord(s: string): ContainerStateWord {
  return STATES[s] ?? 'unknown';
}

export function containerJson(c: Container__Output): ContainerJson {
  const state = stateWord(c.state);
  return {
    name: c.name,
    state,
    reason: state === 'stopped' || state === 'running' || !c.reason ? null : c.reason,
    services: c.services.map((s) => ({ name: s.name, running: s.state === 'STATE_RUNNING' })),
    mounts: c.mounts.map((m) => ({ source: m.source, target: m.target, fstype: m.fstype, options: [...m.options] })),
    baseRelease: c.baseRelease || null,
    baseBehind: c.baseBehind || null,
    created: rfc3339(c.createTime),
    busySince: rfc3339(c.busySince),
    diskUsageBytes: diskUsageOf(c),
    path: c.path,
    isolation: c.config ? isolationWord(c.config.isolation) : null,
    config: c.config ? configJson(c.config) : null,
    initPid: c.initPid ? c.initPid : null,
    jid: c.jid ? c.jid : null,
  };
}

export function resultJson(r: ContainerResult__Output): ResultJson {
  const outcome = OUTCOMES[r.outcome] ?? 'unknown';
  return { name: r.name, outcome, changed: CHANGED.has(outcome), message: r.message };
}

export interface VersionJson {
  agentVersion: string;
  apiRevision: number;
  os: string;
  release: string;
  machine: string;
  driver: string;
  hostname: string;
  baseRelease: string | null;
  /** Why the installed base is behind the host's running kernel (FreeBSD -pN); null when it is not. */
  baseBehind: string | null;
  rootDir: string;
  capabilities: CapabilitiesJson;
}

export interface CapabilitiesJson {
  installMethods: string[];
  namespaces: boolean;
  sparseImages: boolean;
  ipAliases: boolean;
  console: boolean;
  /** The isolation modes the host can run now; [] from an agent before API 3 (which runs chroot only). */
  isolationModes: IsolationWord[];
  /** What create uses when asked for no mode; null from an agent before API 3. */
  defaultIsolation: IsolationWord | null;
  /** The limits it can enforce. */
  limits: { memory: boolean; cpu: boolean; pids: boolean };
  /** Why a mode or limit its OS could offer is missing here ("namespaces: tini-static not found"). */
  missing: string[];
}

export function capabilitiesJson(c: Capabilities__Output | null | undefined): CapabilitiesJson {
  const dflt = c?.defaultIsolation !== undefined ? isolationWord(c.defaultIsolation) : 'unknown';
  return {
    installMethods: (c?.installMethods ?? []).map((m) => String(m).replace(/^INSTALL_METHOD_/, '').toLowerCase()),
    namespaces: Boolean(c?.namespaces),
    sparseImages: Boolean(c?.sparseImages),
    ipAliases: Boolean(c?.ipAliases),
    console: Boolean(c?.console),
    isolationModes: (c?.isolationModes ?? []).map(isolationWord),
    defaultIsolation: dflt === 'unknown' ? null : dflt,
    limits: { memory: Boolean(c?.limitMemory), cpu: Boolean(c?.limitCpu), pids: Boolean(c?.limitPids) },
    missing: [...(c?.missing ?? [])],
  };
}

export function versionJson(v: VersionResponse__Output): VersionJson {
  return {
    agentVersion: v.agentVersion,
    apiRevision: v.apiRevision,
    os: v.os,
    release: v.release,
    machine: v.machine,
    driver: v.driver,
    hostname: v.hostname,
    baseRelease: v.baseRelease || null,
    baseBehind: v.baseBehind || null,
    rootDir: v.rootDir,
    capabilities: capabilitiesJson(v.capabilities),
  };
}

export function installJson(r: InstallResult__Output): { baseRelease: string; sharedfsPath: string; templatePath: string; notes: string[] } {
  return { baseRelease: r.baseRelease, sharedfsPath: r.sharedfsPath, templatePath: r.templatePath, notes: [...r.notes] };
}
