import { constants, lstatSync, mkdirSync, readdirSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { syncDirectory, writeFileAtomic } from '../../common/atomic-write.js';
import { eachLimited } from '../worker-pool.js';
import { FailedPreconditionError } from '../errors.js';
import { isValidContainerName, isValidServiceName } from './names.js';
import type { ContainerConfig } from '../drivers/container-config.js';
import { configFromRecord } from './container-config-check.js';

export type PendingOp = 'create' | 'start' | 'stop' | 'delete' | 'console';
const PENDING_OPS: readonly PendingOp[] = ['create', 'start', 'stop', 'delete', 'console'];

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
  /** How it runs; a file written before isolation existed has none, and is read as chroot. */
  readonly config: ContainerConfig;
  /** Set before a multi-step change and cleared after it: recovery's clue after a crash. */
  readonly pending?: { readonly op: PendingOp; readonly since: string; readonly requestId?: string };
}

/** What a container's state file holds: a record, nothing, or something unusable (with why). */
export type StateRead =
  | { readonly kind: 'ok'; readonly record: ContainerRecord }
  | { readonly kind: 'missing' }
  | { readonly kind: 'corrupt'; readonly reason: string };

/** A state file that cannot be used: the container is `broken`, and only stop and delete work on it. */
export class CorruptStateError extends FailedPreconditionError {
  constructor(readonly container: string, readonly file: string, readonly why: string) {
    super(
      `Error; the state file of ${container} (${file}) is unusable: ${why}. ` +
        `Delete the container (qfleet delete ${container}) or restore the file from a backup.`,
      { reason: 'broken', fields: { container, state: 'broken' } },
    );
  }
}

/** A state file is a few hundred bytes; anything far larger is not one of ours. */
export const MAX_STATE_FILE_BYTES = 64 * 1024;

/**
 * A state file's identity and last change, as lstat/fstat give them. Numbers,
 * not bigints: a bigint lstat made some 1.4 kB of objects per file, at every
 * List for every container. A time in ms as a double still tells apart two
 * changes a quarter of a microsecond apart; two inode numbers above 2^53 that
 * differ only in their lowest bits, with the same size and times, would not be.
 */
interface FileStamp {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/**
 * A file whose last change (ctime) is younger than this when it is read is
 * read again next time: a change within the same clock tick of the file
 * system could leave every stamp alike (the "racy" case git's index has).
 * Any later change sets ctime to a time past the read, so it shows.
 */
export const STATE_CACHE_SETTLE_MS = 2000;

/**
 * With a watch on the directory (watch()), how long List trusts it alone to
 * say which files changed; then it stats every file again. That bounds what
 * the watch cannot tell: an event lost when inotify's queue overflows (libuv
 * drops the overflow notice), a state directory replaced under the watch.
 */
export const STATE_WATCH_RECHECK_MS = 10_000;
/** Names heard of between two Lists, at most; beyond, the next List stats every file. */
const MAX_TOUCHED = 10_000;

/** inspectAll: kept reads checked per event-loop turn (an lstat of a cached inode is a few microseconds). */
const STAT_SLICE = 64;
/** inspectAll: files read at once (open, stat, read, close each) when their stamp changed. */
const READS_IN_FLIGHT = 8;

/**
 * One small JSON file per container, written atomically (common/atomic-write.ts:
 * temp file, fsync, rename, fsync of the directory) so a crash leaves the old or the new file.
 * All file I/O is asynchronous: an fsync never holds the agent's event loop.
 * A file that is empty, truncated, not JSON or of the wrong shape is reported
 * as corrupt with the reason, never thrown past the container it belongs to.
 *
 * What a file was read as is kept, with its stamp (device, inode, size, mtime,
 * ctime), and used again while one lstat shows the same stamp: a List reads
 * every file, and open+read+parse of a thousand of them was most of its time.
 * A file changed, replaced or removed behind the agent's back shows as a
 * different stamp and is read again; the agent's own writes drop the entry.
 * With a watch on the directory (watch(), the agent's), a List stats only the
 * files the watch heard of, and every file every STATE_WATCH_RECHECK_MS.
 */
export class StateStore {
  private readonly cache = new Map<string, { readonly stamp: FileStamp; readonly read: StateRead }>();
  private watcher: FSWatcher | undefined;
  /** Containers whose file the watch saw change since inspectAll last looked. */
  private readonly touched = new Set<string>();
  /** The watch could not say which file changed (or has just started): the next inspectAll stats them all. */
  private touchedAll = true;
  private lastFullCheck = 0;
  /**
   * names() as last read, while the watch is on (kept only then; unwatch()
   * drops it): any event of a state file (or one the watch could not name)
   * and the agent's own writes drop it, and it is read again after
   * STATE_WATCH_RECHECK_MS anyway.
   */
  private listing: { readonly names: readonly string[]; readonly at: number } | undefined;
  /** The directory with one trailing slash: fileOf is a concatenation (List asks it for every container, path.join cost more than the lstat). */
  private readonly prefix: string;

