import { execa, type ResultPromise } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentServiceClient } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import { agentClient, unary } from './grpc.js';

const DIST = fileURLToPath(new URL('../../', import.meta.url)); // dist/
export const AGENT_MAIN = join(DIST, 'agent/main.js');
export const CLI_MAIN = join(DIST, 'controller/main.js');

/**
 * A real qfleetd process on private paths under `dir`, so tests never touch the
 * host's own qfleet directories. Restartable, to test crash recovery.
 */
export class AgentProcess {
  readonly socket: string;
  readonly rootDir: string;
  readonly stateDir: string;
  readonly logDir: string;
  readonly logFile: string;
  private child: ResultPromise | undefined;
  private clientCache: AgentServiceClient | undefined;

  /**
   * `nodeArgs` go before the agent's script (a benchmark passes --cpu-prof);
   * `script` is the agent to run and `env` what it gets besides this process's
   * environment (a benchmark runs the bundle with the hosts' settings).
   */
  constructor(
    readonly dir: string,
    private readonly nodeArgs: readonly string[] = [],
    private readonly script: string = AGENT_MAIN,
    private readonly env: Readonly<Record<string, string>> = {},
  ) {
    this.socket = join(dir, 'run/qfleetd.sock');
    this.rootDir = join(dir, 'root');
    this.stateDir = join(dir, 'state');
    this.logDir = join(dir, 'log');
    this.logFile = join(dir, 'agent.log');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'qfleetd.conf'), '# empty: every path comes from flags\n');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get client(): AgentServiceClient {
    return (this.clientCache ??= agentClient(this.socket));
  }

  /** Starts qfleetd and waits until it answers; `extraArgs` go after the standard flags. */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    this.child = execa(
      'node',
      [...this.nodeArgs, this.script, '-c', join(this.dir, 'qfleetd.conf'), '--root-dir', this.rootDir, '--state-dir', this.stateDir, '--log-dir', this.logDir,
        '--socket', this.socket, '--log-file', this.logFile, '--stop-grace-seconds', '3', ...extraArgs],
      { reject: false, stdio: ['ignore', 'ignore', 'pipe'], buffer: { stderr: true }, env: { ...this.env } },
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await unary(this.client, 'Version', {}, 1000);
        return;
      } catch (e) {
        if (this.child.exitCode !== null || Date.now() > deadline) {
          const r = await Promise.race([this.child, new Promise((r) => setTimeout(r, 500))]);
          throw new Error(`qfleetd did not come up: ${(r as { stderr?: string } | undefined)?.stderr ?? String(e)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Sends a signal and returns at once; `exited` resolves when the process has gone. */
  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  get exited(): Promise<unknown> {
    return this.child ? this.child.then(() => undefined, () => undefined) : Promise.resolve();
  }

  /** SIGKILL: the crash the recovery code is for. */
  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.child;
    this.resetClient();
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await Promise.race([this.child, new Promise((r) => setTimeout(r, 8000))]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
      await this.child;
    }
    this.resetClient();
  }

  /** Drops the test's connection (a later `client` makes a new one). */
  closeClient(): void {
    this.resetClient();
  }

  private resetClient(): void {
    this.clientCache?.close();
    this.clientCache = undefined;
  }

  /** Runs the qfleet CLI against this agent. */
  cli(args: readonly string[], input?: string) {
    return execa('node', [CLI_MAIN, '--socket', this.socket, ...args], { reject: false, ...(input !== undefined ? { input } : {}), timeout: 120_000 });
  }
}
