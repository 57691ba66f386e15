import type { Command } from 'commander';
import { action } from '../context.js';
import { runLifecycle } from './lifecycle.js';

export function register(program: Command): void {
  program
    .command('start')
    .description('mount and start the configured services of containers')
    .argument('[names...]', 'container names (exact), or NAME= for every container whose name starts with NAME (qjail group prefix)')
    .option('-A, --all', 'every container')
    .action(action(program, (ctx, names: string[], opts: { all?: boolean; grace?: string }) => runLifecycle(ctx, 'Start', names, opts)));
}