  /**
   * `now`: the wall clock, which file times are compared with; `monotonic`:
   * for STATE_WATCH_RECHECK_MS, which a clock stepped back must not stretch.
   */
  constructor(readonly dir: string, private readonly now: () => number = Date.now, private readonly monotonic: () => number = () => performance.now()) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.prefix = join(dir, 'x').slice(0, -1);
  }

  /** The file of a container (a valid name: one path component, so joining normalises nothing). */
  fileOf(name: string): string {
    return `${this.prefix}${name}.json`;
  }

  async inspect(name: string): Promise<StateRead> {
    const file = this.fileOf(name);
    const hit = this.cache.get(name);
    if (hit) {
      // Gone or unreadable: the full read below says which.
      const st = await lstat(file).catch(() => undefined);
      if (st && sameStamp(hit.stamp, st)) return hit.read;
      this.cache.delete(name);
    }
    const readAt = this.now();
    let stamp: FileStamp;
    let text: string;
    try {
      // O_NOFOLLOW: a state file is never a symlink; one that is gets reported, not followed.
      const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const st = await fh.stat();
        if (!st.isFile()) return { kind: 'corrupt', reason: 'it is not a regular file' };
        if (st.size > MAX_STATE_FILE_BYTES) return { kind: 'corrupt', reason: `it is ${st.size} bytes, more than a state file's ${MAX_STATE_FILE_BYTES}` };
        // Stamped before the read: a change during it makes the next stamp differ.
        stamp = stampOf(st);
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kind: 'missing' };
      if (code === 'ELOOP') return { kind: 'corrupt', reason: 'it is a symlink' };
      return { kind: 'corrupt', reason: `it cannot be read (${code ?? (e as Error).message})` };
    }
    const parsed = parseRecord(text, name);
    const read: StateRead = typeof parsed === 'string' ? { kind: 'corrupt', reason: parsed } : { kind: 'ok', record: parsed };
    if (readAt - STATE_CACHE_SETTLE_MS > stamp.ctimeMs) {
      this.cache.set(name, { stamp, read });
      // A change heard while this read was under way may already have been taken by an inspectAll that
      // found nothing kept yet: the next one stats this file, so an older read is never trusted on.
      if (this.watcher) this.touch(name);
    }
    return read;
  }

  /**
   * Watches the directory (inotify), so that inspectAll stats only the files
   * it heard of since its last call, instead of every file (a thousand
   * lstats were some 3 ms of each List): the agent's own writes, and anyone
   * else's, in place or by rename. Every STATE_WATCH_RECHECK_MS it stats them
   * all anyway. Linux only: a kqueue watch of a directory (FreeBSD) does not
   * report a file written in place. Without a watch (it could not be made:
   * out of inotify instances, say), every List stats every file.
   */
  watch(): void {
    if (this.watcher || process.platform !== 'linux') return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, file) => this.heard(file));
    } catch {
      return;
    }
    this.watcher.on('error', () => this.unwatch());
    this.touchedAll = true;
  }

  /** Ends the watch (the agent's shutdown; a watch that failed): every List stats every file again. */
  unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.dropListing();
  }

  private dropListing(): void {
    this.listing = undefined;
  }

  /** What the watch reports: a file in the directory changed, appeared or went (its name, when inotify gives one). */
  private heard(file: string | Buffer | null): void {
    const f = file === null ? '' : String(file);
    // A temporary file's rename over NAME.json is an event of NAME.json; events of other files say nothing.
    if (f.endsWith('.json') && !f.startsWith('.')) {
      this.touch(f.slice(0, -'.json'.length));
      this.dropListing();
    } else if (!f) {
      this.touchedAll = true;
      this.dropListing();
    }
  }

  /** The next inspectAll stats this container's file. */
  private touch(name: string): void {
    this.touched.add(name);
    if (this.touched.size > MAX_TOUCHED) {
      this.touched.clear();
      this.touchedAll = true;
    }
  }

  /**
   * inspect() of many files, for List. The kept reads are checked with
   * lstatSync, STAT_SLICE files per event-loop turn: a thousand asynchronous
   * lstats cost 15-50 ms of thread-pool round trips on a busy 2-core host,
   * the same synchronously 2-6 ms, and a slice never holds the loop for long.
   * Only files the agent has read before are stat'ed this way (their inodes
   * are in memory); the rest, and any whose stamp moved, are read as inspect() does.
   */
  async inspectAll(names: readonly string[]): Promise<Map<string, StateRead>> {
    const out = new Map<string, StateRead>();
    const toRead: string[] = [];
    // What the watch heard is taken now: a change heard during this call is looked at by the next one.
    const now = this.monotonic();
    const trusted = this.watcher !== undefined && !this.touchedAll && now - this.lastFullCheck < STATE_WATCH_RECHECK_MS;
    const touched = new Set(this.touched);
    this.touched.clear();
    if (!trusted) {
      this.touchedAll = false;
      this.lastFullCheck = now;
    }
    let statted = 0;
    for (const name of names) {
      const hit = this.cache.get(name);
      if (hit && trusted && !touched.has(name)) {
        out.set(name, hit.read);
        continue;
      }
      if (hit) {
        if (++statted % STAT_SLICE === 0) await nextTurn();
        let st: Stats | undefined;
        try {
          st = lstatSync(this.fileOf(name), { throwIfNoEntry: false });
        } catch {
          st = undefined; // unreadable: the full read says why
        }
        if (st && sameStamp(hit.stamp, st)) {
          out.set(name, hit.read);
          continue;
        }
        this.cache.delete(name);
      }
      toRead.push(name);
    }
    await eachLimited(toRead, READS_IN_FLIGHT, async (n) => { out.set(n, await this.inspect(n)); });
    return out;
  }

  /** The record, undefined if there is none; a corrupt file throws CorruptStateError. */
  async read(name: string): Promise<ContainerRecord | undefined> {
    const r = await this.inspect(name);
    if (r.kind === 'corrupt') throw new CorruptStateError(name, this.fileOf(name), r.reason);
    return r.kind === 'ok' ? r.record : undefined;
  }

  /**
   * Names of every container with a state file (usable or not), ascending;
   * files with invalid names are left out. With a watch, the listing is kept
   * until the watch hears of a state file or STATE_WATCH_RECHECK_MS pass (a
   * readdir per List was a tenth of an agent's List at three containers).
   * Read synchronously, as Layout.containerDirs() is and for its reason.
   */
  async names(): Promise<string[]> {
    const now = this.monotonic();
    const kept = this.listing;
    if (kept && now - kept.at < STATE_WATCH_RECHECK_MS) return [...kept.names];
    const names = readdirSync(this.dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => f.slice(0, -'.json'.length))
      .filter(isValidContainerName)
      .sort(compareNames);
    if (this.watcher) this.listing = { names: [...names], at: now };
    return names;
  }

  async write(rec: ContainerRecord): Promise<void> {
    this.cache.delete(rec.name);
    try {
      await writeFileAtomic(this.fileOf(rec.name), `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
    } finally {
      // Not left to the watch's event, which may come after the next List.
      this.dropListing();
    }
  }

  async remove(name: string): Promise<void> {
    this.cache.delete(name);
    try {
      await unlink(this.fileOf(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    } finally {
      this.dropListing();
    }
    await syncDirectory(this.dir);
  }

  /** Temp files a crash left between write and rename: never a container's state, safe to drop. */
  async removeStaleTemps(): Promise<string[]> {
    const stale = (await readdir(this.dir)).filter((f) => f.startsWith('.') && f.endsWith('.tmp'));
    for (const f of stale) await unlink(join(this.dir, f)).catch(() => undefined);
    return stale;
  }
}

function stampOf(st: Stats): FileStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameStamp(a: FileStamp, st: Stats): boolean {
  // lstat: a file replaced by a symlink has another inode, so it is read (and refused) again.
  return st.isFile() && a.ino === st.ino && a.dev === st.dev && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function isTime(v: unknown): v is string {
  return typeof v === 'string' && ISO_TIME.test(v) && !Number.isNaN(Date.parse(v));
}

function isNameList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length <= 256 && v.every((s) => typeof s === 'string' && isValidServiceName(s));
}

/**
 * A state file's text as a record, or why it is not one. Every field is
 * checked: a record of the wrong shape would otherwise fail later, deep in a
 * start or stop, with a message that names neither the file nor the field.
 */
export function parseRecord(text: string, name: string): ContainerRecord | string {
  if (text.trim() === '') return 'it is empty';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    // The parser quotes the input: keep what reaches a terminal printable and short.
    const why = (e as Error).message.replace(/[^\x20-\x7e]/g, '?');
    return `it is not JSON (${why.length > 120 ? `${why.slice(0, 120)}...` : why})`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'it is not a JSON object';
  const o = v as Record<string, unknown>;
  const bad = (field: string, want: string) => `field "${field}" is ${JSON.stringify(o[field]) ?? 'missing'}, not ${want}`;
  if (o.version !== 1) return bad('version', 'version 1');
  if (o.name !== name) return bad('name', `"${name}" (the file's name)`);
  if (!isNameList(o.services)) return bad('services', 'a list of service names');
  if (!isTime(o.createdAt)) return bad('createdAt', 'an RFC 3339 time');
  if (typeof o.baseRelease !== 'string' || o.baseRelease.length > 256) return bad('baseRelease', 'a release string');
  if (o.desired !== 'stopped' && o.desired !== 'running') return bad('desired', '"stopped" or "running"');
  if (!isNameList(o.startedServices)) return bad('startedServices', 'a list of service names');
  const config = configFromRecord(o.config);
  if (typeof config === 'string') return config;
  if (o.pending !== undefined) {
    const p = o.pending as Record<string, unknown> | null;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) return bad('pending', 'an object');
    if (!PENDING_OPS.includes(p.op as PendingOp)) return `field "pending.op" is ${JSON.stringify(p.op) ?? 'missing'}, not one of ${PENDING_OPS.join(', ')}`;
    if (!isTime(p.since)) return `field "pending.since" is ${JSON.stringify(p.since) ?? 'missing'}, not an RFC 3339 time`;
    if (p.requestId !== undefined && (typeof p.requestId !== 'string' || p.requestId.length > 256)) return 'field "pending.requestId" is not a string';
  }
  const rec: ContainerRecord = {
    version: 1,
    name,
    services: o.services,
    createdAt: o.createdAt,
    baseRelease: o.baseRelease,
    desired: o.desired,
    startedServices: o.startedServices,
    config,
  };
  if (!o.pending) return rec;
  const p = o.pending as { op: PendingOp; since: string; requestId?: string };
  return { ...rec, pending: { op: p.op, since: p.since, ...(p.requestId !== undefined ? { requestId: p.requestId } : {}) } };
}

/** qchroot lists in ascending alphanumeric order of the name. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
