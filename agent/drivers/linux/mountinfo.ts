import type { MountEntry } from '../host-driver.js';

/** One line of /proc/<pid>/mountinfo (see proc(5)), with escapes decoded. */
export interface MountInfoEntry {
  readonly mountId: number;
  readonly parentId: number;
  /** "major:minor" of the filesystem; bind mounts of one filesystem share it. */
  readonly device: string;
  /** Path inside the filesystem that is the root of this mount (a bind source shows here). */
  readonly root: string;
  readonly mountPoint: string;
  readonly mountOptions: readonly string[];
  /** shared:N, master:N, propagate_from:N, unbindable. */
  readonly optionalFields: readonly string[];
  readonly fstype: string;
  readonly source: string;
  readonly superOptions: readonly string[];
}

/**
 * The kernel escapes space, tab, newline and backslash in paths as \ooo octal
 * (show_mountinfo → seq_escape " \t\n\\"). Anything else stays as it is.
 */
export function unescapeMountField(field: string): string {
  if (!field.includes('\\')) return field;
  // Decode bytes, not UTF-16 units, so an escaped byte inside a UTF-8 name stays valid.
  const bytes: number[] = [];
  const raw = Buffer.from(field, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x5c && i + 3 < raw.length && isOctal(raw[i + 1]) && isOctal(raw[i + 2]) && isOctal(raw[i + 3])) {
      bytes.push(((raw[i + 1]! - 48) << 6) | ((raw[i + 2]! - 48) << 3) | (raw[i + 3]! - 48));
      i += 3;
    } else {
      bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isOctal(b: number | undefined): boolean {
  return b !== undefined && b >= 48 && b <= 55;
}

/** Parses the whole file; malformed lines are an error (the kernel does not write them). */
export function parseMountinfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(parseMountinfoLine(line));
  }
  return out;
}

export function parseMountinfoLine(line: string): MountInfoEntry {
  const f = line.split(' ');
  const sep = f.indexOf('-', 6);
  if (f.length < 10 || sep < 0 || f.length < sep + 3) throw new Error(`malformed mountinfo line: ${JSON.stringify(line)}`);
  const mountId = Number(f[0]);
  const parentId = Number(f[1]);
  if (!Number.isInteger(mountId) || !Number.isInteger(parentId)) throw new Error(`malformed mountinfo line: ${JSON.stringify(line)}`);
  return {
    mountId,
    parentId,
    device: f[2]!,
    root: unescapeMountField(f[3]!),
    mountPoint: unescapeMountField(f[4]!),
    mountOptions: splitOptions(f[5]!),
    optionalFields: f.slice(6, sep),
    fstype: unescapeMountField(f[sep + 1]!),
    source: unescapeMountField(f[sep + 2]!),
    // Super options never contain spaces, but join defensively in case a future kernel adds fields.
    superOptions: splitOptions(f.slice(sep + 3).join(' ')),
  };
}

function splitOptions(s: string): string[] {
  return s === '' ? [] : s.split(',');
}

/** The driver-neutral view: options are the per-mount options followed by the superblock's. */
export function toMountEntry(e: MountInfoEntry): MountEntry {
  const options = [...e.mountOptions];
  for (const o of e.superOptions) if (!options.includes(o)) options.push(o);
  return { source: e.source, target: e.mountPoint, fstype: e.fstype, options };
}
