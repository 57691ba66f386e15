#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { dropOutputWhenReaderGoes } from './closed-output.js';
import { EXIT, setDeps, type CliDeps } from './context.js';
import { DEFAULT_FORKS } from './fleet/fanout.js';
import { packageVersion } from './version.js';
import { register as install } from './commands/install.js';
import { register as create } from './commands/create.js';
import { register as list } from './commands/list.js';
import { register as get } from './commands/get.js';
import { register as start } from './commands/start.js';
import { register as stop } from './commands/stop.js';
import { register as consoleCmd } from './commands/console.js';
import { register as del } from './commands/delete.js';
import { register as config } from './commands/config.js';
import { register as exec } from './commands/exec.js';
import { register as version } from './commands/version.js';
import { register as pki } from './commands/pki.js';
import { register as bootstrap } from './commands/bootstrap.js';

export function buildProgram(deps?: CliDeps): Command {
  const program = new Command('qfleet')
    .description('qchroot-style chroot containers, managed through the qfleetd agent')
    .version(packageVersion(), '-V, --version')
    .option('-i, --inventory <file>', 'Ansible YAML inventory of hosts (default $QFLEET_INVENTORY; with neither, the local agent)')
    .option('-H, --hosts <pattern>', 'hosts to act on: names or an Ansible host pattern (web1,web2  webservers  web*  a:&b  a:!b); default all')
    .option('--socket <path>', "the local agent's unix socket (default $QFLEET_SOCKET or /run/qfleetd.sock)")
    .option('--json', 'machine-readable output (implies quiet); with an inventory, one array of {host, status, result|error}')
    .option('--timeout <seconds>', 'deadline of the whole command: qfleet exits by then (default 30 for list, version, config and for exec/console to connect; longer for create, start, stop, delete, install and bootstrap unless given; at most 86400)')
    .option('--forks <n>', `hosts worked on at once (default ${DEFAULT_FORKS}; 1 to 1000)`)
    .option('-n, --dry-run', 'ask each targeted agent what the command would do (the real request, marked validate_only: same checks, no change) and print it per host and container')
    .showHelpAfterError()
    .exitOverride();
  for (const reg of [install, create, list, get, start, stop, consoleCmd, del, config, exec, version, pki, bootstrap]) reg(program);
  program.commands.forEach((c) => c.exitOverride());
  if (deps) setDeps(program, deps);
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

/** Run only as the program itself (also through the npm bin symlink), not when a test imports buildProgram. */
function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/** Resolves once everything written to the stream so far has been handed to the OS (or the reader is gone). */
function flushed(s: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed || !s.writable) return resolve();
    s.write('', () => resolve());
  });
}

/**
 * Runs the CLI as the process's program and exits when its answer is out:
 * when this module is the entry point, or from the bundle's launcher
 * (dist/bundle/qfleet.js, deploy/bundle/build.ts).
 */
export function runAsProgram(): void {
  dropOutputWhenReaderGoes(process.stdout);
  main()
    .catch((e: unknown) => {
      process.stderr.write(`qfleet: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = EXIT.failed;
    })
    // The answer is out: exit now rather than when the event loop drains. A host abandoned at
    // the deadline may still hold a TCP connect (a black-holed host keeps SYN-retrying for
    // minutes) or a TLS handshake; --timeout bounds the process, not just the output.
    // The wait for our own output is on our reader, not on the network.
    .then(() => Promise.all([flushed(process.stdout), flushed(process.stderr)]))
    .then(() => process.exit());
}

if (isEntryPoint()) runAsProgram();
