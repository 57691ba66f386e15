import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { printOutcomes, runFleet } from '../fleet/report.js';
import { packageVersion } from '../version.js';
import type { VersionResponse__Output } from '../../proto/gen/qfleet/agent/v1/VersionResponse.js';
import { versionJson } from '../json-shape.js';

function describe(v: VersionResponse__Output): string {
  const lines = [
    `qfleetd ${v.agentVersion} (API ${v.apiRevision}) on ${v.hostname}: ${v.os} ${v.release} ${v.machine}, driver ${v.driver}`,
    `base: ${v.baseRelease || 'not installed (run qfleet install)'}; root ${v.rootDir}`,
    ...(v.baseBehind ? [`warning: ${v.baseBehind}`] : []),
  ];
  const caps = v.capabilities;
  if (caps) {
    const methods = caps.installMethods.map((m) => String(m).replace('INSTALL_METHOD_', '').toLowerCase()).join(', ');
    lines.push(`install from: ${methods}; namespaces ${caps.namespaces ? 'yes' : 'no'}, sparse images ${caps.sparseImages ? 'yes' : 'no'}, IP aliases ${caps.ipAliases ? 'yes' : 'no'}`);
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('version')
    .description("qfleet's version and each agent's: host OS, release, driver, installed base")
    .action(
      action(program, async (ctx) => {
        const outcomes = await runFleet(ctx, ({ client, timeoutMs, signal }) => call(client, 'Version', {}, timeoutMs, signal), {
          timeoutMs: ctx.timeoutMs,
        });
        if (!ctx.json && (ctx.fleet() || outcomes[0]?.status === 'ok')) ctx.out(`qfleet ${packageVersion()}`);
        return printOutcomes(ctx, outcomes, {
          text: describe,
          json: (v) => ({ controller: packageVersion(), agent: versionJson(v) }),
        });
      }),
    );
}
