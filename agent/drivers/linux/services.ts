import { mkdirSync } from 'node:fs';
import { FailedPreconditionError, NotFoundError } from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import type { ProcessTable, ServiceProbe } from '../host-driver.js';
import type { ProbeMemo } from '../probe-memo.js';
import { checkName, CONTAINER_PATH } from './host-paths.js';
import { lstatAt, withDirBeneath } from './safe-path.js';

/** What rc scripts get as their whole environment. */
const SERVICE_ENV: Readonly<Record<string, string>> = { PATH: CONTAINER_PATH, HOME: '/root', LANG: 'C', LC_ALL: 'C' };
const SERVICE_TIMEOUT_MS = 60_000;
const ANY_NONZERO: readonly number[] = Array.from({ length: 255 }, (_, i) => i + 1);

/** Services through their /etc/init.d scripts, run chrooted; their output goes to one log file per container. */
export class LinuxServices {
  constructor(
    private readonly runner: CommandRunner,
    /** The container's root, its name checked. */
    private readonly rootOf: (name: string) => string,
    private readonly logDir: string,
    private readonly probes: ProbeMemo,
  ) {}

  private serviceSpec(name: string, service: string, verb: 'start' | 'stop' | 'status'): CommandSpec {
    const root = this.rootOf(name);
    checkName(service, 'service name');
    return { argv: ['chroot', root, `/etc/init.d/${service}`, verb], env: SERVICE_ENV, cwd: '/', timeoutMs: SERVICE_TIMEOUT_MS };
  }

  start(name: string, service: string): Promise<void> {
    return this.act(name, service, 'start');
  }

  stop(name: string, service: string): Promise<void> {
    return this.act(name, service, 'stop');
  }

  private async act(name: string, service: string, verb: 'start' | 'stop'): Promise<void> {
    await this.mustHaveScript(name, service);
    mkdirSync(this.logDir, { recursive: true, mode: 0o750 });
    // Output to a file: a daemon left behind would hold captured pipes open forever.
    await this.runner.run({ ...this.serviceSpec(name, service, verb), logFile: this.logFile(name) });
  }

  async probe(name: string, service: string, procs?: ProcessTable): Promise<ServiceProbe> {
    return this.probes.probe(name, service, procs, async () => {
      if (!(await this.hasScript(name, service))) return { running: false, pids: [] };
      const r = await this.runner.run({ ...this.serviceSpec(name, service, 'status'), okExitCodes: ANY_NONZERO });
      return { running: r.exitCode === 0, pids: [] };
    });
  }

  async hasScript(name: string, service: string): Promise<boolean> {
    const root = this.rootOf(name);
    checkName(service, 'service name');
    try {
      return await withDirBeneath(root, ['etc', 'init.d'], (fd) => {
        const st = lstatAt(fd, service);
        return !!st && st.isFile() && (st.mode & 0o111) !== 0;
      });
    } catch (e) {
      if (e instanceof FailedPreconditionError || (e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  private async mustHaveScript(name: string, service: string): Promise<void> {
    if (!(await this.hasScript(name, service))) {
      throw new NotFoundError(`container ${name} has no executable /etc/init.d/${service}`);
    }
  }

  private logFile(name: string): string {
    return `${this.logDir}/${name}.log`;
  }
}
