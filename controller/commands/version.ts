import type { Command } from 'commander';
import { call } from '../transport/call.js';
import { action } from '../context.js';
import { printOutcomes, runFleet } from '../fleet/report.js';
import { packageVersion } from '../version.js';
import type { VersionResponse__Output } from '../../proto/gen/qfleet/agent/v1/VersionResponse.js';
import { capabilitiesJson, versionJson } from '../json-shape.js';

/**
 * What the host can contain with, in three lines: the modes (the default
 * marked), the limits, and why anything its OS could offer is missing. An
 * agent before API 3 reports no modes: it runs chroot only and knows no limits.
 */
export function describeIsolation(v: Pick<VersionResponse__Output, 'apiRevision' | 'capabilities'>): string[] {
  const c = capabilitiesJson(v.capabilities);
  if (v.apiRevision < 3 || !c.isolationModes.length) return [`isolation: chroot only (API ${v.apiRevision} agent: no isolation modes, no limits)`];
  const modes = c.isolationModes.map((m) => (m === c.defaultIsolation ? `${m} (default)` : m)).join(', ');
  const can = (['memory', 'cpu', 'pids'] as const).filter((k) => c.limits[k]);
  const cannot = (['memory', 'cpu', 'pids'] as const).filter((k) => !c.limits[k]);
  const limits = can.length ? `${can.join(', ')}${cannot.length ? ` (not ${cannot.join(', ')})` : ''}` : 'none';
  return [`isolation: ${modes}; limits: ${limits}`, ...c.missing.map((m) => `missing: ${m}`)];
}

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
  lines.push(...describeIsolation(v));
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('version')
    .description("qfleet's version and each agent's: host OS, release, driver, installed base, isolation modes (the default marked), the limits it can enforce and what is missing")
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
