import { FailedPreconditionError } from '../../errors.js';
import type { CommandResult, CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import { isUnder } from '../host-driver.js';
import { parseMountLibxo, parseMountP, type MountTable } from './mount-table.js';
import { parseSysctlInt } from './outputs.js';
import { firstLine } from './release.js';

/**
 * The FreeBSD commands the driver builds on, each one argv through the injected
 * runner. Kept apart from the driver so install and container code share one
 * vocabulary (and one place that decides how the mount table is read).
 */
export class HostCommands {
  /** How `mount -p` answers here; found out once (libxo JSON exists on 14.0+ only). */
  private listing: 'unknown' | 'json' | 'text' = 'unknown';

  constructor(private readonly runner: CommandRunner) {}

  run(argv: readonly string[], spec: Omit<CommandSpec, 'argv'> = {}): Promise<CommandResult> {
    return this.runner.run({ ...spec, argv });
  }

  /** `test FLAG PATH` (follows symlinks, as test(1) does): exit 1 is an answer, not a failure. */
  async test(flag: '-e' | '-d' | '-f', path: string): Promise<boolean> {
    return (await this.run(['test', flag, path], { okExitCodes: [1] })).exitCode === 0;
  }

  /** realpath(1) of an existing path, or undefined when it does not resolve. */
  async realpath(path: string): Promise<string | undefined> {
    const r = await this.run(['realpath', path], { okExitCodes: [1] });
    return r.exitCode === 0 ? firstLine(r.stdout) : undefined;
  }

  /** The kernel's mount table: `mount -p --libxo json` where it works, else `mount -p`. */
  async mountTable(): Promise<MountTable> {
    if (this.listing !== 'text') {
      try {
        const t = parseMountLibxo((await this.run(['mount', '-p', '--libxo', 'json'])).stdout);
        if (t) {
          this.listing = 'json';
          return t;
        }
      } catch (err) {
        // Only the first attempt may fail quietly: on 13.x mount(8) rejects --libxo.
        if (this.listing === 'json') throw err;
      }
      this.listing = 'text';
    }
    return parseMountP((await this.run(['mount', '-p'])).stdout);
  }

  /** Mounts at or below `root`, plus unparsable lines that mention it (treated as mounted there). */
  static mountsUnder(table: MountTable, root: string): string[] {
    return [
      ...table.entries.filter((e) => isUnder(e.target, root)).map((e) => `${e.target} (${e.fstype})`),
      ...table.unparsable.filter((l) => l.includes(root)).map((l) => JSON.stringify(l)),
    ];
  }

  /** `sysctl -n kern.securelevel`, read each time: it can be raised while the host runs (never lowered). */
  async securelevel(): Promise<number> {
    const out = (await this.run(['sysctl', '-n', 'kern.securelevel'])).stdout;
    const level = parseSysctlInt(out);
    if (level === undefined) throw new FailedPreconditionError(`cannot read kern.securelevel (sysctl printed ${JSON.stringify(out.trim())})`);
    return level;
  }

  /**
   * Refuses `doing` at kern.securelevel >= 1: securelevel(7) forbids clearing (and setting)
   * the schg flags a FreeBSD base carries, so chflags, rm and tar -xp would fail half-way.
   */
  async assertFlagsClearable(doing: string): Promise<void> {
    const level = await this.securelevel();
    if (level >= 1) {
      throw new FailedPreconditionError(
        `cannot ${doing}: kern.securelevel is ${level}, and at securelevel 1 or more the schg flags of a FreeBSD base cannot be changed; ` +
        `the securelevel cannot be lowered while the host runs: set kern_securelevel_enable="NO" in /etc/rc.conf and reboot`,
      );
    }
  }

  /**
   * Removes a tree that may hold schg files (a base does): refuses while anything
   * is mounted below it or while the securelevel forbids clearing flags, then
   * `chflags -R -x 0` and `rm -rf -x` (neither crosses a mount point; chflags -R
   * ignores symlinks found in its walk).
   */
  async removeTree(path: string, what: string): Promise<void> {
    const mounted = HostCommands.mountsUnder(await this.mountTable(), path);
    if (mounted.length > 0) {
      throw new FailedPreconditionError(`${what} ${path} still has mounted filesystems: ${mounted.join(', ')}; unmount them first`);
    }
    if (!(await this.test('-e', path))) return;
    await this.assertFlagsClearable(`remove ${what} ${path}`);
    await this.run(['chflags', '-R', '-x', '0', path]);
    await this.run(['rm', '-rf', '-x', path]);
  }
}
