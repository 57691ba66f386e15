import { appendFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';

export type LogFields = Record<string, unknown>;
export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Resolves once every line logged so far is written (call before process.exit: an append in flight is lost by it). */
  flushed?(): Promise<void>;
}

/** Lines kept for the file while a write is under way; beyond this the oldest are dropped (and counted). */
const MAX_QUEUED_BYTES = 1 << 20;

/**
 * Appends lines to a file off the event loop: one append in flight at a time,
 * taking every line queued meanwhile. Each append opens the file anew (as the
 * synchronous appendFileSync did), so a log rotated by rename carries on in a
 * new file. What is still queued when the process exits is written then,
 * synchronously. Failures are swallowed: logging must never take the agent down.
 */
export class AsyncAppender {
  private queue: string[] = [];
  private queuedBytes = 0;
  private dropped = 0;
  private writing: Promise<void> | undefined;

  constructor(private readonly file: string, private readonly maxQueuedBytes = MAX_QUEUED_BYTES) {}

  write(line: string): void {
    this.queue.push(line);
    this.queuedBytes += line.length;
    while (this.queuedBytes > this.maxQueuedBytes && this.queue.length > 1) {
      this.queuedBytes -= this.queue.shift()!.length;
      this.dropped++;
    }
    this.writing ??= this.drain();
  }

  /** Resolves once every line written so far is in the file (or failed to get there). */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Writes what is queued synchronously (for process exit). */
  flushSync(): void {
    const text = this.take();
    if (text) try { appendFileSync(this.file, text, { mode: 0o600 }); } catch { /* see class comment */ }
  }

  private take(): string {
    const note = this.dropped ? `${JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: 'log lines dropped while the log file was slow', dropped: this.dropped })}\n` : '';
    const text = note + this.queue.join('');
    this.queue = [];
    this.queuedBytes = 0;
    this.dropped = 0;
    return text;
  }

  private async drain(): Promise<void> {
    // Each pass writes all that was queued before it; it ends when nothing new came meanwhile.
    while (this.queue.length) {
      try { await appendFile(this.file, this.take(), { mode: 0o600 }); } catch { /* see class comment */ }
    }
    this.writing = undefined;
  }
}

/** One JSON object per line (time, level, msg, fields) to stderr and optionally a file (appended asynchronously). */
export function jsonLogger(opts: { file?: string; stderr?: boolean } = {}): Logger {
  const file = opts.file ? new AsyncAppender(opts.file) : undefined;
  if (file) process.once('exit', () => file.flushSync());
  const write = (level: string, msg: string, fields?: LogFields) => {
    const line = `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`;
    if (opts.stderr !== false) process.stderr.write(line);
    file?.write(line);
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    flushed: async () => file?.flushed(),
  };
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
