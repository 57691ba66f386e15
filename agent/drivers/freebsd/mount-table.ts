import type { MountEntry } from '../host-driver.js';

/** What `mount -p` said, including lines that could not be split unambiguously. */
export interface MountTable {
  readonly entries: MountEntry[];
  /**
   * Lines that did not split into exactly six fields: a device or mount point
   * with whitespace (mount -p does not escape it). Callers treat such a line as
   * possibly under any path it mentions, rather than guessing where it belongs.
   */
  readonly unparsable: string[];
}

/**
 * `mount -p` (fstab format from putfsent()): `device mntpoint fstype options dump pass`,
 * fields padded with 1-3 TABs to 24 columns or ONE space when 24+ chars long.
 * Splitting on any run of whitespace handles both.
 */
export function parseMountP(text: string): MountTable {
  const entries: MountEntry[] = [];
  const unparsable: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const [source, target, fstype, opts, dump, pass] = f;
    if (f.length !== 6 || !source || !target || !fstype || !opts || !/^\d+$/.test(dump ?? '') || !/^\d+$/.test(pass ?? '')) {
      unparsable.push(line);
      continue;
    }
    entries.push({ source, target, fstype, options: opts.split(',') });
  }
  return { entries, unparsable };
}

/**
 * `mount -p --libxo json` (14.0+): {"mount":{"fstab":[{device,mntpoint,fstype,opts,dump,pass}]}}.
 * Reconstructed from sbin/mount/mount.c, not from a capture, so anything
 * unexpected returns undefined and the caller falls back to text.
 */
export function parseMountLibxo(json: string): MountTable | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return undefined;
  }
  const fstab = (doc as { mount?: { fstab?: unknown } } | null)?.mount?.fstab;
  if (!Array.isArray(fstab)) return undefined;
  const entries: MountEntry[] = [];
  for (const row of fstab as unknown[]) {
    const r = row as Record<string, unknown> | null;
    const { device, mntpoint, fstype, opts } = r ?? {};
    if (typeof device !== 'string' || typeof mntpoint !== 'string' || typeof fstype !== 'string') return undefined;
    const options = typeof opts === 'string' ? opts.split(',') : Array.isArray(opts) && opts.every((o) => typeof o === 'string') ? (opts as string[]) : undefined;
    if (!options) return undefined;
    entries.push({ source: device, target: mntpoint, fstype, options });
  }
  // A live system always has "/" mounted: an empty list means a shape we do not know.
  if (entries.length === 0) return undefined;
  // JSON escapes whitespace, so nothing is ambiguous here.
  return { entries, unparsable: [] };
}
