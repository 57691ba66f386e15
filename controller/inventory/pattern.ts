import type { Inventory } from './inventory.js';

/**
 * Ansible host patterns over an inventory:
 *
 * - terms separated by `,` (then no `:` splitting, as Ansible does) or by `:`
 *   outside brackets: `web:db`, `web,db`, `host1,host2`;
 * - a term is a host or group name, `all` (or `*`), a glob (`web*`, `db?.example.com`,
 *   `[ab]*`), or `~regex`; a group stands for its hosts and its children's;
 * - `&term` keeps only hosts also in term, `!term` removes term's hosts;
 *   plain terms are taken first, then `&`, then `!` (only `&`/`!` terms start from `all`);
 * - `group[0]`, `group[-1]`, `group[1:3]` (inclusive, as Ansible's) pick by position.
 *
 * A term that matches no host or group is an error naming it (Ansible only
 * warns; a fleet command that silently skips a mistyped host is worse).
 * The result is in inventory order.
 */
export class PatternError extends Error {}

export function splitPattern(pattern: string): string[] {
  let parts: string[];
  if (pattern.includes(',')) parts = pattern.split(',');
  else {
    parts = [];
    let cur = '';
    let depth = 0;
    for (const ch of pattern) {
      if (ch === '[') depth++;
      if (ch === ']') depth = Math.max(0, depth - 1);
      if (ch === ':' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
    }
    parts.push(cur);
  }
  return parts.map((p) => p.trim()).filter(Boolean);
}

const SUBSCRIPT = /^(.+)\[(?:(-?[0-9]+)|([0-9]*)([:-])([0-9]*))\]$/;

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function matcher(term: string): ((name: string) => boolean) | undefined {
  if (term.startsWith('~')) {
    let re: RegExp;
    try {
      re = new RegExp(term.slice(1));
    } catch (e) {
      throw new PatternError(`bad regular expression in host pattern ${term}: ${(e as Error).message}`);
    }
    // Ansible uses re.match: anchored at the start only.
    return (n) => re.exec(n)?.index === 0;
  }
  if (/[*?[]/.test(term)) {
    const re = globToRegExp(term);
    return (n) => re.test(n);
  }
  return undefined;
}

/** One term's hosts, in inventory order; undefined when nothing matches. */
function termHosts(inv: Inventory, term: string): string[] | undefined {
  const sub = SUBSCRIPT.exec(term);
  if (sub && !term.startsWith('~')) {
    const hosts = termHosts(inv, sub[1]!);
    if (!hosts) return undefined;
    if (sub[2] !== undefined) {
      const i = Number(sub[2]);
      const h = hosts.at(i);
      return h === undefined ? [] : [h];
    }
    const start = sub[3] ? Number(sub[3]) : 0;
    const end = sub[5] ? Number(sub[5]) : hosts.length - 1;
    return hosts.slice(start, end + 1);
  }
  if (term === 'all' || term === '*') return inv.hostNames;
  const m = matcher(term);
  const found = new Set<string>();
  let matched = false;
  for (const g of inv.groupNames) {
    if (m ? m(g) : g === term) {
      matched = true;
      for (const h of inv.hostsOf(g)) found.add(h);
    }
  }
  // Hosts too when no group matched, or for a glob/regex (as Ansible does).
  if (!matched || m) {
    for (const h of inv.hostNames) {
      if (m ? m(h) : h === term) {
        matched = true;
        found.add(h);
      }
    }
  }
  if (!matched) return undefined;
  return inv.hostNames.filter((h) => found.has(h));
}

/** The hosts a pattern names, in inventory order; throws PatternError naming an unknown term. */
export function selectHosts(inv: Inventory, pattern: string): string[] {
  const terms = splitPattern(pattern);
  if (terms.length === 0) throw new PatternError('empty host pattern');
  const plain = terms.filter((t) => !t.startsWith('&') && !t.startsWith('!'));
  const and = terms.filter((t) => t.startsWith('&')).map((t) => t.slice(1));
  const not = terms.filter((t) => t.startsWith('!')).map((t) => t.slice(1));
  const resolve = (t: string): Set<string> => {
    if (!t) throw new PatternError(`empty term in host pattern ${JSON.stringify(pattern)}`);
    const hosts = termHosts(inv, t);
    if (!hosts) throw new PatternError(`no host or group matches ${JSON.stringify(t)} in ${inv.source}`);
    return new Set(hosts);
  };
  let selected = new Set<string>();
  for (const t of plain.length ? plain : ['all']) for (const h of resolve(t)) selected.add(h);
  for (const t of and) {
    const keep = resolve(t);
    selected = new Set([...selected].filter((h) => keep.has(h)));
  }
  for (const t of not) {
    const drop = resolve(t);
    selected = new Set([...selected].filter((h) => !drop.has(h)));
  }
  return inv.hostNames.filter((h) => selected.has(h));
}
