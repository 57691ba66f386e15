import Table from 'cli-table3';
import type { Container__Output } from '../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult__Output } from '../proto/gen/qfleet/agent/v1/ContainerResult.js';
import { configJson, diskUsageOf, isolationWord, stateWord } from './json-shape.js';
import { mapWord, mountWord, sizeWord } from './container-options.js';
import { byCodePoint } from './fleet/selection.js';

/** A borderless, left-aligned table like ps(1) or qjail list. */
export function table(head: string[], rows: string[][]): string {
  const t = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
  t.push(...rows);
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

export { stateWord };

export function humanBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v}B` : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

/** A container's disk use, or `unmeasured` while the agent has not measured it yet. */
function disk(c: Container__Output, unmeasured = '-'): string {
  const bytes = diskUsageOf(c);
  return bytes === null ? unmeasured : humanBytes(bytes);
}

function created(c: Container__Output): string {
  const secs = Number(c.createTime?.seconds ?? 0);
  return secs ? new Date(secs * 1000).toISOString().slice(0, 16).replace('T', ' ') : '-';
}

/** The base release, marked when it is behind the host's kernel (a missing -pN). */
function release(c: Container__Output): string {
  return c.baseRelease ? `${c.baseRelease}${c.baseBehind ? ' (behind kernel)' : ''}` : '-';
}

function services(c: Container__Output): string {
  if (!c.services.length) return '-';
  return c.services.map((s) => (s.state === 'STATE_RUNNING' ? s.name : c.state === 'STATE_STOPPED' ? s.name : `${s.name}(down)`)).join(',');
}

/** One row of the container table: a container, and the host it is on when an inventory is in use. */
export interface ContainerRow {
  readonly host?: string;
  readonly container: Container__Output;
}

/**
 * qfleet list: one row per container, broken reasons underneath. What differs
 * with hosts, on purpose: a HOST column and host-prefixed notes; and the rows
 * are sorted by host then name, since hosts answer in any order (one agent's
 * answer is already in name order, and the local form keeps it as it came).
 */
export function renderContainers(rows: readonly ContainerRow[]): string {
  if (rows.length === 0) return 'No chroot containers.';
  const fleet = rows.some((r) => r.host !== undefined);
  const shown = fleet ? [...rows].sort((a, b) => byCodePoint(a.host ?? '', b.host ?? '') || byCodePoint(a.container.name, b.container.name)) : rows;
  const head = [...(fleet ? ['HOST'] : []), 'NAME', 'STATE', 'ISOLATION', 'SERVICES', 'RELEASE', 'CREATED', 'DISK', 'PATH'];
  const body = shown.map(({ host, container: c }) => [
    ...(fleet ? [host ?? '-'] : []),
    c.name, stateWord(c.state), c.config ? isolationWord(c.config.isolation) : '-', services(c), release(c), created(c), disk(c), c.path,
  ]);
  const notes = shown
    .filter((r) => r.container.state === 'STATE_BROKEN')
    .map((r) => `${fleet ? `${r.host ?? '-'}: ` : ''}${r.container.name}: broken: ${r.container.reason}`);
  return [table(head, body), ...notes].join('\n');
}

/** An env value as typed on a command line: bare when it is plain, else quoted (a value may hold spaces or newlines). */
function envValue(v: string): string {
  return /^[A-Za-z0-9_.,:/@%+=-]*$/.test(v) ? v : JSON.stringify(v);
}

/**
 * qfleet get: one container, every field of its config spelled out with what
 * an empty one means (hostname: the name; user: root; ...), and its init's
 * pid (namespaces) or its jid (jail) while it runs.
 */
export function renderContainer(c: Container__Output): string {
  const lines: Array<[string, string]> = [
    ['name', c.name],
    ['state', `${stateWord(c.state)}${c.reason ? ` (${c.reason})` : ''}`],
  ];
  const cfg = c.config ? configJson(c.config) : undefined;
  if (!cfg) lines.push(['isolation', 'unknown (the agent did not say)']);
  else {
    const lim = cfg.limits;
    const limits = [
      lim.memoryBytes ? `memory ${sizeWord(lim.memoryBytes)}` : '',
      lim.cpus ? `cpus ${lim.cpus}` : '',
      lim.pids ? `pids ${lim.pids}` : '',
    ].filter(Boolean);
    lines.push(
      ['isolation', cfg.isolation],
      ...(c.initPid ? [['init pid', String(c.initPid)] as [string, string]] : []),
      ...(c.jid ? [['jid', String(c.jid)] as [string, string]] : []),
      ['hostname', cfg.hostname ?? `${c.name} (its name)`],
      ['network', cfg.network],
      ['uid map', cfg.uidMap.length ? cfg.uidMap.map(mapWord).join(' ') : 'default (0:100000:65536)'],
      ['gid map', cfg.gidMap.length ? cfg.gidMap.map(mapWord).join(' ') : 'default (0:100000:65536)'],
      ['mounts', c.config!.mounts.length ? c.config!.mounts.map(mountWord).join(' ') : 'none'],
      ['user', cfg.user ?? 'root'],
      ['group', cfg.group ?? "the user's"],
      ['env', Object.keys(cfg.env).length ? Object.entries(cfg.env).map(([k, v]) => `${k}=${envValue(v)}`).join(' ') : 'none'],
      ['workdir', cfg.workdir ?? '/'],
      ['limits', limits.length ? limits.join(', ') : 'none'],
      ...(cfg.isolation === 'jail' || cfg.securelevel !== null ? [['securelevel', cfg.securelevel === null ? "the host's" : String(cfg.securelevel)] as [string, string]] : []),
    );
  }
  lines.push(
    ['services', services(c)],
    ['release', release(c)],
    ['created', created(c)],
    ['disk', disk(c, 'not measured yet')],
    ['path', c.path],
  );
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join('\n');
}

/** One line per container, as qchroot prints them. */
export function renderResults(results: readonly ContainerResult__Output[]): string {
  return results.map((r) => `${r.name}: ${r.message}`).join('\n');
}

/** One row of a --dry-run plan: a container a command would touch on a host, or why it could not. */
export interface PlanRow {
  readonly host: string;
  /** The container, or '-' for a host-wide action (install) or a host that did not answer. */
  readonly container: string;
  /** Its state as the agent found it when it checked ('-' when unknown, or when it does not exist). */
  readonly state: string;
  readonly action: string;
  /** Why this step would fail (missing, exists, running, host unreachable); empty when it would go ahead. */
  readonly problem: string;
  /** Why, as the agent's ErrorDetail says it (not-found, running, busy, ...), when the agent said. */
  readonly reason?: string;
}

export function renderPlan(rows: readonly PlanRow[], verb: string): string {
  const goes = rows.filter((r) => !r.problem);
  const touched = goes.filter((r) => r.container !== '-' && !r.action.startsWith('none'));
  const hosts = new Set(goes.map((r) => r.host));
  const allHosts = new Set(rows.map((r) => r.host)).size;
  const failing = rows.length - goes.length;
  const lines = rows.length
    ? [table(['HOST', 'CONTAINER', 'STATE', 'ACTION', 'PROBLEM'], rows.map((r) => [r.host, r.container, r.state, r.action, r.problem || '-']))]
    : [];
  const n = touched.length;
  const what = rows.every((r) => r.container === '-')
    ? `would run on ${hosts.size} of ${allHosts} host${allHosts === 1 ? '' : 's'}`
    : `would touch ${n} container${n === 1 ? '' : 's'} on ${new Set(touched.map((r) => r.host)).size} of ${allHosts} host${allHosts === 1 ? '' : 's'}`;
  lines.push(`Dry run: ${verb} ${what}${failing ? `; ${failing} step${failing === 1 ? '' : 's'} would fail` : ''}; nothing was changed.`);
  return lines.join('\n');
}
