import type { Command } from 'commander';
import { call } from '../client.js';
import { action, EXIT } from '../context.js';
import { packageVersion } from '../version.js';
import type { VersionResponse__Output } from '../../proto/gen/qfleet/agent/v1/VersionResponse.js';

export function register(program: Command): void {
  program
    .command('version')
    .description("qfleet's version and the agent's: host OS, release, driver, installed base")
    .action(
      action(program, async (ctx) => {
        const c = ctx.client();
        const v = await call<object, VersionResponse__Output>(c, c.Version, {}, ctx.timeoutMs);
        if (ctx.json) {
          ctx.out(JSON.stringify({ controller: packageVersion(), agent: v }));
          return EXIT.ok;
        }
        ctx.out(`qfleet ${packageVersion()}`);
        ctx.out(`qfleetd ${v.agentVersion} (API ${v.apiRevision}) on ${v.hostname}: ${v.os} ${v.release} ${v.machine}, driver ${v.driver}`);
        ctx.out(`base: ${v.baseRelease || 'not installed (run qfleet install)'}; root ${v.rootDir}`);
        const caps = v.capabilities;
        if (caps) {
          const methods = caps.installMethods.map((m) => String(m).replace('INSTALL_METHOD_', '').toLowerCase()).join(', ');
          ctx.out(`install from: ${methods}; namespaces ${caps.namespaces ? 'yes' : 'no'}, sparse images ${caps.sparseImages ? 'yes' : 'no'}, IP aliases ${caps.ipAliases ? 'yes' : 'no'}`);
        }
        return EXIT.ok;
      }),
    );
}
