/**
 * A worker of the fleet benchmark: many simulated agents in one process, each
 * a real qfleetd gRPC server (mutual TLS, auth interceptor, health, reflection)
 * on its own loopback address with its own key and certificate, backed by an
 * in-memory host with a few containers. Prints READY when every one listens.
 *
 *   node dist/bench/agent-farm.js PKI_DIR WORK_DIR PORT ADDR NAME [ADDR NAME ...]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signAgentCsr } from '../controller/pki/ca.js';
import { Engine } from '../agent/engine/engine.js';
import { StateStore } from '../agent/engine/state-store.js';
import { systemClock } from '../agent/engine/clock.js';
import { silentLogger } from '../agent/log.js';
import { authInterceptor, ClientAuthorizer } from '../agent/server/auth.js';
import { createAgentServer, listenOnTcpTls } from '../agent/server/server.js';
import { loadServerTls } from '../agent/tls/credentials.js';
import { AGENT_TLS_FILES } from '../common/agent-layout.js';
import { makeAgentCsr } from '../agent/tls/csr.js';
import { ExecaRunner } from '../agent/runner/execa-runner.js';
import { MemoryHost } from '../test/support/memory-host.js';

const CONTAINERS_PER_HOST = 3;

async function startOne(pkiDir: string, work: string, port: number, addr: string, name: string) {
  const dir = join(work, name);
  const tlsDir = join(dir, 'tls');
  mkdirSync(dir, { recursive: true });
  const { csrPem } = await makeAgentCsr({ dir: tlsDir, name, ips: [addr] });
  const { certPem, caPem } = await signAgentCsr(pkiDir, csrPem, [name, addr]);
  writeFileSync(join(tlsDir, AGENT_TLS_FILES.cert), certPem);
  writeFileSync(join(tlsDir, AGENT_TLS_FILES.ca), caPem);
  const tls = loadServerTls({ cert: join(tlsDir, AGENT_TLS_FILES.cert), key: join(tlsDir, AGENT_TLS_FILES.key), ca: join(tlsDir, AGENT_TLS_FILES.ca) });

  const host = new MemoryHost(join(dir, 'root'));
  const store = new StateStore(join(dir, 'state'));
  // As agent/main.ts does: List trusts the watch for what changed in the state directory.
  store.watch();
  const engine = new Engine({ driver: host, store, clock: systemClock, log: silentLogger, runner: new ExecaRunner() });
  await engine.install({ method: 'directory', source: dir, mirror: '' }, false, () => undefined);
  for (let i = 0; i < CONTAINERS_PER_HOST; i++) await engine.create(`web${i}`);
  await engine.configure('web0', ['httpd']);
  await engine.start({ names: ['web0'], all: false });

  const { server } = createAgentServer(
    { engine, log: silentLogger, agentVersion: 'bench' },
    { interceptors: [authInterceptor(new ClientAuthorizer(tls.caPem), silentLogger)] },
  );
  await listenOnTcpTls(server, `${addr}:${port}`, tls.credentials);
}

async function main(): Promise<void> {
  const [pkiDir, work, portText, ...pairs] = process.argv.slice(2);
  if (!pkiDir || !work || !portText || pairs.length % 2 !== 0) throw new Error('usage: agent-farm PKI_DIR WORK_DIR PORT ADDR NAME [ADDR NAME ...]');
  const port = Number(portText);
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < pairs.length; i += 2) jobs.push(startOne(pkiDir, work, port, pairs[i]!, pairs[i + 1]!));
  await Promise.all(jobs);
  process.stdout.write('READY\n');
  // Serve until the benchmark ends us.
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((e: unknown) => {
  process.stderr.write(`agent-farm: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
