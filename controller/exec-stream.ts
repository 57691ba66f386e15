import { constants } from 'node:os';
import type { AgentServiceClient } from '../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ExecResponse__Output } from '../proto/gen/qfleet/agent/v1/ExecResponse.js';
import type { ExecStart } from '../proto/gen/qfleet/agent/v1/ExecStart.js';

/** What `--json` exec and console report: the exit status and the output, captured (bounded). */
export interface CapturedExec {
  exitCode: number;
  /** The signal that ended the command (e.g. "SIGKILL"), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when output past CAPTURE_LIMIT_BYTES (per stream) was dropped. */
  truncated: boolean;
}

/** Each of stdout and stderr is kept up to this size under --json; the rest is counted out, not buffered. */
export const CAPTURE_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Drives an Exec stream from this terminal: our stdin goes to the command
 * (raw mode when it is a terminal and a tty was asked for), its output to ours,
 * our window size follows along; resolves with the command's exit code (128+n
 * for a signal, as shells do).
 */
export async function runExecStream(client: AgentServiceClient, start: ExecStart): Promise<number> {
  return (await driveExec(client, start, false)).exitCode;
}

/** The same, with the output captured for --json instead of written to ours (our stdin still goes in). */
export function captureExecStream(client: AgentServiceClient, start: ExecStart): Promise<CapturedExec> {
  return driveExec(client, { ...start, tty: false }, true);
}

function driveExec(client: AgentServiceClient, start: ExecStart, capture: boolean): Promise<CapturedExec> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const raw = Boolean(start.tty && stdin.isTTY);
  const sized = Boolean(start.tty && stdout.isTTY);
  const stream = client.Exec();
  stream.write({ start: { ...start, size: sized ? { rows: stdout.rows, cols: stdout.columns } : null } });
  if (raw) stdin.setRawMode(true);
  const onData = (b: Buffer) => stream.write({ stdin: b });
  const onEnd = () => stream.write({ stdinEof: true });
  const onResize = () => stream.write({ resize: { rows: stdout.rows, cols: stdout.columns } });
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  if (sized) stdout.on('resize', onResize);
  const restore = () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    if (sized) stdout.off('resize', onResize);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
  const out = { stdout: new Bounded(), stderr: new Bounded() };
  return new Promise((resolve, reject) => {
    const result: CapturedExec = { exitCode: 1, signal: null, stdout: '', stderr: '', truncated: false };
    stream.on('data', (m: ExecResponse__Output) => {
      if (m.stdout) (capture ? out.stdout.add(m.stdout) : process.stdout.write(m.stdout));
      if (m.stderr) (capture ? out.stderr.add(m.stderr) : process.stderr.write(m.stderr));
      if (m.exit) {
        result.signal = m.exit.signal || null;
        result.exitCode = m.exit.signal ? 128 + (signalNumber(m.exit.signal) ?? 0) : m.exit.code;
      }
    });
    stream.on('error', (e) => { restore(); reject(e); });
    stream.on('end', () => {
      restore();
      stream.end();
      result.stdout = out.stdout.text();
      result.stderr = out.stderr.text();
      result.truncated = out.stdout.dropped || out.stderr.dropped;
      resolve(result);
    });
  });
}

/** Output kept up to CAPTURE_LIMIT_BYTES: a command that prints gigabytes cannot grow qfleet without bound. */
class Bounded {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  dropped = false;
  add(b: Buffer): void {
    const room = CAPTURE_LIMIT_BYTES - this.size;
    if (room <= 0) { this.dropped = true; return; }
    const part = b.length > room ? b.subarray(0, room) : b;
    if (part.length < b.length) this.dropped = true;
    this.chunks.push(part);
    this.size += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[name];
}
