import { InvalidArgumentError } from '../../errors.js';

// Everything here ends up on a command line. argv arrays already rule out shell
// injection; these checks rule out what argv cannot: option injection ("-rf"),
// path separators in names, and whitespace that `mount -p` cannot represent.

const NAME = /^[A-Za-z0-9_-]+$/;
const SERVICE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** qchroot's container-name rule: alphanumerics, dash, underscore; not all digits. */
export function assertContainerName(name: string): string {
  if (!NAME.test(name) || /^\d+$/.test(name) || name.startsWith('-')) {
    throw new InvalidArgumentError(`invalid container name ${JSON.stringify(name)}: use letters, digits, '-' and '_' (not all digits, not starting with '-')`);
  }
  return name;
}

/** An rc.d script name; never starts with '-' or '.', so it is neither an option nor a relative path. */
export function assertServiceName(service: string): string {
  if (!SERVICE.test(service) || service.length > 128) {
    throw new InvalidArgumentError(`invalid service name ${JSON.stringify(service)}: use letters, digits, '_', '.', '-' (not starting with '.' or '-')`);
  }
  return service;
}

/**
 * An absolute host path without whitespace, control characters, or `.`/`..`
 * components, so a string comparison with the mount table is meaningful.
 */
export function assertHostPath(path: string, what = 'path'): string {
  if (!path.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(path)) {
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(path)}: must be absolute, without whitespace`);
  }
  const parts = path.split('/').slice(1);
  if (path !== '/' && parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(path)}: must be normalised (no '.', '..', '//' or trailing '/')`);
  }
  return path;
}

/** http(s) URL without whitespace, for fetch(1). */
export function assertUrl(url: string): string {
  if (!/^https?:\/\/[^\s\x00-\x1f\x7f]+$/.test(url)) {
    throw new InvalidArgumentError(`invalid mirror URL ${JSON.stringify(url)}: must be http(s) without whitespace`);
  }
  return url.replace(/\/+$/, '');
}

/** Environment for a command inside a container: shell-safe names, no NUL in values. */
export function assertEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || v.includes('\0')) {
      throw new InvalidArgumentError(`invalid environment variable ${JSON.stringify(k)}`);
    }
    out[k] = v;
  }
  return out;
}

/** Process ids to signal: positive integers, never 0 or 1 (init) and never a process group. */
export function assertPids(pids: readonly number[]): number[] {
  for (const p of pids) {
    if (!Number.isSafeInteger(p) || p < 2) throw new InvalidArgumentError(`invalid pid ${p}`);
  }
  return [...new Set(pids)];
}

/** SIGTERM -> TERM, for kill(1). */
export function signalName(signal: NodeJS.Signals): string {
  if (!/^SIG[A-Z0-9]+$/.test(signal)) throw new InvalidArgumentError(`invalid signal ${JSON.stringify(signal)}`);
  return signal.slice(3);
}
