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

export function makeDriver(os: OsName, opts: { runner: CommandRunner; rootDir: string; logDir: string }): HostDriver {
  return os === 'freebsd' ? new FreeBSDDriver(opts) : new LinuxDriver(opts);
}
