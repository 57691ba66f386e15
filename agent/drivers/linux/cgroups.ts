import type { LimitCapabilities, Limits } from '../container-config.js';

/**
 * A container's control groups, which enforce its limits (memory, CPU, pids)
 * on every process in it. The Linux driver asks for the cgroup.procs files
 * before it starts anything in the container, and hands them to the runner
 * (CommandSpec.joinCgroups) so the init, services and exec sessions join them
 * before they run.
 *
 * PLACEHOLDER (isolation step 1): enforces nothing and says so; the real one
 * (cgroup v2 where the host has its controllers, v1 otherwise) replaces it.
 */
export interface ContainerCgroups {
  /** Which limits this host can enforce, and why any it cannot ("limit memory: ..."). */
  capabilities(): LimitCapabilities & { readonly missing: readonly string[] };
  /**
   * Creates or updates the container's cgroups with these limits; answers the
   * cgroup.procs files to join (none when there are no limits to enforce).
   */
  prepare(name: string, limits: Limits): Promise<string[]>;
  /** The cgroup.procs files of a prepared container (none when it has no cgroups). */
  procsFiles(name: string): string[];
  /** Removes the container's cgroups once nothing runs in them. */
  remove(name: string): Promise<void>;
}

export class NoCgroups implements ContainerCgroups {
  capabilities() {
    return { memory: false, cpu: false, pids: false, missing: ['limit memory: not implemented yet', 'limit cpu: not implemented yet', 'limit pids: not implemented yet'] };
  }
  async prepare(_name: string, limits: Limits): Promise<string[]> {
    if (limits.memoryBytes || limits.cpus || limits.pids) throw new Error('limits are not implemented yet');
    return [];
  }
  procsFiles(): string[] {
    return [];
  }
  async remove(): Promise<void> {}
}
