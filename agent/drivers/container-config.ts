/**
 * How a container runs: its isolation mode and jchroot's / qjail's options.
 * The engine checks a config's shape (agent/engine/container-config-check.ts)
 * and keeps it in the container's state file; the driver checks it against
 * the host (checkConfig) and applies it at start (up).
 */

/**
 * chroot: qchroot's model, no containment (shared process table, network and kernel privileges).
 * namespaces (Linux): jchroot's model, PID/mount/IPC/UTS (and optionally network) namespaces and a user namespace.
 * jail (FreeBSD): jail(8), as qjail does.
 */
export type IsolationMode = 'chroot' | 'namespaces' | 'jail';
export const ISOLATION_MODES: readonly IsolationMode[] = ['chroot', 'namespaces', 'jail'];

/** One line of a user-namespace id map (jchroot -M / -G): `count` ids from `inside` map to `outside` on the host. */
export interface IdMapping {
  readonly inside: number;
  readonly outside: number;
  readonly count: number;
}

/** An fstab line for the container (jchroot -f): a host directory bound in, or a tmpfs. */
export interface ExtraMount {
  readonly kind: 'bind' | 'tmpfs';
  /** Absolute host directory for a bind; empty for tmpfs. */
  readonly source: string;
  /** Absolute path inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
  /** tmpfs size in bytes; 0 means the kernel's default. */
  readonly sizeBytes: number;
}

/** Resource limits; 0 means no limit. */
export interface Limits {
  readonly memoryBytes: number;
  /** CPUs' worth of time (1.5 = one and a half CPUs). */
  readonly cpus: number;
  /** Processes (Linux: tasks) at once. */
  readonly pids: number;
}

export const NO_LIMITS: Limits = { memoryBytes: 0, cpus: 0, pids: 0 };

export interface ContainerConfig {
  readonly isolation: IsolationMode;
  /** Empty: the container's name (namespaces, jail). */
  readonly hostname: string;
  /** host: the host's network (qchroot; jail ip4=inherit); none: loopback only (jchroot -N). */
  readonly network: 'host' | 'none';
  /** namespaces: user namespace maps; empty means the driver's default, 0:100000:65536 (root inside is an unprivileged host uid). */
  readonly uidMap: readonly IdMapping[];
  readonly gidMap: readonly IdMapping[];
  /** Extra mounts made inside the container at start. */
  readonly mounts: readonly ExtraMount[];
  /** User and group the services run as; empty means root. */
  readonly user: string;
  readonly group: string;
  /** Added to the services' and exec's environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Services' working directory inside; empty means /. */
  readonly workdir: string;
  readonly limits: Limits;
  /** jail: the jail's securelevel; -1 means the host's default (jail(8) inherits it). */
  readonly securelevel: number;
}

/** What containers created before isolation existed are: qchroot's chroot, nothing else set. */
export const LEGACY_CONFIG: ContainerConfig = {
  isolation: 'chroot',
  hostname: '',
  network: 'host',
  uidMap: [],
  gidMap: [],
  mounts: [],
  user: '',
  group: '',
  env: {},
  workdir: '',
  limits: NO_LIMITS,
  securelevel: -1,
};

/** A container as a driver needs it to run one: its name and how. */
export interface ContainerRef {
  readonly name: string;
  readonly config: ContainerConfig;
}

/** What the host shows of a started container's isolation (namespaces, jail); chroot is judged by its mounts. */
export interface RuntimeView {
  /** The isolation is in place: the init holds its namespaces, the jail exists. */
  readonly up: boolean;
  /** What is wrong with it (an init gone, a jail without its mounts); empty when nothing is. */
  readonly problems: readonly string[];
  /** namespaces: the host pid of the container's init (jchroot's pidfile); jail: its jid. */
  readonly initPid?: number;
  readonly jid?: number;
}

/** Which limits a host can enforce (for its isolated mode; FreeBSD chroot enforces none). */
export interface LimitCapabilities {
  readonly memory: boolean;
  readonly cpu: boolean;
  readonly pids: boolean;
}


/** The container's hostname as started: the configured one, else its name. */
export function hostnameOf(ref: ContainerRef): string {
  return ref.config.hostname || ref.name;
}
