import type { ContainerRef, Limits } from '../container-config.js';
import { hostnameOf } from '../container-config.js';
import { assertContainerName } from './validate.js';

// jail(8), jls(8), jexec(8), rctl(8): names, command lines and the parser of
// `jls --libxo json -v`. Everything here is pure, so it is tested against real
// captures (test/fixtures/freebsd/jls-libxo-json.txt) and exact argv.

/**
 * qfleet's jails are named `qfleet_<container>`. qjail names a jail after its
 * container; the prefix keeps a qfleet jail from ever taking (or, at stop,
 * removing with `jail -R`) an operator's own jail of the same name, and makes
 * `jls` show at a glance which jails this agent runs. Container names are
 * letters, digits, '-' and '_', so the result has no '.' (jail(8): a name "may
 * not contain a '.'", dots separate hierarchical jails) and is never all
 * digits (which jls/jexec/jail -r would read as a jid).
 */
export const JAIL_PREFIX = 'qfleet_';

export function jailName(container: string): string {
  return `${JAIL_PREFIX}${assertContainerName(container)}`;
}

/** One jail as `jls --libxo json -v` describes it. */
export interface JailInfo {
  readonly jid: number;
  readonly name: string;
  readonly path: string;
  readonly hostname: string;
  /** ACTIVE, or DYING (jls prints dying jails with -d only). */
  readonly state: string;
}

/**
 * `jls --libxo json -v` (usr.sbin/jls/jls.c, PRINT_VERBOSE): one object per
 * running jail in {"jail-information": {"jail": [...]}} with jid (number),
 * hostname, path, name, state, cpusetid, ipv4_addrs, ipv6_addrs. Fields another
 * jls prints as strings (`jls --libxo json jid name`, the parameter form) are
 * read too. Undefined when the text is not that document (the caller says so).
 */
export function parseJls(json: string): JailInfo[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return undefined;
  }
  const list = (doc as { 'jail-information'?: { jail?: unknown } } | null)?.['jail-information']?.jail;
  if (!Array.isArray(list)) return undefined;
  const out: JailInfo[] = [];
  for (const row of list as unknown[]) {
    const r = (row ?? {}) as Record<string, unknown>;
    const jid = typeof r.jid === 'number' ? r.jid : typeof r.jid === 'string' && /^\d+$/.test(r.jid) ? Number(r.jid) : NaN;
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    const name = text(r.name);
    if (!Number.isSafeInteger(jid) || jid < 1 || name === '') continue; // not a jail we could address
    out.push({ jid, name, path: text(r.path), hostname: text(r.hostname ?? r['host.hostname']), state: text(r.state) || 'ACTIVE' });
  }
  return out;
}

/** The jail(8) parameters a container's jail is created with (qjail's, plus what the config asks). */
export function jailCreateArgv(ref: ContainerRef, root: string, devfsRuleset: number): string[] {
  const c = ref.config;
  // network none: the jail may use no address at all (jail(8) ip4/ip6 "disable"); host: the host's (qjail's default, "inherit").
  const net = c.network === 'none' ? 'disable' : 'inherit';
  return [
    'jail', '-c',
    `name=${jailName(ref.name)}`,
    `path=${root}`,
    `host.hostname=${hostnameOf(ref)}`,
    'persist',
    `ip4=${net}`,
    `ip6=${net}`,
    // jail(8) mounts devfs on path/dev with this ruleset itself (and checks the mount point).
    'mount.devfs',
    `devfs_ruleset=${devfsRuleset}`,
    // Processes inside see only the mount their root is on, and may create no jails.
    'enforce_statfs=2',
    'children.max=0',
    ...(c.securelevel >= 0 ? [`securelevel=${c.securelevel}`] : []),
  ];
}

/**
 * rctl(8) rules for the limits asked, `subject:subject-id:resource:action=amount`:
 * memoryuse (resident set size) in bytes, pcpu in percent of one core (1.5 CPUs
 * = 150), maxproc in processes; all `deny`. Empty when no limit is asked.
 */
export function rctlRules(container: string, limits: Limits): string[] {
  const subject = `jail:${jailName(container)}`;
  return [
    ...(limits.memoryBytes > 0 ? [`${subject}:memoryuse:deny=${Math.floor(limits.memoryBytes)}`] : []),
    ...(limits.cpus > 0 ? [`${subject}:pcpu:deny=${Math.max(1, Math.round(limits.cpus * 100))}`] : []),
    ...(limits.pids > 0 ? [`${subject}:maxproc:deny=${Math.floor(limits.pids)}`] : []),
  ];
}

/** The rctl(8) filter that matches every rule of the container's jail. */
export function rctlFilter(container: string): string {
  return `jail:${jailName(container)}`;
}

/**
 * libjail's jail_getid() message for a name no jail has ("jail \"NAME\" not
 * found"), which jls -j, jexec and jail -r print after their own name; the
 * FreeBSD test suite (usr.sbin/jail/tests) matches "not found" on it.
 */
export function saysJailNotFound(stderr: string): boolean {
  return /\bnot found\b/.test(stderr);
}
