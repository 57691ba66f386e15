#!/usr/bin/env node
import { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type AgentConfig } from './config.js';
import { makeDriver, osOfThisHost } from './drivers/select-driver.js';
import { systemClock } from './engine/clock.js';
import { Engine } from './engine/engine.js';
import { StateStore } from './engine/state-store.js';
import { jsonLogger } from './log.js';
import { claimPidfile } from './pidfile.js';
import { dieWithAgentWrapper, ExecaRunner } from './runner/execa-runner.js';
import { FailedPreconditionError, InvalidArgumentError } from './errors.js';
import { Admission } from './server/admission.js';
import { createAgentServer, listenOnTcpTls, listenOnUnixSocket } from './server/server.js';
import { loadServerTls, type ServerTlsIdentity } from './tls/credentials.js';
import { packageVersion } from './version.js';
import { AGENT_SERVICE_NAME } from '../proto/loader.js';

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
  .option('--stop-grace-seconds <n>', 'between SIGTERM and SIGKILL when stopping (0-3600)')
  .option('--shutdown-grace-seconds <n>', 'on SIGTERM, how long calls in flight may take to finish before they are cut short (0-600)')
  .option('--listen <host:port>', 'also listen on TCP, mutual TLS only (e.g. 0.0.0.0:7443); empty: unix socket only')
  .option('--tls-cert <file>', "this agent's certificate, signed by the fleet CA")
  .option('--tls-key <file>', "this agent's private key (mode 0600)")
  .option('--tls-ca <file>', 'the fleet CA: client certificates must come from it')
  .option('--default-isolation <mode>', 'what create uses when asked for no mode: namespaces (Linux), jail (FreeBSD) or chroot; default: the OS\'s')
  .showHelpAfterError()
  // commander exits 1 on a bad flag; a usage error is 2 here as in qfleet (help and --version stay 0).
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(async () => {
    const o = program.opts<Record<string, string | undefined>>();
    const flags = Object.fromEntries(
      Object.entries({
        zone: o.zone, root_dir: o.rootDir, state_dir: o.stateDir, log_dir: o.logDir,
        socket: o.socket, log_file: o.logFile, stop_grace_seconds: o.stopGraceSeconds, shutdown_grace_seconds: o.shutdownGraceSeconds,
        listen: o.listen, tls_cert: o.tlsCert, tls_key: o.tlsKey, tls_ca: o.tlsCa, default_isolation: o.defaultIsolation,
      }).filter(([, v]) => v !== undefined),
    ) as Record<string, string>;
    const cfg = loadConfig({ os: osOfThisHost(), configFile: o.config, flags });
    await serve(cfg);
  });

program
  .command('tls-request')
  .description("make this agent's private key in DIR (mode 0600; it never leaves the host) and print a CSR for it on stdout")
  .requiredOption('--dir <dir>', 'where agent.key is kept (agent.crt and ca.crt go beside it)')
  .requiredOption('--name <hostname>', "the host's name: the CSR's subject and first DNS name")
  .option('--ip <addr>', 'an IP address of the host (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--rotate', 'make a new key even if DIR/agent.key exists')
  .action(async (o: { dir: string; name: string; ip: string[]; rotate?: boolean }) => {
    // Loaded here only: @peculiar/x509 and its polyfills are megabytes the serving agent never needs.
    const { makeAgentCsr } = await import('./tls/csr.js');
    const { csrPem, keyPath, newKey } = await makeAgentCsr({ dir: o.dir, name: o.name, ips: o.ip, rotate: Boolean(o.rotate) });
    process.stderr.write(`qfleetd: ${newKey ? 'made a new key' : 'kept the existing key'} ${keyPath}\n`);
    process.stdout.write(csrPem);
  });

async function main(): Promise<void> {
  await program.parseAsync();
}

/** The TCP listener's TLS, or a clear refusal when `listen` is set without it. */
function tcpTls(cfg: AgentConfig): ServerTlsIdentity {
  const missing = (['tlsCert', 'tlsKey', 'tlsCa'] as const).filter((k) => !existsSync(cfg[k])).map((k) => cfg[k]);
  if (missing.length) {
    throw new FailedPreconditionError(
      `listen is set (${cfg.listen}) but TLS is not set up: missing ${missing.join(', ')}. TCP is served only over mutual TLS; ` +
        'make the key with `qfleetd tls-request` and install the certificate the controller signs (qfleet bootstrap does both), or unset listen.',
    );
  }
  return loadServerTls({ cert: cfg.tlsCert, key: cfg.tlsKey, ca: cfg.tlsCa });
}

