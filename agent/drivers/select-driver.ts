import type { OsName } from '../config.js';
import type { CommandRunner } from '../runner/command-runner.js';
import { FreeBSDDriver } from './freebsd/freebsd-driver.js';
import type { HostDriver } from './host-driver.js';
import { LinuxDriver } from './linux/linux-driver.js';

export function osOfThisHost(): OsName {
  if (process.platform === 'freebsd') return 'freebsd';
  if (process.platform === 'linux') return 'linux';
  throw new Error(`qfleetd runs on FreeBSD and Linux, not ${process.platform}`);
}

export interface DriverSettings {
  readonly runner: CommandRunner;
  readonly rootDir: string;
  readonly logDir: string;
  /** FreeBSD only (config freebsd_manifest_sha256): MANIFEST digests by URL. */
  readonly pinnedManifests?: Readonly<Record<string, string>>;
}

export function makeDriver(os: OsName, opts: DriverSettings): HostDriver {
  const { runner, rootDir, logDir } = opts;
  return os === 'freebsd' ? new FreeBSDDriver({ runner, rootDir, logDir, pinnedManifests: opts.pinnedManifests }) : new LinuxDriver({ runner, rootDir, logDir });
}
