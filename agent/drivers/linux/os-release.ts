/**
 * os-release(5): KEY=value lines, values optionally quoted with "…" or '…'
 * (with backslash escapes inside double quotes), # comments.
 */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    out[m[1]!] = unquote(m[2]!);
  }
  return out;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\([\\"$`])/g, '$1');
  }
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/**
 * The release as qfleet spells it on Linux: "ID VERSION_ID" ("debian 12").
 * Distributions without VERSION_ID (Debian testing, Arch) fall back to
 * VERSION_CODENAME, then BUILD_ID, so the value is still comparable.
 */
export function releaseFromOsRelease(fields: Readonly<Record<string, string>>): string | undefined {
  const id = fields.ID ?? 'linux';
  const version = fields.VERSION_ID ?? fields.VERSION_CODENAME ?? fields.BUILD_ID;
  if (!version) return fields.ID ? id : undefined;
  return `${id} ${version}`;
}