async function serve(cfg: AgentConfig): Promise<void> {
  const log = jsonLogger({ file: cfg.logFile || undefined });
  // Checked before anything else, so a half-configured agent fails at once with the reason.
  const tls = cfg.listen ? tcpTls(cfg) : undefined;
  if (process.getuid?.() !== 0) log.warn('qfleetd is not running as root; mounts and chroot will fail');
  for (const d of [cfg.rootDir, cfg.logDir]) mkdirSync(d, { recursive: true, mode: 0o755 });
  const store = new StateStore(cfg.stateDir);
  store.watch();
  const releasePidfile = claimPidfile(join(cfg.stateDir, 'qfleetd.pid'));
  const runner = new ExecaRunner({ wrapper: dieWithAgentWrapper() });
  const driver = makeDriver(cfg, runner, (message, fields) => log.warn(message, fields));
  const engine = new Engine({
    driver, store, clock: systemClock, log, runner, stopGraceMs: cfg.stopGraceSeconds * 1000,
    ...(cfg.defaultIsolation ? { defaultIsolation: cfg.defaultIsolation } : {}),
  });
  const admission = new Admission();
  const deps = { engine, log, agentVersion: packageVersion(), admission };
  const { server, health } = createAgentServer(deps);
  const healths = [health];
  await listenOnUnixSocket(server, cfg.socket);
  const servers = [server];
  if (tls) {
    // Loaded only with a TCP listener: client-certificate checks bring @peculiar/x509 (some 18 MB resident).
    const { authInterceptor, ClientAuthorizer } = await import('./server/auth.js');
    // A separate server, so the interceptor guards every call that arrives over TCP and the socket stays as it was.
    const tcpServer = createAgentServer(deps, { interceptors: [authInterceptor(new ClientAuthorizer(tls.caPem), log)] });
    const tcp = tcpServer.server;
    const port = await listenOnTcpTls(tcp, cfg.listen, tls.credentials);
    servers.push(tcp);
    healths.push(tcpServer.health);
    log.info('qfleetd listening on TCP (mutual TLS)', { listen: cfg.listen, port, certificate: tls.subject, validTo: tls.validTo });
  }
  log.info('qfleetd listening', { socket: cfg.socket, rootDir: cfg.rootDir, stateDir: cfg.stateDir, driver: driver.name, pid: process.pid });

  // Served from here on; interrupted work is recovered in the background (those containers list as recovering).
  void engine.recover().then(
    () => log.info('recovery of interrupted operations done'),
    (e: unknown) => log.error('recovery failed', { error: e instanceof Error ? e.message : String(e) }),
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const boundMs = cfg.shutdownGraceSeconds * 1000;
    // Containers are left as they are: stopping them at host shutdown is the rc.d/systemd unit's job.
    log.info('qfleetd shutting down: no new changes taken, waiting for those in flight; containers keep running', { signal, boundSeconds: cfg.shutdownGraceSeconds });
    // Health says so at once, so a probe (bootstrap's, a load balancer's) never mistakes the leaving agent for a ready one.
    for (const h of healths) for (const svc of ['', AGENT_SERVICE_NAME]) h.setStatus(svc, 'NOT_SERVING');
    void (async () => {
      const cut = await admission.drain(boundMs);
      if (cut.length) log.warn('calls cut short by shutdown; their containers stay marked for recovery at the next start', { calls: cut });
      // Recovery still running is simply interrupted: its markers stay, and the next start takes it up again.
      let open = servers.length;
      let exiting = false;
      const exit = async () => {
        if (exiting) return;
        exiting = true;
        releasePidfile();
        // The log file is appended asynchronously: its last lines (this shutdown's) must reach it first, within a bound.
        await Promise.race([log.flushed?.(), new Promise((r) => setTimeout(r, 2000).unref())]);
        process.exit(0);
      };
      for (const s of servers) s.tryShutdown(() => { if (--open === 0) void exit(); });
      setTimeout(() => { for (const s of servers) s.forceShutdown(); void exit(); }, 5000).unref();
    })();
  };
  // After a rotation (logrotate's postrotate, newsyslog): the log file is reopened under its name.
  process.on('SIGHUP', () => {
    log.reopen();
    log.info('log file reopened', { signal: 'SIGHUP' });
  });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`qfleetd: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(e instanceof InvalidArgumentError ? 2 : 1); // a bad flag or setting is a usage error
});
