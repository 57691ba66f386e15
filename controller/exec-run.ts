import { EXIT, ConnectError, reportError, type CliContext } from './context.js';
import { captureExecStream, runExecStream } from './exec-stream.js';
import { classify } from './fleet/fanout.js';
import type { HostTarget } from './fleet/host-target.js';
import { fleetJson } from './fleet/report.js';
import type { AgentServiceClient } from '../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ExecStart } from '../proto/gen/qfleet/agent/v1/ExecStart.js';

/**
 * exec and console on one host. On a terminal, the command's output is ours
 * and its exit status becomes qfleet's. With --json, the output is captured
 * (bounded) into the one JSON document qfleet prints for every command
 * (docs/json.md): `[{host, status, result: {exitCode, signal, stdout, stderr,
 * truncated}}]`, or the host's error; the exit status is still the command's.
 */
export async function runExecOn(ctx: CliContext, host: HostTarget, start: ExecStart): Promise<number> {
  let client: AgentServiceClient | undefined;
  try {
    client = await ctx.connect(host);
    if (!ctx.json) return await runExecStream(client, start);
    const result = await captureExecStream(client, start);
    ctx.out(fleetJson([{ host, status: 'ok', result }]));
    return result.exitCode;
  } catch (e) {
    if (!ctx.json) return reportError(ctx, e, ctx.where(host));
    const c = e instanceof ConnectError ? { status: 'unreachable' as const, error: e.message } : classify(e, ctx.timeoutMs);
    ctx.out(fleetJson([{ host, ...c, cause: e }]));
    return EXIT.failed;
  } finally {
    client?.close();
  }
}
