/**
 * Which containers a start/stop/delete touches on a host.
 *
 * - exact names by default: `web` is the container `web` and nothing else
 *   (never `web2`);
 * - `-A`: every container;
 * - qjail's group prefix, only when written with a trailing `=`: `web=` is every
 *   container whose name starts with `web` (`web`, `web1`, `webmail`; not `xweb`).
 *
 * Exact names go to the agent as they are (a name missing on a host fails
 * there with the agent's own message); prefixes are resolved against the
 * host's list, so they need one read-only List call first.
 */
export class SelectionError extends Error {}

export type Selection =
  | { readonly kind: 'all' }
  | { readonly kind: 'names'; readonly exact: readonly string[]; readonly prefixes: readonly string[] };

export function parseSelection(args: readonly string[], all: boolean): Selection {
  if (all && args.length) throw new SelectionError('give container names or -A, not both.');
  if (all) return { kind: 'all' };
  if (args.length === 0) throw new SelectionError('name at least one container, or use -A for all.');
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const a of args) {
    if (a.endsWith('=')) {
      const p = a.slice(0, -1);
      if (!p || p.includes('=')) throw new SelectionError(`a group prefix is the start of a container name followed by =, as web= (not ${JSON.stringify(a)}).`);
      if (!prefixes.includes(p)) prefixes.push(p);
    } else if (!exact.includes(a)) exact.push(a);
  }
  return { kind: 'names', exact, prefixes };
}

/** Does this selection need the host's container list to be resolved? */
export function needsList(sel: Selection): sel is Extract<Selection, { kind: 'names' }> {
  return sel.kind === 'names' && sel.prefixes.length > 0;
}

export function matchesPrefix(name: string, prefix: string): boolean {
  return name.startsWith(prefix);
}

/**
 * The containers a selection names on a host with these containers, in name
 * order: `names` exist there; `missing` are exact names the host lacks.
 */
export function resolveSelection(sel: Selection, containers: readonly string[]): { names: string[]; missing: string[] } {
  const have = [...containers].sort(byCodePoint);
  if (sel.kind === 'all') return { names: have, missing: [] };
  const set = new Set(sel.exact.filter((n) => have.includes(n)));
  for (const n of have) if (sel.prefixes.some((p) => matchesPrefix(n, p))) set.add(n);
  return { names: have.filter((n) => set.has(n)), missing: sel.exact.filter((n) => !have.includes(n)) };
}

export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
