import { mkdtempSync, readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { LinuxDriver } from '../../../../agent/drivers/linux/linux-driver.js';
import { parseMountinfo } from '../../../../agent/drivers/linux/mountinfo.js';
import { removeTree } from '../../../../agent/drivers/linux/safe-remove.js';
import { deepestFirst, isUnder } from '../../../../agent/drivers/host-driver.js';
import { ExecaRunner } from '../../../../agent/runner/execa-runner.js';
import { makeBusyboxBase, pickTestPort } from '../../../support/busybox-base.js';

/** A real Linux driver on a fresh temp directory, with a busybox base to install. */
export interface RealSetup {
  readonly tmp: string;
  readonly baseDir: string;
  readonly port: number;
  readonly driver: LinuxDriver;
  readonly runner: ExecaRunner;
  cleanup(): Promise<void>;
}

export async function makeRealSetup(prefix = 'qf-linux-'): Promise<RealSetup> {
  const tmp = mkdtempSync(`/tmp/${prefix}`);
  const port = pickTestPort();
  const baseDir = await makeBusyboxBase(`${tmp}/base`, { httpdPort: port });
  const runner = new ExecaRunner();
  const driver = new LinuxDriver({ runner, rootDir: `${tmp}/qfleet`, logDir: `${tmp}/log` });
  return { tmp, baseDir, port, driver, runner, cleanup: () => cleanupTree(runner, tmp) };
}

/**
 * Kills what runs rooted below `tmp`, unmounts everything below it (never
 * lazily) and removes it without crossing a mount: if an unmount failed the
 * removal refuses rather than deleting through a bind mount.
 */
export async function cleanupTree(runner: ExecaRunner, tmp: string): Promise<void> {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (isUnder(readlinkSync(`/proc/${p}/root`), tmp)) process.kill(Number(p), 'SIGKILL');
    } catch { /* gone */ }
  }
  // A namespaces container's processes have no host root to find them by: its init, named in its pidfile, ends them all.
  for (const pidfile of pidfilesUnder(tmp, 4)) {
    try {
      const pid = Number(readFileSync(pidfile, 'utf8').split(' ')[0]);
      if (pid > 1 && readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('/dev/.qfleet/tini')) process.kill(pid, 'SIGKILL');
    } catch { /* gone, or not an init */ }
  }
  for (let pass = 0; pass < 5; pass++) {
    const under = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((e) => isUnder(e.mountPoint, tmp));
    if (under.length === 0) break;
    for (const e of deepestFirst(under.map((m) => ({ target: m.mountPoint })))) {
      await runner.run({ argv: ['umount', '--no-canonicalize', e.target], okExitCodes: [1, 32] }).catch(() => undefined);
    }
  }
  await removeTree(tmp);
}

/** `*.pid` files at most `depth` directories below `dir` (where agents and drivers keep their run directories), not following symlinks. */
function pidfilesUnder(dir: string, depth: number): string[] {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isFile() && e.name.endsWith('.pid')) out.push(`${dir}/${e.name}`);
    else if (e.isDirectory() && depth > 0 && e.name !== 'containers' && e.name !== 'sharedfs' && e.name !== 'template') out.push(...pidfilesUnder(`${dir}/${e.name}`, depth - 1));
  }
  return out;
}
