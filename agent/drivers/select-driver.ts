import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { AgentConfig, OsName } from '../config.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { FreeBSDDriver } from './freebsd/freebsd-driver.js';
import type { HostDriver } from './host-driver.js';
import { LinuxCgroups } from './linux/cgroups.js';
import { LinuxDriver } from './linux/linux-driver.js';

export function osOfThisHost(): OsName {
  if (process.platform === 'freebsd') return 'freebsd';
  if (process.platform === 'linux') return 'linux';
  throw new Error(`qfleetd runs on FreeBSD and Linux, not ${process.platform}`);
}

/** The host's driver, set up from the agent's config (every driver setting is read here, so none is left behind in main). */
export function makeDriver(
  cfg: Pick<AgentConfig, 'os' | 'zone' | 'rootDir' | 'logDir' | 'stateDir' | 'freebsdManifestSha256'>,
  runner: CommandRunner,
  /** Where a driver says why it did something other than asked (FreeBSD: a chroot rc stop it would not run). */
  warn?: (message: string, fields: Record<string, unknown>) => void,
): HostDriver {
  const { rootDir, logDir } = cfg;
  // Pidfiles of containers' inits (jchroot's pidfile), beside the state files.
  const runDir = join(cfg.stateDir, 'run');
  return cfg.os === 'freebsd'
    ? new FreeBSDDriver({ runner, rootDir, logDir, runDir, pinnedManifests: cfg.freebsdManifestSha256, ...(warn ? { warn } : {}) })
    : new LinuxDriver({ runner, rootDir, logDir, runDir, cgroups: new LinuxCgroups({ parent: cgroupParent(cfg.zone, rootDir) }) });
}

/**
 * The cgroup directory of this agent's containers, in every hierarchy: its zone
 * and a digest of its root directory, so that two agents on one machine (zones,
 * test hosts) never share a container's cgroup even when their names agree.
 */
export function cgroupParent(zone: string, rootDir: string): string {
  const digest = createHash('sha256').update(rootDir).digest('hex').slice(0, 8);
  return /^[A-Za-z0-9_-]{1,32}$/.test(zone) ? `qfleet-${zone}-${digest}` : `qfleet-${digest}`;
}
