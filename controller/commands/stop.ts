import type { Command } from 'commander';
import { action } from '../context.js';
import { runLifecycle } from './lifecycle.js';

export function register(program: Command): void {
  program
    .command('stop')
    .description('stop services (rc stop, then SIGTERM, then SIGKILL) and unmount')
    .argument('[names...]', 'container names (exact), or NAME= for every container whose name starts with NAME (qjail group prefix)')
    .option('-A, --all', 'every container')
    .option('--grace <seconds>', 'between SIGTERM and SIGKILL (1 to 3600; default: the agent\'s stop_grace_seconds)')
    .action(action(program, (ctx, names: string[], opts: { all?: boolean; grace?: string }) => runLifecycle(ctx, 'Stop', names, opts)));
}
