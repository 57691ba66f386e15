import type { ExecResult, RemoteSession } from '../../../controller/bootstrap/ssh.js';

export type Reply = Partial<ExecResult> | ((line: string) => Partial<ExecResult>);

/** A scripted SSH session: the first rule whose pattern matches the line answers; anything else fails the test. */
export class FakeSession implements RemoteSession {
  readonly lines: string[] = [];
  readonly uploads: { path: string; data: string; mode: number }[] = [];
  constructor(private readonly rules: [RegExp, Reply][]) {}
  async exec(line: string): Promise<ExecResult> {
    this.lines.push(line);
    const rule = this.rules.find(([re]) => re.test(line));
    if (!rule) throw new Error(`unexpected remote command: ${line}`);
    const r = typeof rule[1] === 'function' ? rule[1](line) : rule[1];
    return { code: 0, signal: undefined, stdout: '', stderr: '', ...r };
  }
  async upload(path: string, data: Buffer | string, mode: number): Promise<void> {
    this.uploads.push({ path, data: String(data), mode });
  }
  close(): void {}
}
