import type { Container } from '../../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult } from '../../proto/gen/qfleet/agent/v1/ContainerResult.js';
import type { InstallProgress } from '../../proto/gen/qfleet/agent/v1/InstallProgress.js';
import type { InstallMethod } from '../../proto/gen/qfleet/agent/v1/InstallMethod.js';
import type { ErrorDetail } from '../../proto/gen/qfleet/agent/v1/ErrorDetail.js';
import type { ContainerResult as EngineResult, ContainerState, ContainerView, Outcome } from '../engine/engine.js';
import type { Reason } from '../errors.js';
import type { DriverCapabilities, InstallMethodName, InstallProgressEvent } from '../drivers/host-driver.js';
import type { Capabilities } from '../../proto/gen/qfleet/agent/v1/Capabilities.js';
import type { ContainerConfig, ContainerConfig__Output } from '../../proto/gen/qfleet/agent/v1/ContainerConfig.js';
import type { Isolation } from '../../proto/gen/qfleet/agent/v1/Isolation.js';
import type { ContainerConfig as EngineConfig, IsolationMode } from '../drivers/container-config.js';
import type { ConfigInput } from '../engine/container-config-check.js';

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
    ...(v.diskUsageBytes !== undefined ? { diskUsageBytes: String(Math.max(0, Math.round(v.diskUsageBytes))) } : {}),
    path: v.path,
    ...(v.busy ? { busySince: timestamp(v.busy.since) } : {}),
    ...(v.config ? { config: configToProto(v.config) } : {}),
    initPid: v.initPid ?? 0,
    jid: v.jid ?? 0,
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
  unsupported: 'REASON_UNSUPPORTED',
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

// --- container config ---------------------------------------------------------

const ISOLATION: Record<IsolationMode, Isolation> = { chroot: 'ISOLATION_CHROOT', namespaces: 'ISOLATION_NAMESPACES', jail: 'ISOLATION_JAIL' };

export function isolationToProto(m: IsolationMode): Isolation {
  return ISOLATION[m];
}

/** A request's config as the engine checks it (ConfigInput): unset enums stay unset, so defaults apply. */
export function configFromProto(c: ContainerConfig__Output | null | undefined): ConfigInput {
  if (!c) return {};
  const isolation = (Object.keys(ISOLATION) as IsolationMode[]).find((k) => ISOLATION[k] === c.isolation);
  return {
    ...(isolation ? { isolation } : {}),
    hostname: c.hostname,
    ...(c.network === 'NETWORK_HOST' ? { network: 'host' } : c.network === 'NETWORK_NONE' ? { network: 'none' } : {}),
    uidMap: c.uidMap.map((m) => ({ inside: m.inside, outside: m.outside, count: m.count })),
    gidMap: c.gidMap.map((m) => ({ inside: m.inside, outside: m.outside, count: m.count })),
    mounts: c.mounts.map((m) => ({
      kind: m.kind === 'KIND_BIND' ? 'bind' : m.kind === 'KIND_TMPFS' ? 'tmpfs' : m.kind,
      source: m.source,
      target: m.target,
      readOnly: m.readOnly,
      sizeBytes: Number(m.sizeBytes),
    })),
    user: c.user,
    group: c.group,
    env: { ...c.env },
    workdir: c.workdir,
    limits: { memoryBytes: Number(c.limits?.memoryBytes ?? 0), cpus: c.limits?.cpus ?? 0, pids: c.limits?.pids ?? 0 },
    ...(c.securelevel !== undefined ? { securelevel: c.securelevel } : {}),
  };
}

export function configToProto(c: EngineConfig): ContainerConfig {
  return {
    isolation: ISOLATION[c.isolation],
    hostname: c.hostname,
    network: c.network === 'none' ? 'NETWORK_NONE' : 'NETWORK_HOST',
    uidMap: c.uidMap.map((m) => ({ ...m })),
    gidMap: c.gidMap.map((m) => ({ ...m })),
    mounts: c.mounts.map((m) => ({
      kind: m.kind === 'bind' ? 'KIND_BIND' : 'KIND_TMPFS', source: m.source, target: m.target, readOnly: m.readOnly, sizeBytes: String(m.sizeBytes),
    })),
    user: c.user,
    group: c.group,
    env: { ...c.env },
    workdir: c.workdir,
    limits: { memoryBytes: String(c.limits.memoryBytes), cpus: c.limits.cpus, pids: c.limits.pids },
    securelevel: c.securelevel,
  };
}

export function capabilitiesToProto(c: DriverCapabilities): Capabilities {
  return {
    installMethods: c.installMethods.map(methodToProto),
    namespaces: c.namespaces,
    sparseImages: c.sparseImages,
    ipAliases: c.ipAliases,
    console: c.console,
    isolationModes: c.isolation.map(isolationToProto),
    defaultIsolation: isolationToProto(c.defaultIsolation),
    limitMemory: c.limits.memory,
    limitCpu: c.limits.cpu,
    limitPids: c.limits.pids,
    missing: [...c.missing],
  };
}
