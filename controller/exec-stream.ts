import { constants } from 'node:os';
import type { ExecResponse__Output } from '../proto/gen/qfleet/agent/v1/ExecResponse.js';
import type { ExecStart } from '../proto/gen/qfleet/agent/v1/ExecStart.js';
import type { CliContext } from './context.js';

/**
 * Drives an Exec stream from this terminal: our stdin goes to the command
 * (raw mode when it is a terminal and a tty was asked for), its output to ours;
 * resolves with the command's exit code (128+n for a signal, as shells do).
 */
export function runExecStream(ctx: CliContext, start: ExecStart): Promise<number> {
  const stdin = process.stdin;
  const raw = Boolean(start.tty && stdin.isTTY);
  const stream = ctx.client().Exec();
  stream.write({ start: { ...start, size: start.tty && process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : null } });
  if (raw) stdin.setRawMode(true);
  const onData = (b: Buffer) => stream.write({ stdin: b });
  const onEnd = () => stream.write({ stdinEof: true });
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  const restore = () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
  return new Promise((resolve, reject) => {
    let code = 1;
    stream.on('data', (m: ExecResponse__Output) => {
      if (m.stdout) process.stdout.write(m.stdout);
      if (m.stderr) process.stderr.write(m.stderr);
      if (m.exit) code = m.exit.signal ? 128 + (signalNumber(m.exit.signal) ?? 0) : m.exit.code;
    });
    stream.on('error', (e) => { restore(); reject(e); });
    stream.on('end', () => { restore(); stream.end(); resolve(code); });
  });
}

function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[name];
}
