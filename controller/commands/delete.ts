import type { Command } from 'commander';
import { action } from '../context.js';
import { runLifecycle } from './lifecycle.js';

export function register(program: Command): void {
  program
    .command('delete')
    .description('remove stopped containers and their state')
    .argument('[names...]', 'container names (exact), or NAME= for every container whose name starts with NAME (qjail group prefix)')
    .option('-A, --all', 'every container')
    .action(action(program, (ctx, names: string[], opts: { all?: boolean; grace?: string }) => runLifecycle(ctx, 'Delete', names, opts)));
}
