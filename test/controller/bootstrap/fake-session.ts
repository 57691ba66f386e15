import type { ExecResult, RemoteSession } from '../../../controller/bootstrap/ssh.js';

export type Reply = Partial<ExecResult> | ((line: string) => Partial<ExecResult>) | typeof HANG;

/** A command that runs until the session is closed, then ends as ssh2 ends a channel cut off: no exit code. */
export const HANG = Symbol('hang');

/** A scripted SSH session: the first rule whose pattern matches the line answers; anything else fails the test. */
export class FakeSession implements RemoteSession {
  readonly lines: string[] = [];
  readonly uploads: { path: string; data: string; mode: number }[] = [];
  closed = false;
  private readonly hanging: (() => void)[] = [];
  constructor(private readonly rules: [RegExp, Reply][]) {}
  async exec(line: string): Promise<ExecResult> {
    if (this.closed) throw new Error('Not connected');
    this.lines.push(line);
    const rule = this.rules.find(([re]) => re.test(line));
    if (!rule) throw new Error(`unexpected remote command: ${line}`);
    if (rule[1] === HANG) {
      await new Promise<void>((resolve) => this.hanging.push(resolve));
      return { code: null, signal: undefined, stdout: '', stderr: '' };
    }
    const r = typeof rule[1] === 'function' ? rule[1](line) : rule[1];
    return { code: 0, signal: undefined, stdout: '', stderr: '', ...r };
  }
  async upload(path: string, data: Buffer | string, mode: number): Promise<void> {
    this.uploads.push({ path, data: String(data), mode });
  }
  close(): void {
    this.closed = true;
    for (const end of this.hanging.splice(0)) end();
  }
}
