import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The repository's top directory: the nearest directory above this file whose
 * package.json names qfleet. Tests run compiled from dist/test/…, so they walk up
 * rather than assume a depth, and stop at the repository: nothing beside it is read.
 */
export function repoRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 32; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'qfleet') return (cached = dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`no qfleet package.json above ${fileURLToPath(import.meta.url)}`);
}

/** A file under test/fixtures, read from the source tree (fixtures are not copied into dist). */
export function fixturePath(...parts: string[]): string {
  return join(repoRoot(), 'test', 'fixtures', ...parts);
}
