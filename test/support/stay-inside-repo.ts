/**
 * A mocha root-hook plugin (loaded by .mocharc.json before every test file):
 * the suite must run from a bare clone with nothing beside it, so any file
 * access by a test to a path beside the repository (a sibling of its top
 * directory, such as a reference folder next to a developer's checkout) is
 * recorded, and the run fails at the end naming each path and who touched it.
 *
 * It wraps node:fs's path-taking functions (sync, callback and promise forms)
 * and re-syncs the ESM bindings, so `import { readFileSync } from 'node:fs'`
 * in any test or product module is watched too. A clone in a directory of
 * its own under /tmp (/tmp/ci-1234/qfleet) is watched like any other.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, resolve, sep } from 'node:path';
import { repoRoot } from './repo-root.js';

const root = repoRoot();
const parent = dirname(root);
const tmpRoots = [tmpdir(), '/tmp', '/var/tmp', '/dev/shm'].map((d) => resolve(d));
/**
 * A clone made straight in a temporary directory (/tmp/qfleet) has the tests'
 * own temporary directories as its siblings: there the guard cannot tell a
 * reference folder from a test's scratch space, and stands aside.
 */
export const guardActive = parent !== dirname(parent) && !tmpRoots.includes(parent);
const seen = new Map<string, string>();

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** True for a path beside the repository: under its parent, not under it (see guardActive). */
export function besideRepo(path: string): boolean {
  if (!guardActive) return false; // a clone at /x or /tmp/x: its "siblings" are the system or scratch space
  const p = resolve(path);
  return inside(p, parent) && !inside(p, root);
}

function note(arg: unknown): void {
  let path: string | undefined;
  if (typeof arg === 'string') path = arg;
  else if (arg instanceof URL && arg.protocol === 'file:') path = arg.pathname;
  else if (Buffer.isBuffer(arg)) path = arg.toString();
  if (path === undefined || !besideRepo(path) || seen.has(resolve(path))) return;
  const caller = (new Error().stack ?? '').split('\n').slice(3, 6).map((l) => l.trim()).join(' < ');
  seen.set(resolve(path), caller);
}

type AnyFn = (...args: unknown[]) => unknown;

function wrap(target: Record<string, unknown>, names: readonly string[], argIndexes: readonly number[] = [0]): void {
  for (const name of names) {
    const orig = target[name];
    if (typeof orig !== 'function') continue;
    const wrapped = function (this: unknown, ...args: unknown[]) {
      for (const i of argIndexes) note(args[i]);
      return (orig as AnyFn).apply(this, args);
    };
    Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(orig));
    target[name] = wrapped;
  }
}

const onePath = ['readFile', 'open', 'stat', 'lstat', 'readdir', 'access', 'opendir', 'readlink', 'realpath', 'createReadStream'];
const sync = onePath.map((n) => `${n}Sync`).concat(['existsSync']);
wrap(fs as unknown as Record<string, unknown>, [...onePath, ...sync]);
wrap(fs as unknown as Record<string, unknown>, ['copyFile', 'copyFileSync', 'cp', 'cpSync'], [0]);
wrap(fsp as unknown as Record<string, unknown>, ['readFile', 'open', 'stat', 'lstat', 'readdir', 'access', 'opendir', 'readlink', 'realpath', 'copyFile', 'cp']);
syncBuiltinESMExports();

/** For the guard's own test: whether a path was recorded, and forgetting it again. */
export function recorded(path: string): boolean {
  return seen.has(resolve(path));
}
export function forget(path: string): void {
  seen.delete(resolve(path));
}

export const mochaHooks = {
  afterAll(): void {
    if (seen.size === 0) return;
    const lines = [...seen].map(([p, by]) => `  ${p}\n      by ${by}`);
    throw new Error(
      `the tests touched ${seen.size} path(s) beside the repository (${parent}), which a bare clone does not have; ` +
        `copy what they need into the repository (e.g. test/fixtures/):\n${lines.join('\n')}`,
    );
  },
};
