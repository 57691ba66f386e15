import { readFileSync } from 'node:fs';
import { fixturePath } from '../../../support/repo-root.js';

/** A real FreeBSD capture from test/fixtures/freebsd (its README says where each came from). */
export function sample(file: string): string {
  return readFileSync(fixturePath('freebsd', file), 'utf8');
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
