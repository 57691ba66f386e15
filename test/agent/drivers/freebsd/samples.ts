import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real FreeBSD captures live in `shared/freebsd-samples`, beside the repo
 * (/work/shared) or inside it. Tests run compiled from dist/test/…, so walk up
 * from this file rather than assuming a depth.
 */
export function samplesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'shared', 'freebsd-samples');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no shared/freebsd-samples above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function sample(file: string): string {
  return readFileSync(join(samplesDir(), file), 'utf8');
}

/**
 * The data lines of one block of a sample file: after the first line containing
 * `marker` (and any comment lines right after it), up to a blank or comment line.
 */
export function block(text: string, marker: string): string[] {
  const lines = text.split('\n');
  let i = lines.findIndex((l) => l.includes(marker));
  if (i < 0) throw new Error(`marker ${JSON.stringify(marker)} not found`);
  i++;
  while (i < lines.length && lines[i]!.startsWith('#')) i++;
  const out: string[] = [];
  for (; i < lines.length && lines[i] !== '' && !lines[i]!.startsWith('#'); i++) out.push(lines[i]!);
  if (out.length === 0) throw new Error(`empty block after ${JSON.stringify(marker)}`);
  return out;
}
