import type { Command } from 'commander';
import { requestId } from '../client.js';
import { action, EXIT } from '../context.js';
import type { InstallResponse__Output } from '../../proto/gen/qfleet/agent/v1/InstallResponse.js';
import type { InstallResult__Output } from '../../proto/gen/qfleet/agent/v1/InstallResult.js';

export function register(program: Command): void {
  program
    .command('install')
    .description('build sharedfs and template from a pristine base (re-run to rebuild; containers are not disturbed)')
    .argument('[source]', "base on the agent's host: a root-filesystem directory or tarball (FreeBSD: base.txz); default: download for the host's release")
    .option('--debootstrap <suite>', 'Linux: build the base with debootstrap --variant=minbase SUITE')
    .option('--mirror <url>', 'mirror for download or debootstrap')
    .option('-f, --force', "accept a base whose release differs from the host's")
    .action(
      action(program, async (ctx, source: string | undefined, opts: { debootstrap?: string; mirror?: string; force?: boolean }) => {
        const stream = ctx.client().Install({
          requestId: requestId(),
          method: opts.debootstrap ? 'INSTALL_METHOD_DEBOOTSTRAP' : 'INSTALL_METHOD_UNSPECIFIED',
          source: opts.debootstrap ?? source ?? '',
          mirror: opts.mirror ?? '',
          force: Boolean(opts.force),
        });
        const showProgress = !ctx.json && process.stderr.isTTY;
        const result = await new Promise<InstallResult__Output>((resolve, reject) => {
          let res: InstallResult__Output | undefined;
          stream.on('data', (m: InstallResponse__Output) => {
            if (m.progress && showProgress) ctx.err(`${m.progress.phase.replace('PHASE_', '').toLowerCase()}: ${m.progress.message}`);
            if (m.result) res = m.result;
          });
          stream.on('error', reject);
          stream.on('end', () => (res ? resolve(res) : reject(new Error('the agent ended the install without a result'))));
        });
        if (ctx.json) ctx.out(JSON.stringify(result));
        else {
          ctx.out(`Install of ${result.baseRelease} completed: sharedfs ${result.sharedfsPath}, template ${result.templatePath}.`);
          for (const n of result.notes) ctx.out(`Note: ${n}`);
        }
        return EXIT.ok;
      }),
    );
}
