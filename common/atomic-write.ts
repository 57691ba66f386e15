import { chmodSync, closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Atomic replacement of a file: the data goes to a temp file in the same
 * directory (created exclusively, never through a symlink, with `mode`
 * exactly, whatever the umask), which is fsync'ed, renamed over the file, and
 * the directory fsync'ed, so a crash leaves the old file or the new one, never
 * a part of either. The agent's state store, its TLS key and the controller's
 * PKI all write this way.
 *
 * The temp file is `.NAME.PID.N.tmp` beside NAME: hidden, and recognisable by
 * whoever cleans up what a crash left (the state store's removeStaleTemps).
 */
export interface AtomicWriteOptions {
  /** The file's permission bits (default 0600: most of what is written this way is private). */
  readonly mode?: number;
}

let seq = 0;

/** The temp file a write of `path` goes through first. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${seq++}.tmp`);
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Asynchronous: for the agent, whose event loop an fsync must never hold. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o600;
  const tmp = tempPathFor(path);
  const fh = await open(tmp, CREATE_FLAGS, mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDirectory(dirname(path));
}

/** Synchronous: for the CLI paths (pki init, tls-request) that do nothing else meanwhile. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const mode = opts.mode ?? 0o600;
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, CREATE_FLAGS, mode);
  let closed = false;
  try {
    writeFileSync(fd, data);
    chmodSync(tmp, mode);
    fsyncSync(fd);
    closeSync(fd);
    closed = true;
    renameSync(tmp, path);
  } catch (e) {
    if (!closed) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* not there: nothing to clean */ }
    throw e;
  }
  syncDirectorySync(dirname(path));
}

/** fsync of a directory: makes a rename or unlink in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try { await fh.sync(); } finally { await fh.close(); }
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
