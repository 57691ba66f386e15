import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

/** A directory only its owner can enter (created 0700; an existing one is tightened to 0700). */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Writes a file atomically (temp file in the same directory, fsync, rename) with the given mode. */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export function writeSecretFile(path: string, data: string): void {
  writeFileAtomic(path, data, 0o600);
}

export function writePublicFile(path: string, data: string): void {
  writeFileAtomic(path, data, 0o644);
}

export function anyExists(paths: readonly string[]): string[] {
  return paths.filter((p) => existsSync(p));
}
