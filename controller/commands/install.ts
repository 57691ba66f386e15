import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { action } from '../context.js';
import { dryRun } from '../fleet/dry-run.js';
import type { HostCall } from '../fleet/fanout.js';
import type { InstallRequest } from '../../proto/gen/qfleet/agent/v1/InstallRequest.js';
import { runChanging } from '../fleet/report.js';
import type { InstallResponse__Output } from '../../proto/gen/qfleet/agent/v1/InstallResponse.js';
import type { InstallResult__Output } from '../../proto/gen/qfleet/agent/v1/InstallResult.js';
import { installJson } from '../json-shape.js';

/** A base download or debootstrap can take a while on a slow mirror. */
export const INSTALL_TIMEOUT_MS = 2 * 60 * 60_000;

export function register(program: Command): void {
  program
    .command('install')
    .description('build sharedfs and template from a pristine base on every targeted host (re-run to rebuild; containers are not disturbed)')
    .argument('[source]', "base on the agent's host: a root-filesystem directory or tarball (FreeBSD: base.txz); default: download for the host's release")
    .option('--debootstrap <suite>', 'Linux: build the base with debootstrap --variant=minbase SUITE')
    .option('--mirror <url>', 'mirror for download or debootstrap')
    .option('-f, --force', "accept a base whose release differs from the host's")
    .action(
      action(program, async (ctx, source: string | undefined, opts: { debootstrap?: string; mirror?: string; force?: boolean }) => {
        const req = {
          requestId: ctx.requestId,
          method: opts.debootstrap ? 'INSTALL_METHOD_DEBOOTSTRAP' : 'INSTALL_METHOD_UNSPECIFIED',
          source: opts.debootstrap ?? source ?? '',
          mirror: opts.mirror ?? '',
          force: Boolean(opts.force),
        } as const;
        if (ctx.dryRun) {
          const what = opts.debootstrap ? `debootstrap ${opts.debootstrap}` : source ? `from ${source}` : 'the release base';
          const action = `install ${what} (sharedfs, template)`;
          return dryRun(ctx, 'install', async (c) => {
            await installOn(c, { ...req, validateOnly: true }, () => undefined);
            return [{ container: '-', state: '-', action, problem: '' }];
          }, { action });
        }
        const fleet = ctx.fleet();
        // Progress is for a person at a terminal: stderr only, and only when it is a TTY.
        const progress = (host: string, line: string) => ctx.note(fleet ? `${host}: ${line}` : line);
        return runChanging(
          ctx,
          (c) => installOn(c, req, (line) => progress(c.host.name, line)),
          {
            json: installJson,
            text: (r) => [`Install of ${r.baseRelease} completed: sharedfs ${r.sharedfsPath}, template ${r.templatePath}.`, ...r.notes.map((n) => `Note: ${n}`)].join('\n'),
          },
          { timeoutMs: ctx.longTimeoutMs(INSTALL_TIMEOUT_MS) },
        );
      }),
    );
}

/** One host's Install stream: its progress lines to `progress`, its result at the end (a validate-only one has no progress). */
function installOn({ client, timeoutMs, signal }: HostCall, req: InstallRequest, progress: (line: string) => void): Promise<InstallResult__Output> {
  return new Promise<InstallResult__Output>((resolve, reject) => {
    const stream = client.Install(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs });
    signal.addEventListener('abort', () => stream.cancel(), { once: true });
    let res: InstallResult__Output | undefined;
    stream.on('data', (m: InstallResponse__Output) => {
      if (m.progress) progress(`${m.progress.phase.replace('PHASE_', '').toLowerCase()}: ${m.progress.message}`);
      if (m.result) res = m.result;
    });
    stream.on('error', reject);
    stream.on('end', () => (res ? resolve(res) : reject(new Error('the agent ended the install without a result'))));
  });
}
