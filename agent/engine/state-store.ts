import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InternalError } from '../errors.js';

export type PendingOp = 'create' | 'start' | 'stop' | 'delete' | 'console';

/** qchroot's per-container admin file: what was asked of the container. */
export interface ContainerRecord {
  readonly version: 1;
  readonly name: string;
  /** Configured services (qchroot config), in start order. */
  readonly services: readonly string[];
  readonly createdAt: string;
  readonly baseRelease: string;
  /** What the operator last asked for. */
  readonly desired: 'stopped' | 'running';
  /** Services the last start started; what stop stops and list probes. */
  readonly startedServices: readonly string[];
  /** Set before a multi-step change and cleared after it: recovery's clue after a crash. */
  readonly pending?: { readonly op: PendingOp; readonly since: string; readonly requestId?: string };
}

/**
 * One small JSON file per container, written atomically (temp file, fsync,
 * rename, fsync of the directory) so a crash leaves the old or the new file.
 */
export class StateStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  read(name: string): ContainerRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.file(name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch (e) {
      throw new InternalError(`state file ${this.file(name)} is corrupt: ${(e as Error).message}`);
    }
  }

  /** Names of every container with a state file, ascending. */
  names(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort(compareNames);
  }

  write(rec: ContainerRecord): void {
    const target = this.file(rec.name);
    const tmp = join(this.dir, `.${rec.name}.json.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(rec, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    this.syncDir();
  }

  remove(name: string): void {
    try {
      unlinkSync(this.file(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.syncDir();
  }

  private syncDir(): void {
    const fd = openSync(this.dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  }
}

/** qchroot lists in ascending alphanumeric order of the name. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
