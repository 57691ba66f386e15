#!/usr/bin/env node
import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type AgentConfig } from './config.js';
import { makeDriver, osOfThisHost } from './drivers/select-driver.js';
import { systemClock } from './engine/clock.js';
import { Engine } from './engine/engine.js';
import { StateStore } from './engine/state-store.js';
import { jsonLogger } from './log.js';
import { claimPidfile } from './pidfile.js';
import { dieWithAgentWrapper, ExecaRunner } from './runner/execa-runner.js';
import { createAgentServer, listenOnUnixSocket } from './server/server.js';
import { packageVersion } from './version.js';

const program = new Command('qfleetd')
  .description('qfleet agent: runs chroot containers on this host and serves the qfleet API')
  .version(packageVersion())
  .option('-c, --config <file>', 'config file (name="value" lines)')
  .option('--zone <name>', 'zone: a separate set of sharedfs, template and containers')
  .option('--root-dir <dir>', 'where sharedfs, template and containers live')
  .option('--state-dir <dir>', 'one state file per container')
  .option('--log-dir <dir>', 'service rc-script output, one file per container')
  .option('--socket <path>', 'root-only unix socket to listen on')
  .option('--log-file <file>', 'also append JSON log lines here')
  .option('--stop-grace-seconds <n>', 'between SIGTERM and SIGKILL when stopping')
  .showHelpAfterError();

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<Record<string, string | undefined>>();
  const flags = Object.fromEntries(
    Object.entries({
      zone: o.zone, root_dir: o.rootDir, state_dir: o.stateDir, log_dir: o.logDir,
      socket: o.socket, log_file: o.logFile, stop_grace_seconds: o.stopGraceSeconds,
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  const cfg = loadConfig({ os: osOfThisHost(), configFile: o.config, flags });
  await serve(cfg);
}

async function serve(cfg: AgentConfig): Promise<void> {
  const log = jsonLogger({ file: cfg.logFile || undefined });
  if (process.getuid?.() !== 0) log.warn('qfleetd is not running as root; mounts and chroot will fail');
  for (const d of [cfg.rootDir, cfg.logDir]) mkdirSync(d, { recursive: true, mode: 0o755 });
  const store = new StateStore(cfg.stateDir);
  const releasePidfile = claimPidfile(join(cfg.stateDir, 'qfleetd.pid'));
  const runner = new ExecaRunner({ wrapper: dieWithAgentWrapper() });
  const driver = makeDriver(cfg.os, { runner, rootDir: cfg.rootDir, logDir: cfg.logDir });
  const engine = new Engine({ driver, store, clock: systemClock, log, stopGraceMs: cfg.stopGraceSeconds * 1000 });
  await engine.recover();
  const { server } = createAgentServer({ engine, runner, log, agentVersion: packageVersion() });
  await listenOnUnixSocket(server, cfg.socket);
  log.info('qfleetd listening', { socket: cfg.socket, rootDir: cfg.rootDir, stateDir: cfg.stateDir, driver: driver.name, pid: process.pid });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('qfleetd shutting down; containers keep running', { signal });
    // Containers are left as they are: stopping them at host shutdown is the rc.d/systemd unit's job.
    server.tryShutdown(() => {
      releasePidfile();
      process.exit(0);
    });
    setTimeout(() => { server.forceShutdown(); releasePidfile(); process.exit(0); }, 5000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`qfleetd: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
