/** One line of a release MANIFEST. */
export interface ManifestEntry {
  readonly file: string;
  readonly sha256: string;
  readonly nfiles: number;
  readonly dist: string;
  readonly description: string;
  /** Whether bsdinstall selects the dist by default. */
  readonly selected: boolean;
}

/**
 * MANIFEST (release/scripts/make-manifest.sh): one TAB between
 * `file sha256 nfiles dist "description" on|off`. Lines that do not fit are
 * skipped: the caller looks up the dist it needs and fails if it is absent.
 */
export function parseManifest(text: string): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split('\t');
    if (f.length !== 6) continue;
    const [file, sha, n, dist, desc, onoff] = f as [string, string, string, string, string, string];
    if (!/^[0-9a-f]{64}$/i.test(sha) || !/^\d+$/.test(n) || (onoff !== 'on' && onoff !== 'off')) continue;
    out.push({
      file,
      sha256: sha.toLowerCase(),
      nfiles: Number(n),
      dist,
      description: desc.replace(/^"(.*)"$/, '$1'),
      selected: onoff === 'on',
    });
  }
  return out;
}
