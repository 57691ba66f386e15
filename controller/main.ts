#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { EXIT } from './context.js';
import { packageVersion } from './version.js';
import { register as install } from './commands/install.js';
import { register as create } from './commands/create.js';
import { register as list } from './commands/list.js';
import { register as start } from './commands/start.js';
import { register as stop } from './commands/stop.js';
import { register as consoleCmd } from './commands/console.js';
import { register as del } from './commands/delete.js';
import { register as config } from './commands/config.js';
import { register as exec } from './commands/exec.js';
import { register as version } from './commands/version.js';

export function buildProgram(): Command {
  const program = new Command('qfleet')
    .description('qchroot-style chroot containers, managed through the qfleetd agent')
    .version(packageVersion(), '-V, --version')
    .option('--socket <path>', "the local agent's unix socket (default $QFLEET_SOCKET or /run/qfleetd.sock)")
    .option('--json', 'machine-readable output (implies quiet)')
    .option('--timeout <seconds>', 'deadline for quick calls such as list', '30')
    .showHelpAfterError()
    .exitOverride();
  for (const reg of [install, create, list, start, stop, consoleCmd, del, config, exec, version]) reg(program);
  program.commands.forEach((c) => c.exitOverride());
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync();
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are successes; every other commander error is a usage error.
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? EXIT.ok : EXIT.usage;
      return;
    }
    throw e;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`qfleet: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = EXIT.failed;
});
