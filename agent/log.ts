import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { pino, type DestinationStream, type Logger as Pino } from 'pino';
import sonicBoom, { type SonicBoom } from 'sonic-boom';

// sonic-boom is CommonJS whose named exports Node cannot see; its module object carries the class as .default too.
const Boom = sonicBoom.default;

export type LogFields = Record<string, unknown>;
export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries `fields` (a request's id, say). */
  child(fields: LogFields): Logger;
  /** Resolves once every line logged so far is written (call before process.exit: a write in flight is lost by it). */
  flushed?(): Promise<void>;
}

/** The agent's logger: also reopens its file (SIGHUP, after a rotation) and writes what is buffered at exit. */
export interface AgentLogger extends Logger {
  reopen(): void;
  flushSync(): void;
}

/** Bytes of log lines buffered for a slow file; beyond this new lines are dropped (and counted). */
const MAX_BUFFERED_BYTES = 1 << 20;

/**
 * The logger of the request being served, in that request's asynchronous
 * continuation: the engine logs through the agent's one logger, and its lines
 * still carry the request's id.
 */
const current = new AsyncLocalStorage<PinoLogger>();

/**
 * Serves `fn` as one request: its lines (the server's and, through
 * AsyncLocalStorage, the engine's) carry `requestId`, the caller's or a new one,
 * and `rpc`, the method called (`method` is already a field of Install's lines).
 */
export function inRequest<T>(log: Logger, requestId: string | undefined, rpc: string, fn: (log: Logger, requestId: string) => T): T {
  const id = requestId || randomUUID();
  const child = log.child({ requestId: id, rpc });
  return child instanceof PinoLogger ? current.run(child, () => fn(child, id)) : fn(child, id);
}

class PinoLogger implements Logger {
  constructor(
    private readonly pino: Pino,
    /** Fields every line of this logger carries already: not repeated from a line's own fields. */
    private readonly bound: LogFields,
    private readonly root: boolean,
  ) {}

  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }

  child(fields: LogFields): Logger {
    return new PinoLogger(this.pino.child(fields), { ...this.bound, ...fields }, false);
  }

  private write(level: 'info' | 'warn' | 'error', msg: string, fields?: LogFields): void {
    // The agent's root logger, used inside a request, writes as that request's logger.
    const via = this.root ? (current.getStore() ?? this) : this;
    via.pino[level](via.own(fields), msg);
  }

  private own(fields: LogFields | undefined): LogFields {
    if (!fields) return {};
    let out: LogFields | undefined;
    for (const k of Object.keys(fields)) {
      if (k in this.bound && this.bound[k] === fields[k]) (out ??= { ...fields }), delete out[k];
    }
    return out ?? fields;
  }
}

/**
 * One JSON object per line, through pino: to stderr (synchronously, as
 * process.stderr was written) and, if given, appended to a file by sonic-boom
 * asynchronously, off the event loop. The file stays open: after a rotation
 * by rename, reopen() (on SIGHUP) carries on in a new file. No worker-thread
 * transport: the agent runs from one esbuild bundle. Failures to write the
 * file are swallowed: logging must never take the agent down.
 */
export function jsonLogger(opts: { file?: string; stderr?: boolean } = {}): AgentLogger {
  const streams: DestinationStream[] = [];
  if (opts.stderr !== false) {
    const stderr = new Boom({ fd: 2, sync: true });
    stderr.on('error', () => undefined);
    streams.push(stderr);
  }
  const file = opts.file ? new LogFile(opts.file) : undefined;
  if (file) streams.push(file);
  const log = new PinoLogger(
    pino(
      {
        level: 'info',
        base: undefined,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      streams.length === 1 ? streams[0]! : pino.multistream(streams.map((stream) => ({ stream }))),
    ),
    {},
    true,
  );
  if (!file) return Object.assign(log, { reopen: () => undefined, flushSync: () => undefined, flushed: async () => undefined });
  file.onDropped = (n) => log.warn('log lines dropped while the log file was slow', { dropped: n });
  process.once('exit', () => file.flushSync());
  return Object.assign(log, { flushed: () => file.flushed(), reopen: () => file.reopen(), flushSync: () => file.flushSync() });
}

/**
 * The log file: a sonic-boom stream (pino's own destination, without the
 * exit hook pino.destination adds, which throws when the file never opened),
 * counting the bytes handed to it and not yet written, so flushed() can wait
 * for exactly those.
 */
class LogFile implements DestinationStream {
  private boom: SonicBoom;
  /** The file could not be opened: lines are lost until a reopen succeeds. */
  private failed = false;
  private unwritten = 0;
  private dropped = 0;
  private waiting: Array<() => void> = [];
  onDropped: (n: number) => void = () => undefined;

  constructor(private readonly path: string) {
    this.boom = this.open();
  }

  write(line: string): void {
    if (this.failed) return;
    this.unwritten += Buffer.byteLength(line);
    try {
      this.boom.write(line);
    } catch {
      this.settle(this.unwritten);
    }
  }

  /** Resolves once every line handed over so far is written (or failed to get there). */
  flushed(): Promise<void> {
    return this.unwritten === 0 ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }

  reopen(): void {
    try {
      if (this.failed) this.boom = this.open();
      else this.boom.reopen();
    } catch { /* see jsonLogger */ }
  }

  /** Writes what is buffered synchronously (at process exit: nothing is awaited after it). */
  flushSync(): void {
    try {
      this.boom.flushSync();
      this.settle(this.unwritten);
    } catch { /* not open (yet), or the disk is gone: see jsonLogger */ }
  }

  private open(): SonicBoom {
    this.failed = false;
    let ready = false;
    const boom = new Boom({ dest: this.path, sync: false, append: true, mkdir: false, mode: 0o600, maxLength: MAX_BUFFERED_BYTES });
    boom.on('ready', () => { ready = true; });
    boom.on('write', (n: number) => {
      this.settle(n);
      // Said once the file takes lines again, so the gap in it is explained.
      if (this.dropped) {
        const d = this.dropped;
        this.dropped = 0;
        this.onDropped(d);
      }
    });
    boom.on('drop', (data: string) => {
      this.dropped++;
      this.settle(Buffer.byteLength(data));
    });
    boom.on('error', () => {
      if (!ready) this.failed = true;
      this.settle(this.unwritten);
    });
    return boom;
  }

  private settle(bytes: number): void {
    this.unwritten = Math.max(0, this.unwritten - bytes);
    if (this.unwritten === 0) for (const resolve of this.waiting.splice(0)) resolve();
  }
}

const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };
export const silentLogger: Logger = silent;
