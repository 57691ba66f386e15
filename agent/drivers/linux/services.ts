import { mkdirSync } from 'node:fs';
import { FailedPreconditionError, NotFoundError } from '../../errors.js';
import type { CommandRunner, CommandSpec } from '../../runner/command-runner.js';
import type { ContainerRef } from '../container-config.js';
import type { ProcessTable, ServiceProbe } from '../host-driver.js';
import type { ProbeMemo } from '../probe-memo.js';
import type { Entry } from './entry.js';
import { checkName } from './host-paths.js';
import { lstatAt, withDirBeneath } from './safe-path.js';

const SERVICE_TIMEOUT_MS = 60_000;
const ANY_NONZERO: readonly number[] = Array.from({ length: 255 }, (_, i) => i + 1);

/** Services through their /etc/init.d scripts, run inside the container; their output goes to one log file per container. */
export class LinuxServices {
  constructor(
    private readonly runner: CommandRunner,
    /** The container's root, its name checked. */
    private readonly rootOf: (name: string) => string,
    private readonly logDir: string,
    private readonly probes: ProbeMemo,
    /** How a command gets into the container (chroot or nsenter). */
    private readonly entry: (ref: ContainerRef) => Entry,
    /** A namespaces container's processes as one string (its init and what descends from it, pid@start), or undefined when it is not up. */
    private readonly nsFingerprint: (name: string) => string | undefined = () => undefined,
  ) {}

  private serviceSpec(ref: ContainerRef, service: string, verb: 'start' | 'stop' | 'status'): CommandSpec {
    checkName(service, 'service name');
    const e = this.entry(ref);
    return {
      argv: [...e.prefix, `/etc/init.d/${service}`, verb], env: { LANG: 'C', LC_ALL: 'C', ...e.env }, cwd: '/', timeoutMs: SERVICE_TIMEOUT_MS,
      ...(e.joinCgroups.length ? { joinCgroups: e.joinCgroups } : {}),
    };
  }

  start(ref: ContainerRef, service: string): Promise<void> {
    return this.act(ref, service, 'start');
  }

  stop(ref: ContainerRef, service: string): Promise<void> {
    return this.act(ref, service, 'stop');
  }

  private async act(ref: ContainerRef, service: string, verb: 'start' | 'stop'): Promise<void> {
    await this.mustHaveScript(ref.name, service);
    mkdirSync(this.logDir, { recursive: true, mode: 0o750 });
    // Output to a file: a daemon left behind would hold captured pipes open forever.
    await this.runner.run({ ...this.serviceSpec(ref, service, verb), logFile: this.logFile(ref.name) });
  }

  /**
   * `procs` is the host's table of chroot processes; a namespaces container's
   * processes are not in it (their root is not a host path), so its answers
   * are never taken from the memo.
   */
  async probe(ref: ContainerRef, service: string, procs?: ProcessTable): Promise<ServiceProbe> {
    const { name } = ref;
    // Given a table (a List), the memo may answer: a chroot's processes are in the table; a namespaces
    // container's are not (their root is no host path), so they are read from its init's descendants.
    const fingerprint = !procs ? undefined : ref.config.isolation === 'chroot' ? procs.fingerprint(name) : this.nsFingerprint(name);
    return this.probes.probe(name, service, fingerprint, async () => {
      if (!(await this.hasScript(name, service))) return { running: false, pids: [] };
      let spec: CommandSpec;
      try {
        spec = this.serviceSpec(ref, service, 'status');
      } catch (e) {
        // A namespaces container whose init is not up runs nothing.
        if (e instanceof FailedPreconditionError && e.reason === 'stopped') return { running: false, pids: [] };
        throw e;
      }
      const r = await this.runner.run({ ...spec, okExitCodes: ANY_NONZERO });
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
