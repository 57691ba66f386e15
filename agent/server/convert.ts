import { _qfleet_agent_v1_Container_State as ContainerStateNames, type Container } from '../../proto/gen/qfleet/agent/v1/Container.js';
import { _qfleet_agent_v1_Service_State as ServiceStateNames } from '../../proto/gen/qfleet/agent/v1/Service.js';
import { _qfleet_agent_v1_ExtraMount_Kind as KindNames, type ExtraMount } from '../../proto/gen/qfleet/agent/v1/ExtraMount.js';
import { Isolation as IsolationNames } from '../../proto/gen/qfleet/agent/v1/Isolation.js';
import { Network as NetworkNames } from '../../proto/gen/qfleet/agent/v1/Network.js';
import type { IdMapping } from '../../proto/gen/qfleet/agent/v1/IdMapping.js';
import type { Limits } from '../../proto/gen/qfleet/agent/v1/Limits.js';
import type { ListResponse } from '../../proto/gen/qfleet/agent/v1/ListResponse.js';
import type { Timestamp } from '../../proto/gen/google/protobuf/Timestamp.js';
import { carrierType, encodedThrough, enumNumbers, wireReady } from '../../proto/wire-ready.js';
import { agentService } from '../../proto/agent-service.js';
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

const STATE: Record<ContainerState, keyof typeof ContainerStateNames> = {
  stopped: 'STATE_STOPPED',
  running: 'STATE_RUNNING',
  broken: 'STATE_BROKEN',
  creating: 'STATE_CREATING',
  starting: 'STATE_STARTING',
  stopping: 'STATE_STOPPING',
  deleting: 'STATE_DELETING',
  recovering: 'STATE_RECOVERING',
};

// A container goes out wire-ready (proto/wire-ready.ts): List sends a thousand of them.
const STATE_NUMBER = enumNumbers<typeof ContainerStateNames, ContainerStateNames>('qfleet.agent.v1.Container.State', ContainerStateNames);
const SERVICE_STATE = enumNumbers<typeof ServiceStateNames, ServiceStateNames>('qfleet.agent.v1.Service.State', ServiceStateNames);
const ISOLATION_NUMBER = enumNumbers<typeof IsolationNames, IsolationNames>('qfleet.agent.v1.Isolation', IsolationNames);
const NETWORK_NUMBER = enumNumbers<typeof NetworkNames, NetworkNames>('qfleet.agent.v1.Network', NetworkNames);
const KIND_NUMBER = enumNumbers<typeof KindNames, KindNames>('qfleet.agent.v1.ExtraMount.Kind', KindNames);

/** A google.protobuf.Timestamp, wire-ready (nanos left out when 0). */
function timestamp(d: Date): Timestamp {
  const ms = d.getTime();
  const nanos = (((ms % 1000) + 1000) % 1000) * 1_000_000;
  return nanos ? { seconds: Math.floor(ms / 1000), nanos } : { seconds: Math.floor(ms / 1000) };
}

/**
 * A container as the API shows it, wire-ready: numeric enums and only the
 * fields that differ from proto3's defaults (a client reads both alike).
 * Message fields (create time, config and its limits) and `optional` ones
 * (disk use) keep their presence.
 */
export function containerToProto(v: ContainerView): Container {
  const c: Container = { name: v.name, state: STATE_NUMBER[STATE[v.state]] };
  if (v.reason) c.reason = v.reason;
  if (v.services.length) c.services = v.services.map((s) => ({ name: s.name, state: s.running ? SERVICE_STATE.STATE_RUNNING : SERVICE_STATE.STATE_STOPPED }));
  if (v.mounts.length) c.mounts = v.mounts.map((m) => ({ source: m.source, target: m.target, fstype: m.fstype, options: [...m.options] }));
  if (v.baseRelease) c.baseRelease = v.baseRelease;
  if (v.createdAt) c.createTime = timestamp(v.createdAt);
  if (v.diskUsageBytes !== undefined) c.diskUsageBytes = Math.max(0, Math.round(v.diskUsageBytes));
  if (v.path) c.path = v.path;
  if (v.busy) c.busySince = timestamp(v.busy.since);
  if (v.config) c.config = configToProto(v.config);
  if (v.initPid) c.initPid = v.initPid;
  if (v.jid) c.jid = v.jid;
  return c;
}

