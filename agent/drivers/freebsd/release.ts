/** A FreeBSD release string as uname -r / freebsd-version print it. */
export interface FreeBSDRelease {
  /** "14.1" */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  /** RELEASE, STABLE, CURRENT, RC2, BETA1, ALPHA3, PRERELEASE … */
  readonly branch: string;
  /** The -pN patch level, 0 when absent. */
  readonly patch: number;
}

const RELEASE = /^(\d+)\.(\d+)-([A-Z]+\d*)(?:-p(\d+))?$/;

export function parseRelease(text: string): FreeBSDRelease | undefined {
  const m = RELEASE.exec(text.trim());
  if (!m) return undefined;
  return { version: `${m[1]}.${m[2]}`, major: Number(m[1]), minor: Number(m[2]), branch: m[3]!, patch: m[4] ? Number(m[4]) : 0 };
}

/** "14.1-RELEASE-p5" -> "14.1-RELEASE": the release directory on download.freebsd.org. */
export function stripPatchLevel(release: string): string {
  return release.trim().replace(/-p\d+$/, '');
}

/** First line of a one-value output (uname -r, freebsd-version -u). */
export function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}

/** `freebsd-version -kru` prints kernel, running kernel, userland (in that order, for the flags given). */
export function parseFreebsdVersionKru(text: string): { kernel: string; running: string; userland: string } | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length !== 3) return undefined;
  return { kernel: lines[0]!, running: lines[1]!, userland: lines[2]! };
}

/**
 * `uname -a`: sysname nodename release version… machine. The version field has
 * spaces (and may or may not carry a releng/…-nNNN-hash), so machine is the last token.
 */
export function parseUnameA(line: string): { sysname: string; nodename: string; release: string; machine: string } | undefined {
  const f = line.trim().split(/\s+/);
  if (f.length < 5) return undefined;
  return { sysname: f[0]!, nodename: f[1]!, release: f[2]!, machine: f[f.length - 1]! };
}

/**
 * Why a base's userland (its freebsd-version -u) is behind the host's running
 * kernel (uname -r), or undefined when it is not: the same release at a lower
 * -pN misses security fixes the host has. A different release is qchroot's
 * "same release" rule, reported elsewhere; unparsable strings say nothing.
 */
export function baseBehindKernel(kernel: string, base: string): string | undefined {
  const k = parseRelease(kernel);
  const b = parseRelease(base);
  if (!k || !b || k.version !== b.version || k.branch !== b.branch || b.patch >= k.patch) return undefined;
  return `base ${base.trim()} is behind the running kernel ${kernel.trim()}: run qfleet install to bring it to the host's patch level`;
}
