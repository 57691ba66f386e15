import Table from 'cli-table3';
import type { Container__Output } from '../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult__Output } from '../proto/gen/qfleet/agent/v1/ContainerResult.js';
import { stateWord } from './json-shape.js';
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
  const head = [...(fleet ? ['HOST'] : []), 'NAME', 'STATE', 'SERVICES', 'RELEASE', 'CREATED', 'DISK', 'PATH'];
  const body = shown.map(({ host, container: c }) => [
    ...(fleet ? [host ?? '-'] : []),
    c.name, stateWord(c.state), services(c), release(c), created(c), humanBytes(Number(c.diskUsageBytes)), c.path,
  ]);
  const notes = shown
    .filter((r) => r.container.state === 'STATE_BROKEN')
    .map((r) => `${fleet ? `${r.host ?? '-'}: ` : ''}${r.container.name}: broken: ${r.container.reason}`);
  return [table(head, body), ...notes].join('\n');
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
