import { appendFileSync } from 'node:fs';

export type LogFields = Record<string, unknown>;
export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** One JSON object per line (time, level, msg, fields) to stderr and optionally a file. */
export function jsonLogger(opts: { file?: string; stderr?: boolean } = {}): Logger {
  const write = (level: string, msg: string, fields?: LogFields) => {
    const line = `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`;
    if (opts.stderr !== false) process.stderr.write(line);
    if (opts.file) {
      try { appendFileSync(opts.file, line, { mode: 0o600 }); } catch { /* logging must never take the agent down */ }
    }
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
