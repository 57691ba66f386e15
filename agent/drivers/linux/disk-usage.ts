import { CommandFailedError } from '../../errors.js';
import { isUnder } from '../host-driver.js';
import { DU_BATCH_TIMEOUT_MS, duAnswers, duArgv } from '../du-batches.js';
import type { CommandRunner } from '../../runner/command-runner.js';
import type { LinuxMounts } from './mounts.js';
import { measureTree } from './safe-remove.js';

/**
 * The disk use of container trees, for DiskUsageBatches: one
 * `du -s -x -B1 -0` for every tree with nothing mounted under it (stopped
 * containers, isolated ones, whose mounts live in their own namespace). A tree
 * with a mount under it (a running chroot container, a console) is walked
 * here instead, leaving out what the mount table lists: -x alone would count
 * a bind mount of the same filesystem.
 *
 * du follows no symlink and stays on the tree's filesystem; it counts a file
 * with several hard links once in the whole batch, where a walk counted it
 * once per tree (links across containers are not made by qfleet). A tree du
 * leaves unmeasured, or every tree when du cannot run as asked, is walked here.
 * A batch nobody waits for (not `urgent`) runs du at the lowest priority (duArgv).
 */
export async function measureContainerTrees(runner: CommandRunner, mounts: LinuxMounts, roots: readonly string[], urgent: boolean): Promise<Map<string, number | Error>> {
  const points = (await mounts.table()).map((e) => e.mountPoint);
  const sizes = new Map<string, number | Error>();
  const plain: string[] = [];
  for (const root of roots) {
    const under = points.filter((p) => p !== root && isUnder(p, root));
    if (!under.length) {
      plain.push(root);
      continue;
    }
    sizes.set(root, await measureTree(root, under).catch(asError));
  }
  if (!plain.length) return sizes;
  let answers: Map<string, number | Error>;
  try {
    // Exit 1: some tree could not be read (one deleted meanwhile); the others' lines are there.
    const r = await runner.run({ argv: duArgv(['-s', '-x', '-B1', '-0', '--', ...plain], urgent), okExitCodes: [1], timeoutMs: DU_BATCH_TIMEOUT_MS });
    answers = duAnswers(r, plain, 1);
  } catch (e) {
    // A du that ran out of time would be no quicker walked here: its trees wait for the next round.
    if (e instanceof CommandFailedError && e.timedOut) return new Map([...sizes, ...plain.map((root) => [root, e] as const)]);
    answers = new Map(plain.map((root) => [root, asError(e)]));
  }
  // What du could not measure (no du, or not GNU du's options: busybox; a tree it could not read) is walked
  // here, so a figure never goes missing for want of a tool; the walk's error is the one reported.
  for (const [root, got] of answers) sizes.set(root, typeof got === 'number' ? got : await measureTree(root, []).catch(asError));
  return sizes;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