/** The answer of Get, Create and Configure (one container), wire-ready. */
export function oneContainerToProto(v: ContainerView): { container: Container } {
  return wireReady({ container: containerToProto(v) });
}

const CONTAINER = agentService().root.lookupType('qfleet.agent.v1.Container');
const LIST_CARRIER = carrierType(agentService().root.lookupType('qfleet.agent.v1.ListResponse'));
/**
 * Each view's encoding, with the base-behind mark it was made with:
 * Observation gives a quiet container the same view while nothing about it changed.
 */
const encodedViews = new WeakMap<ContainerView, { readonly behind: string; readonly bytes: Uint8Array }>();

/**
 * A List answer, each container carried as its encoding (proto/wire-ready.ts:
 * the same bytes on the wire), kept per view; `baseBehind`: why a base
 * release is behind the host's kernel, for those that are.
 */
export function listToProto(views: readonly ContainerView[], baseBehind: ReadonlyMap<string, string>): ListResponse {
  const containers = views.map((v) => {
    const behind = baseBehind.get(v.baseRelease) ?? '';
    const kept = encodedViews.get(v);
    if (kept && kept.behind === behind) return kept.bytes;
    const c = containerToProto(v);
    if (behind) c.baseBehind = behind;
    const bytes = CONTAINER.encode(c).finish();
    encodedViews.set(v, { behind, bytes });
    return bytes;
  });
  // Typed as what a client reads: the carrier writes each encoding as the message it is.
  return encodedThrough({ containers }, LIST_CARRIER) as unknown as ListResponse;
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

const ISOLATION: Record<IsolationMode, keyof typeof IsolationNames> = { chroot: 'ISOLATION_CHROOT', namespaces: 'ISOLATION_NAMESPACES', jail: 'ISOLATION_JAIL' };

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

/** A container's config, wire-ready like containerToProto (its limits always present, as the engine always has them). */
export function configToProto(c: EngineConfig): ContainerConfig {
  const out: ContainerConfig = { isolation: ISOLATION_NUMBER[ISOLATION[c.isolation]], network: NETWORK_NUMBER[c.network === 'none' ? 'NETWORK_NONE' : 'NETWORK_HOST'] };
  if (c.hostname) out.hostname = c.hostname;
  if (c.uidMap.length) out.uidMap = c.uidMap.map(idMapping);
  if (c.gidMap.length) out.gidMap = c.gidMap.map(idMapping);
  if (c.mounts.length) {
    out.mounts = c.mounts.map((m) => {
      const x: ExtraMount = { kind: KIND_NUMBER[m.kind === 'bind' ? 'KIND_BIND' : 'KIND_TMPFS'], target: m.target };
      if (m.source) x.source = m.source;
      if (m.readOnly) x.readOnly = true;
      if (m.sizeBytes) x.sizeBytes = m.sizeBytes;
      return x;
    });
  }
  if (c.user) out.user = c.user;
  if (c.group) out.group = c.group;
  if (Object.keys(c.env).length) out.env = { ...c.env };
  if (c.workdir) out.workdir = c.workdir;
  const limits: Limits = {};
  if (c.limits.memoryBytes) limits.memoryBytes = c.limits.memoryBytes;
  if (c.limits.cpus) limits.cpus = c.limits.cpus;
  if (c.limits.pids) limits.pids = c.limits.pids;
  out.limits = limits;
  out.securelevel = c.securelevel;
  return out;
}

function idMapping(m: { inside: number; outside: number; count: number }): IdMapping {
  const x: IdMapping = {};
  if (m.inside) x.inside = m.inside;
  if (m.outside) x.outside = m.outside;
  if (m.count) x.count = m.count;
  return x;
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
