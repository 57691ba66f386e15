import { closeSync, lstatSync, realpathSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { Layout } from '../host-driver.js';
import { openBeneath, readFileBeneath } from './safe-path.js';

/** Inside a container: the PATH rc scripts and exec'd commands get. */
export const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Characters a managed path may contain, so it can go on a command line (and a terminal's command line) safely. */
const SAFE_PATH = /^\/[A-Za-z0-9._+@:/-]*$/;
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$/;

export function checkName(name: string, what: string): void {
  if (!SAFE_NAME.test(name) || name.length > 200) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(name)}`);
}

export function checkHostPath(p: string, what: string): void {
  if (!isAbsolute(p) || p.includes('\0') || p.includes('\n')) throw new InvalidArgumentError(`${what} must be an absolute path: ${JSON.stringify(p)}`);
}

/** The mount table shows resolved paths, so the layout must use them too. */
export function canonicalRoot(rootDir: string): string {
  const p = normalize(rootDir).replace(/\/+$/, '');
  if (!SAFE_PATH.test(p) || p === '') throw new InvalidArgumentError(`rootDir must be an absolute path of [A-Za-z0-9._+@:/-]: ${JSON.stringify(rootDir)}`);
  try {
    const real = realpathSync(p);
    if (!SAFE_PATH.test(real)) throw new InvalidArgumentError(`rootDir resolves to an unsafe path: ${JSON.stringify(real)}`);
    return real;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return p;
    throw e;
  }
}

export function isSymlink(p: string): boolean {
  try { return lstatSync(p).isSymbolicLink(); } catch { return false; }
}

export function readFileBeneathIfExists(root: string, rel: string): string | undefined {
  try {
    return readFileBeneath(root, rel);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The container's root, its name checked first. */
export function rootOf(layout: Layout, name: string): string {
  checkName(name, 'container name');
  return layout.containerRoot(name);
}

/** Refuses a container whose root is not there (opened without following a symlink). */
export function mustExist(name: string, root: string): void {
  try {
    closeSync(openBeneath(root, []));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`container ${name} does not exist`);
    throw e;
  }
}
