import { boolYaml11Tag, defineScalarTag, loadAll, NOT_RESOLVED, YAML11_SCHEMA } from 'js-yaml';
import { AGENT_SOCKET_PATH_VAR, CONNECTION_VAR, DEFAULT_AGENT_PORT, RETIRED_SOCKET_VAR, type HostConnection, type HostTarget } from '../fleet/host-target.js';
import { expandHostRange, HostRangeError } from './ranges.js';

/**
 * An Ansible YAML inventory, read the way Ansible's `yaml` inventory plugin
 * reads it, so an existing inventory works as it is:
 *
 * - every top-level key is a group (`all` included); a group is a mapping of
 *   `hosts:` (host name → host vars, or nothing), `children:` (group name →
 *   group, or nothing) and `vars:`; a group may be defined in several places and
 *   the definitions add up;
 * - host keys may be ranges (`www[01:50].example.com`, `db-[a:f]`) and may carry a
 *   port (`badwolf.example.com:5309` sets ansible_port);
 * - every group is a child of `all`; hosts in no group but `all` are also in
 *   `ungrouped`;
 * - a host's vars are its groups' vars merged from the shallowest group to the
 *   deepest (`all` first; at equal depth by `ansible_group_priority`, then by
 *   name), then its own host vars on top.
 *
 * YAML is parsed as YAML 1.1, as PyYAML (Ansible's parser) does: `yes`/`no` are
 * booleans (but `y` and `n` stay text, as in PyYAML) and `<<` merge keys work.
 * Jinja expressions in values are kept as text.
 */
export class InventoryError extends Error {}

export interface InventoryGroup {
  readonly name: string;
  /** Hosts listed directly in this group (not its children's). */
  readonly hosts: string[];
  readonly children: string[];
  readonly parents: string[];
  readonly vars: Record<string, unknown>;
}

export class Inventory {
  /** Host name → its own host vars (merged over every place it is listed). */
  private readonly hostVars = new Map<string, Record<string, unknown>>();
  private readonly groupMap = new Map<string, InventoryGroup>();
  /** What Ansible would warn about but accept. */
  readonly warnings: string[] = [];

  constructor(readonly source: string) {
    this.group('all');
  }

  /** Every host, in the order the inventory first lists them. */
  get hostNames(): string[] {
    return [...this.hostVars.keys()];
  }

  get groupNames(): string[] {
    return [...this.groupMap.keys()];
  }

  hasHost(name: string): boolean {
    return this.hostVars.has(name);
  }

  getGroup(name: string): InventoryGroup | undefined {
    return this.groupMap.get(name);
  }

  /** Hosts of a group and of all its descendants, in inventory order. */
  hostsOf(groupName: string): string[] {
    if (groupName === 'all') return this.hostNames;
    const members = new Set<string>();
    const seen = new Set<string>();
    const walk = (g: string) => {
      if (seen.has(g)) return;
      seen.add(g);
      const grp = this.groupMap.get(g);
      if (!grp) return;
      for (const h of grp.hosts) members.add(h);
      for (const c of grp.children) walk(c);
    };
    walk(groupName);
    return this.hostNames.filter((h) => members.has(h));
  }

  /** Every group a host is in, its ancestors included (`all` always). */
  groupsOf(host: string): string[] {
    const out = new Set<string>(['all']);
    const up = (g: string) => {
      if (out.has(g) && g !== 'all') return;
      out.add(g);
      for (const p of this.groupMap.get(g)?.parents ?? []) up(p);
    };
    for (const g of this.groupMap.values()) if (g.hosts.includes(host)) up(g.name);
    return [...out];
  }

