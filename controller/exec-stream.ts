import { constants } from 'node:os';
import type { AgentServiceClient } from '../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ExecResponse__Output } from '../proto/gen/qfleet/agent/v1/ExecResponse.js';
import type { ExecStart } from '../proto/gen/qfleet/agent/v1/ExecStart.js';

/**
 * Drives an Exec stream from this terminal: our stdin goes to the command
 * (raw mode when it is a terminal and a tty was asked for), its output to ours,
 * our window size follows along; resolves with the command's exit code (128+n
 * for a signal, as shells do).
 */
export function runExecStream(client: AgentServiceClient, start: ExecStart): Promise<number> {
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
