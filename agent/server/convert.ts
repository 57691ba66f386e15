import type { Container } from '../../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult } from '../../proto/gen/qfleet/agent/v1/ContainerResult.js';
import type { InstallProgress } from '../../proto/gen/qfleet/agent/v1/InstallProgress.js';
import type { InstallMethod } from '../../proto/gen/qfleet/agent/v1/InstallMethod.js';
import type { ErrorDetail } from '../../proto/gen/qfleet/agent/v1/ErrorDetail.js';
import type { ContainerResult as EngineResult, ContainerState, ContainerView, Outcome } from '../engine/engine.js';
import type { Reason } from '../errors.js';
import type { InstallMethodName, InstallProgressEvent } from '../drivers/host-driver.js';

// Engine values ↔ proto messages. Pure functions, so the wire format is tested without a server.

const STATE: Record<ContainerState, NonNullable<Container['state']>> = {
  stopped: 'STATE_STOPPED',
  running: 'STATE_RUNNING',
  broken: 'STATE_BROKEN',
  creating: 'STATE_CREATING',
  starting: 'STATE_STARTING',
  stopping: 'STATE_STOPPING',
  deleting: 'STATE_DELETING',
  recovering: 'STATE_RECOVERING',
};

function timestamp(d: Date): { seconds: string; nanos: number } {
  const ms = d.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (((ms % 1000) + 1000) % 1000) * 1_000_000 };
}

export function containerToProto(v: ContainerView): Container {
  return {
    name: v.name,
    state: STATE[v.state],
    reason: v.reason,
    services: v.services.map((s) => ({ name: s.name, state: s.running ? 'STATE_RUNNING' : 'STATE_STOPPED' })),
    mounts: v.mounts.map((m) => ({ source: m.source, target: m.target, fstype: m.fstype, options: [...m.options] })),
    baseRelease: v.baseRelease,
    ...(v.createdAt ? { createTime: timestamp(v.createdAt) } : {}),
    diskUsageBytes: String(Math.max(0, Math.round(v.diskUsageBytes))),
    path: v.path,
    ...(v.busy ? { busySince: timestamp(v.busy.since) } : {}),
  };
}

const OUTCOME: Record<Outcome, NonNullable<ContainerResult['outcome']>> = {
  started: 'OUTCOME_STARTED',
  bypassed: 'OUTCOME_BYPASSED',
  'already-started': 'OUTCOME_ALREADY_STARTED',
  stopped: 'OUTCOME_STOPPED',
  'already-stopped': 'OUTCOME_ALREADY_STOPPED',
  deleted: 'OUTCOME_DELETED',
  failed: 'OUTCOME_FAILED',
  'would-change': 'OUTCOME_WOULD_CHANGE',
};

export function resultToProto(r: EngineResult): ContainerResult {
  return {
    name: r.name,
    outcome: OUTCOME[r.outcome],
    message: r.message,
    state: r.state ? STATE[r.state] : 'STATE_UNSPECIFIED',
    ...(r.error ? { error: detailToProto(r.error.reason, r.error.fields) } : {}),
  };
}

/** The reasons' names in agent.proto's ErrorDetail.Reason (exhaustive: a new reason must be named there). */
const REASONS: Record<Reason, NonNullable<ErrorDetail['reason']>> = {
  'invalid-argument': 'REASON_INVALID_ARGUMENT',
  'name-invalid': 'REASON_NAME_INVALID',
  'not-found': 'REASON_NOT_FOUND',
  'already-exists': 'REASON_ALREADY_EXISTS',
  busy: 'REASON_BUSY',
  running: 'REASON_RUNNING',
  stopped: 'REASON_STOPPED',
  broken: 'REASON_BROKEN',
  'no-base': 'REASON_NO_BASE',
  'release-mismatch': 'REASON_RELEASE_MISMATCH',
  'no-service-script': 'REASON_NO_SERVICE_SCRIPT',
  precondition: 'REASON_PRECONDITION',
  'shutting-down': 'REASON_SHUTTING_DOWN',
  unauthenticated: 'REASON_UNAUTHENTICATED',
  'permission-denied': 'REASON_PERMISSION_DENIED',
  'command-failed': 'REASON_COMMAND_FAILED',
  internal: 'REASON_INTERNAL',
};

export function detailToProto(reason: Reason, fields: Readonly<Record<string, string>>): ErrorDetail {
  return { reason: REASONS[reason], fields: { ...fields } };
}

const PHASE = {
  fetch: 'PHASE_FETCH',
  verify: 'PHASE_VERIFY',
  extract: 'PHASE_EXTRACT',
  split: 'PHASE_SPLIT',
  swap: 'PHASE_SWAP',
} as const;

export function progressToProto(e: InstallProgressEvent): InstallProgress {
  return { phase: PHASE[e.phase], message: e.message, done: String(e.done ?? 0), total: String(e.total ?? 0) };
}

const METHODS: Record<string, InstallMethodName | undefined> = {
  INSTALL_METHOD_DIRECTORY: 'directory',
  INSTALL_METHOD_TARBALL: 'tarball',
  INSTALL_METHOD_DOWNLOAD: 'download',
  INSTALL_METHOD_DEBOOTSTRAP: 'debootstrap',
};

export function methodFromProto(m: InstallMethod | undefined): InstallMethodName | undefined {
  return typeof m === 'string' ? METHODS[m] : undefined;
}

export function methodToProto(m: InstallMethodName): InstallMethod {
  return (Object.keys(METHODS).find((k) => METHODS[k] === m) ?? 'INSTALL_METHOD_UNSPECIFIED') as InstallMethod;
}