  /** A host's variables after inheritance, as Ansible resolves them. */
  varsOf(host: string): Record<string, unknown> {
    const own = this.hostVars.get(host);
    if (!own) throw new InventoryError(`no host ${host} in ${this.source}`);
    const depth = this.depths();
    const groups = this.groupsOf(host).sort((a, b) => {
      const d = (depth.get(a) ?? 0) - (depth.get(b) ?? 0);
      if (d) return d;
      const p = priority(this.groupMap.get(a)) - priority(this.groupMap.get(b));
      if (p) return p;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    const vars: Record<string, unknown> = {};
    for (const g of groups) Object.assign(vars, this.groupMap.get(g)?.vars);
    Object.assign(vars, own);
    return vars;
  }

  target(host: string): HostTarget {
    const vars = this.varsOf(host);
    const address = str(vars.ansible_host) ?? str(vars.ansible_ssh_host) ?? host;
    // An error, not a warning: the old var picked the transport (this machine's socket) and the
    // agent's socket path at once, so either guess could act on the wrong host or configure the agent wrongly.
    if (vars[RETIRED_SOCKET_VAR] !== undefined) {
      throw new InventoryError(
        `${this.source}: host ${host}: the host var ${RETIRED_SOCKET_VAR} is no longer read (it made qfleet talk to that socket on the controller's own machine, not on ${host}): ` +
          `rename it ${AGENT_SOCKET_PATH_VAR} (the agent's socket path on ${host}, for bootstrap); ${host} is then reached at ${address} over mutual TLS. ` +
          `Only if its agent runs on this machine, also set ${CONNECTION_VAR}: local.`,
      );
    }
    const connection = connectionOf(vars[CONNECTION_VAR], host, this.source);
    const socketPath = vars[AGENT_SOCKET_PATH_VAR];
    if (socketPath !== undefined && (typeof socketPath !== 'string' || !socketPath.startsWith('/'))) {
      throw new InventoryError(`${this.source}: ${AGENT_SOCKET_PATH_VAR} of ${host} must be an absolute path, not ${JSON.stringify(socketPath)}`);
    }
    return {
      name: host,
      address,
      sshPort: port(vars.ansible_port ?? vars.ansible_ssh_port, 22, `ansible_port of ${host}`),
      sshUser: str(vars.ansible_user) ?? str(vars.ansible_ssh_user),
      agentPort: port(vars.qfleet_agent_port, DEFAULT_AGENT_PORT, `qfleet_agent_port of ${host}`),
      ...(connection === 'local' ? { connection } : {}),
      vars,
    };
  }

  // ---- building -------------------------------------------------------------

  group(name: string): InventoryGroup {
    let g = this.groupMap.get(name);
    if (!g) {
      g = { name, hosts: [], children: [], parents: [], vars: {} };
      this.groupMap.set(name, g);
    }
    return g;
  }

  addHost(group: string, host: string, vars: Record<string, unknown>): void {
    const own = this.hostVars.get(host);
    if (own) Object.assign(own, vars);
    else this.hostVars.set(host, { ...vars });
    const g = this.group(group);
    if (!g.hosts.includes(host)) g.hosts.push(host);
  }

  addChild(parent: string, child: string): void {
    if (parent === child) throw new InventoryError(`group ${child} cannot be its own child in ${this.source}`);
    if (child === 'all') throw new InventoryError(`group all cannot be a child of ${parent} in ${this.source}`);
    const p = this.group(parent);
    const c = this.group(child);
    if (this.isAncestor(child, parent)) throw new InventoryError(`groups ${parent} and ${child} are each other's ancestors in ${this.source}`);
    if (!p.children.includes(child)) p.children.push(child);
    if (!c.parents.includes(parent)) c.parents.push(parent);
  }

  /** After loading: top-level groups under `all`, and `ungrouped`. */
  finish(): this {
    for (const g of this.groupMap.values()) {
      if (g.name !== 'all' && g.parents.length === 0) this.addChild('all', g.name);
    }
    const all = this.group('all');
    for (const h of this.hostNames) {
      const grouped = [...this.groupMap.values()].some((g) => g.name !== 'all' && g.name !== 'ungrouped' && g.hosts.includes(h));
      if (!grouped) this.addHost('ungrouped', h, {});
    }
    if (this.groupMap.has('ungrouped') && !all.children.includes('ungrouped')) this.addChild('all', 'ungrouped');
    // `all` lists no host directly: every host is in it by definition.
    all.hosts.length = 0;
    return this;
  }

  private isAncestor(candidate: string, of: string): boolean {
    const seen = new Set<string>();
    const up = (g: string): boolean => {
      if (g === candidate) return true;
      if (seen.has(g)) return false;
      seen.add(g);
      return (this.groupMap.get(g)?.parents ?? []).some(up);
    };
    return up(of);
  }

  private depths(): Map<string, number> {
    const depth = new Map<string, number>();
    const visit = (g: string, d: number) => {
      if ((depth.get(g) ?? -1) >= d) return;
      depth.set(g, d);
      for (const c of this.groupMap.get(g)?.children ?? []) visit(c, d + 1);
    };
    visit('all', 0);
    return depth;
  }
}

function connectionOf(v: unknown, host: string, source: string): HostConnection {
  if (v === undefined || v === null || v === '' || v === 'mtls') return 'mtls';
  if (v === 'local') return 'local';
  throw new InventoryError(`${source}: ${CONNECTION_VAR} of ${host} must be mtls (the default: its address over mutual TLS) or local (the agent's unix socket on this machine), not ${JSON.stringify(v)}`);
}

function priority(g: InventoryGroup | undefined): number {
  const p = Number(g?.vars.ansible_group_priority ?? 1);
  return Number.isFinite(p) ? p : 1;
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

function port(v: unknown, dflt: number, what: string): number {
  if (v === undefined || v === null || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InventoryError(`${what} must be a port number (1-65535), not ${JSON.stringify(v)}`);
  return n;
}

const GROUP_KEYS = new Set(['hosts', 'children', 'vars']);

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'nothing' : typeof v === 'object' ? 'a mapping' : `a ${typeof v} (${JSON.stringify(v)})`;
}

/**
 * `name:port` as Ansible's parse_address reads a host key: one colon outside
 * range brackets, digits after it (`db-[a:f]:5432` is a range with a port).
 */
function splitPort(key: string): { name: string; port?: number } {
  const m = /^(.+):([0-9]+)$/.exec(key);
  if (!m || m[1]!.replace(/\[[^\]]*\]/g, '').includes(':')) return { name: key };
  return { name: m[1]!, port: Number(m[2]) };
}

/** YAML 1.1 booleans as PyYAML resolves them: YAML 1.1's list without y/Y/n/N. */
const PY_TRUE = new Set(['yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']);
const PY_FALSE = new Set(['no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']);
const pyYamlBool = defineScalarTag('tag:yaml.org,2002:bool', {
  implicit: true,
  implicitFirstChars: boolYaml11Tag.implicitFirstChars,
  resolve: (s) => (PY_TRUE.has(s) ? true : PY_FALSE.has(s) ? false : NOT_RESOLVED),
  identify: (v) => typeof v === 'boolean',
  represent: (v: boolean) => String(v),
});
/**
 * js-yaml's YAML 1.1 schema (null, int, float, timestamp, merge, binary, omap, pairs, set as
 * YAML 1.1 defines them) with PyYAML's booleans. js-yaml rather than `yaml`: the same inventory
 * loads and parses in a fifth of the CPU (measured cold: 500 hosts 27 ms against 150 ms), which
 * every fleet command pays at start.
 */
const PYYAML_SCHEMA = YAML11_SCHEMA.withTags(pyYamlBool);

/**
 * The limits on what an inventory may make us build: aliases (each a reference, but walked once
 * per use below), nesting, and groups visited. A real inventory is far inside them.
 */
export const INVENTORY_LIMITS = { bytes: 16 * 1024 * 1024, aliases: 1000, depth: 100, groupVisits: 100_000 } as const;

export function inventoryTooLarge(source: string): InventoryError {
  return new InventoryError(`${source}: larger than ${INVENTORY_LIMITS.bytes / 1024 / 1024} MiB; an inventory that size is not one qfleet reads`);
}

/** Parses an Ansible YAML (or JSON) inventory. */
export function parseInventory(text: string, source = 'inventory'): Inventory {
  if (text.length > INVENTORY_LIMITS.bytes) throw inventoryTooLarge(source);
  let docs: unknown[];
  try {
    // json: a repeated key keeps its last value, as PyYAML does, instead of failing.
    docs = loadAll(text, { schema: PYYAML_SCHEMA, json: true, maxAliases: INVENTORY_LIMITS.aliases, maxDepth: INVENTORY_LIMITS.depth, filename: source });
  } catch (e) {
    throw new InventoryError(`${source}: not valid YAML: ${e instanceof Error ? e.message : String(e)}`);
  }
  // An empty file (or comments only) is an empty inventory; more than one document is not an inventory (PyYAML's load refuses it too).
  if (docs.length > 1) throw new InventoryError(`${source}: not valid YAML: an inventory is one YAML document, this file has ${docs.length}`);
  const data = docs[0];
  const inv = new Inventory(source);
  if (data === null || data === undefined) return inv.finish();
  if (!isMap(data)) throw new InventoryError(`${source}: an inventory is a mapping of groups, not ${kind(data)}`);

  // Aliases make shared (even self-containing) objects: the walk below is bounded and refuses a group inside itself.
  let visits = 0;
  const open = new Set<unknown>();
  const loadGroup = (name: string, body: unknown, path: string, depth = 0) => {
    if (!name) throw new InventoryError(`${source}: empty group name at ${path}`);
    if (++visits > INVENTORY_LIMITS.groupVisits) throw new InventoryError(`${source}: more than ${INVENTORY_LIMITS.groupVisits} group definitions to read (aliases repeating groups?)`);
    if (depth > INVENTORY_LIMITS.depth) throw new InventoryError(`${source}: groups nested more than ${INVENTORY_LIMITS.depth} deep at ${path}`);
    inv.group(name);
    if (body === null || body === undefined) return;
    if (open.has(body)) throw new InventoryError(`${source}: group ${path} contains itself (through a YAML alias)`);
    if (!isMap(body)) throw new InventoryError(`${source}: group ${path} must be a mapping of hosts, children and vars, not ${kind(body)}`);
    for (const key of Object.keys(body)) {
      // Ansible warns and skips these; so do we (a host written without `hosts:` is the usual cause).
      if (!GROUP_KEYS.has(key)) inv.warnings.push(`${source}: skipping unexpected key ${JSON.stringify(key)} in group ${path}: only hosts, children and vars are valid`);
    }
    // Ansible accepts a single name written as a string (`hosts: test5`) for {test5: null}.
    const section = (v: unknown) => (typeof v === 'string' ? { [v]: null } : v);
    const vars = section(body.vars);
    const hosts = section(body.hosts);
    const children = section(body.children);
    if (vars !== null && vars !== undefined) {
      if (!isMap(vars)) throw new InventoryError(`${source}: vars of group ${path} must be a mapping, not ${kind(vars)}`);
      Object.assign(inv.group(name).vars, vars);
    }
    if (hosts !== null && hosts !== undefined) {
      if (!isMap(hosts)) throw new InventoryError(`${source}: hosts of group ${path} must be a mapping (host: vars), not ${kind(hosts)}`);
      for (const [key, hv] of Object.entries(hosts)) {
        if (hv !== null && hv !== undefined && !isMap(hv)) throw new InventoryError(`${source}: vars of host ${key} in group ${path} must be a mapping, not ${kind(hv)}`);
        const { name: pattern, port: p } = splitPort(String(key));
        let names: string[];
        try {
          names = expandHostRange(pattern);
        } catch (e) {
          if (e instanceof HostRangeError) throw new InventoryError(`${source}: ${e.message}`);
          throw e;
        }
        for (const h of names) inv.addHost(name, h, { ...(p !== undefined ? { ansible_port: p } : {}), ...(hv ?? {}) });
      }
    }
    if (children !== null && children !== undefined) {
      if (!isMap(children)) throw new InventoryError(`${source}: children of group ${path} must be a mapping of groups, not ${kind(children)}`);
      open.add(body);
      for (const [child, cbody] of Object.entries(children)) {
        inv.addChild(name, child);
        loadGroup(child, cbody, `${path} > ${child}`, depth + 1);
      }
      open.delete(body);
    }
  };

  for (const [name, body] of Object.entries(data)) loadGroup(name, body, name);
  return inv.finish();
}
