import type { Container__Output } from '../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult__Output } from '../proto/gen/qfleet/agent/v1/ContainerResult.js';
import type { InstallResult__Output } from '../proto/gen/qfleet/agent/v1/InstallResult.js';
import type { VersionResponse__Output } from '../proto/gen/qfleet/agent/v1/VersionResponse.js';

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
  diskUsageBytes: number;
  path: string;
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
    diskUsageBytes: num(c.diskUsageBytes),
    path: c.path,
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
  capabilities: { installMethods: string[]; namespaces: boolean; sparseImages: boolean; ipAliases: boolean; console: boolean };
}

export function versionJson(v: VersionResponse__Output): VersionJson {
  const c = v.capabilities;
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
    capabilities: {
      installMethods: (c?.installMethods ?? []).map((m) => String(m).replace(/^INSTALL_METHOD_/, '').toLowerCase()),
      namespaces: Boolean(c?.namespaces),
      sparseImages: Boolean(c?.sparseImages),
      ipAliases: Boolean(c?.ipAliases),
      console: Boolean(c?.console),
    },
  };
}

export function installJson(r: InstallResult__Output): { baseRelease: string; sharedfsPath: string; templatePath: string; notes: string[] } {
  return { baseRelease: r.baseRelease, sharedfsPath: r.sharedfsPath, templatePath: r.templatePath, notes: [...r.notes] };
}
