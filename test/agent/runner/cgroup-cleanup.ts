import { readFileSync, rmdirSync } from 'node:fs';
import type { LinuxCgroups } from '../../../agent/drivers/linux/cgroups.js';

/** The pids in a container's cgroups now (every hierarchy), without duplicates. */
export function tasksIn(cg: LinuxCgroups, name: string): number[] {
  const pids = new Set<number>();
  for (const f of cg.procsFiles(name)) {
    for (const l of readFileSync(f, 'utf8').split('\n')) if (l) pids.add(Number(l));
  }
  return [...pids];
}

/**
 * For root tests' after hooks: kills whatever a test left in the container's
 * cgroups (a fork bomb's survivors too: killed tasks cannot fork, so each
 * round leaves fewer), removes them, then the test's parent directories.
 * Bounded: 100 rounds or 10 s, then remove() reports what is left.
 */
export async function killAndRemove(cg: LinuxCgroups, names: readonly string[], parent: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const name of names) {
    for (let round = 0; round < 100 && Date.now() < deadline; round++) {
      const pids = tasksIn(cg, name);
      if (pids.length === 0) break;
      for (const p of pids) {
        try { process.kill(p, 'SIGKILL'); } catch { /* gone already */ }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await cg.remove(name);
  }
  for (const h of Object.values(cg.layout().hierarchies)) {
    try { rmdirSync(`${h.mount}/${parent}`); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
  }
}
