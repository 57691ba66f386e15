import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { writeFileAtomicSync } from '../../common/atomic-write.js';

/** A directory only its owner can enter (created 0700; an existing one is tightened to 0700). */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** A key: written atomically, mode 0600. */
export function writeSecretFile(path: string, data: string): void {
  writeFileAtomicSync(path, data, { mode: 0o600 });
}

/** A certificate: written atomically, mode 0644. */
export function writePublicFile(path: string, data: string): void {
  writeFileAtomicSync(path, data, { mode: 0o644 });
}

export function anyExists(paths: readonly string[]): string[] {
  return paths.filter((p) => existsSync(p));
}
