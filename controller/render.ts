import Table from 'cli-table3';
import type { Container__Output } from '../proto/gen/qfleet/agent/v1/Container.js';
import type { ContainerResult__Output } from '../proto/gen/qfleet/agent/v1/ContainerResult.js';

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

const STATE: Record<string, string> = { STATE_STOPPED: 'stopped', STATE_RUNNING: 'running', STATE_BROKEN: 'broken' };

export function stateWord(s: string): string {
  return STATE[s] ?? 'unknown';
}

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

function services(c: Container__Output): string {
  if (!c.services.length) return '-';
  return c.services.map((s) => (s.state === 'STATE_RUNNING' ? s.name : c.state === 'STATE_STOPPED' ? s.name : `${s.name}(down)`)).join(',');
}

/** qfleet list: one row per container, ascending name, broken reasons underneath. */
export function renderContainers(containers: readonly Container__Output[], opts: { host?: (c: Container__Output) => string } = {}): string {
  if (containers.length === 0) return 'No chroot containers.';
  const head = [...(opts.host ? ['HOST'] : []), 'NAME', 'STATE', 'SERVICES', 'RELEASE', 'CREATED', 'DISK', 'PATH'];
  const rows = containers.map((c) => [
    ...(opts.host ? [opts.host(c)] : []),
    c.name, stateWord(c.state), services(c), c.baseRelease || '-', created(c), humanBytes(Number(c.diskUsageBytes)), c.path,
  ]);
  const notes = containers.filter((c) => c.state === 'STATE_BROKEN').map((c) => `${c.name}: broken: ${c.reason}`);
  return [table(head, rows), ...notes].join('\n');
}

/** One line per container, as qchroot prints them. */
export function renderResults(results: readonly ContainerResult__Output[]): string {
  return results.map((r) => `${r.name}: ${r.message}`).join('\n');
}

export function resultsFailed(results: readonly ContainerResult__Output[]): boolean {
  return results.some((r) => r.outcome === 'OUTCOME_FAILED');
}
