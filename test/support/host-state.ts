import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseMountinfo } from '../../agent/drivers/linux/mountinfo.js';

/** Mount targets at or below `dir`, from the kernel's table. */
export function mountsUnder(dir: string): string[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((m) => m.mountPoint)
    .filter((t) => t === dir || t.startsWith(`${dir}/`));
}

/** Pids whose root directory is at or below `dir`. */
export function processesRootedUnder(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const root = readlinkSync(`/proc/${e}/root`);
      if (root === dir || root.startsWith(`${dir}/`)) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}

/** Pids whose command line mentions `needle` (leftover cp/tar/mount of a killed agent). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}

/** A digest of a whole tree: paths, types, modes and contents; symlinks by target. */
export function treeDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    for (const ent of readdirSync(join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(rel, ent.name);
      h.update(`${p}\0${ent.isDirectory() ? 'd' : ent.isSymbolicLink() ? 'l' : 'f'}\0`);
      if (ent.isDirectory()) walk(p);
      else if (ent.isSymbolicLink()) h.update(readlinkSync(join(dir, p)));
      else h.update(readFileSync(join(dir, p)));
    }
  };
  walk('');
  return h.digest('hex');
}

export async function httpGet(port: number, timeoutMs = 2000): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
    return await res.text();
  } catch {
    return undefined;
  }
}
