/**
 * `npm run bench`: how long an aggregated `qfleet list` takes over N agents,
 * cold (a new process of the bundled CLI each run: start-up, TLS handshakes,
 * every host's List), beside bench/tls-floor.ts (a new node process that only
 * makes the same N mutual-TLS handshakes: the floor under any Node.js client
 * here), bench/grpc-floor.ts (one bare grpc-js call per host, bundled as the
 * CLI is: the floor under any grpc-js client here) and `pdsh -R ssh` and
 * `ansible -m command` running `ls` over N sshd
 * hosts, measured in the same run on the same machine, taking turns run by
 * run. Each node process's CPU seconds are recorded too (/usr/bin/time): on a
 * machine others share, wall-clock time measures their load as much as ours.
 * Prints the figures with their ratios and the goals, and saves them as JSON
 * (bench/results/). Not a test: nothing here is asserted.
 *
 * Everything listens on loopback addresses only (127.1.x.y for sshd, 127.2.x.y
 * for agents) and every child is ended at the end.
 */
import { execa, type ResultPromise } from 'execa';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPki } from '../controller/pki/ca.js';
import { loopbackAddress, startSshFarm, timeAnsible, timePdsh } from './ssh-peers.js';
import { CLI_PROGRAM_FILE } from '../controller/bundle-files.js';
import { bundleLikeCli } from '../deploy/bundle/build.js';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AGENT_PORT = 7443;
/** QFLEET_BENCH_SMOKE=1 runs tiny sizes, to check the plumbing; the figures then mean nothing. */
const SMOKE = process.env.QFLEET_BENCH_SMOKE === '1';
const AGENT_COUNTS = SMOKE ? [5, 10, 20] : [10, 100, 500];
const PEER_COUNTS = SMOKE ? [5, 10] : [10, 100];
const RUNS = Number(process.env.QFLEET_BENCH_RUNS ?? 7);
const PEER_RUNS = Number(process.env.QFLEET_BENCH_PEER_RUNS ?? 3);
const WORKERS = 4;

/**
 * The controller builds measured side by side, each with the environment it runs with. One today
 * (grpc-js); the README's benchmark section has the run that compared three transports this way.
 */
const TRANSPORTS: readonly { key: string; env: NodeJS.ProcessEnv }[] = [{ key: 'grpc-js', env: {} }];

interface Figure { n: number; runs: number[]; median: number; min: number }

function summarize(n: number, runs: number[]): Figure {
  const sorted = [...runs].sort((a, b) => a - b);
  return { n, runs, median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]! };
}

async function startAgentFarm(pkiDir: string, work: string, count: number): Promise<{ hosts: { name: string; addr: string }[]; stop: () => Promise<void> }> {
  const hosts = Array.from({ length: count }, (_, i) => ({ name: `bench-${String(i).padStart(3, '0')}`, addr: loopbackAddress(2, i) }));
  const children: ResultPromise[] = [];
  const per = Math.ceil(count / WORKERS);
  const ready: Promise<void>[] = [];
  for (let w = 0; w < WORKERS; w++) {
    const slice = hosts.slice(w * per, (w + 1) * per);
    if (!slice.length) continue;
    const child = execa('node', [join(DIST, 'bench/agent-farm.js'), pkiDir, join(work, `farm-${w}`), String(AGENT_PORT), ...slice.flatMap((h) => [h.addr, h.name])], {
      reject: false, buffer: false, stdin: 'ignore', stderr: 'inherit',
    });
    children.push(child);
    ready.push(new Promise((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('READY')) resolve(); });
      void child.then((r) => reject(new Error(`agent farm worker ${w} exited ${r.exitCode}`)));
    }));
  }
  await Promise.all(ready);
  return {
    hosts,
    stop: async () => {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(children.map((c) => Promise.race([c, new Promise((r) => setTimeout(r, 3000))])));
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    },
  };
}

function writeInventory(file: string, hosts: readonly { name: string; addr: string }[]): void {
  const lines = ['all:', '  vars:', `    qfleet_agent_port: ${AGENT_PORT}`, '  children:', '    bench:', '      hosts:'];
  for (const h of hosts) lines.push(`        ${h.name}:`, `          ansible_host: ${h.addr}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/**
 * The CPU seconds (user + system) each timed process used, in the order timed: wall-clock time
 * on a machine others share measures them as much as us, CPU time far less so.
 */
const cpuSeconds: Record<string, number[]> = {};

/** The bench's scratch directory (PKI, farms, sshd, the bundles run): removed when the bench ends, however it ends. */
let workDir: string | undefined;

/** Where /usr/bin/time writes each run's CPU seconds; removed when the bench ends, however it ends. */
const CPU_FILE = join(tmpdir(), `qfleet-bench-cpu-${process.pid}`);

/** Runs node with args under /usr/bin/time, recording its CPU time under `key`; resolves with the result and the wall-clock seconds. */
async function timedNode(key: string, args: string[], opts: { env?: NodeJS.ProcessEnv }) {
  const t0 = process.hrtime.bigint();
  const r = await execa('/usr/bin/time', ['-f', '%U %S', '-o', CPU_FILE, 'node', ...args], { env: { ...process.env, ...opts.env }, reject: false, timeout: 120_000 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const [user, sys] = readFileSync(CPU_FILE, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number];
  (cpuSeconds[key] ??= []).push(user + sys);
  return { r, secs };
}

/**
 * One cold qfleet list over the inventory; checks every host answered. With --forks N, like
 * pdsh -f N and ansible -f N here (ssh-peers.ts) and the TLS floor, which reach all N hosts at
 * once: with the default (50) qfleet alone would work in waves, and the ratios would compare
 * fan-out settings rather than what each tool costs per host.
 */
async function timeQfleetList(cli: string, env: NodeJS.ProcessEnv, inventory: string, n: number, key = 'warm-up'): Promise<number> {
  const { r, secs } = await timedNode(key, [cli, '--inventory', inventory, '--forks', String(n), '--json', 'list'], { env });
  const text = r.stdout.trim();
  const hosts: { host: string; status: string }[] = text.startsWith('[') ? JSON.parse(text) : text.split('\n').map((l) => JSON.parse(l));
  const ok = hosts.filter((h) => h.status === 'ok').length;
  if (r.exitCode !== 0 || ok !== n) throw new Error(`qfleet list: exit ${r.exitCode}, ${ok}/${n} hosts ok: ${r.stderr.slice(0, 500)}`);
  return secs;
}

/**
 * A fixed CPU task (hashing 200 MiB, a counting loop) timed in a new process: the machine's speed
 * drifts by tens of percent over minutes here, so the results record it at the start and the end.
 */
async function cpuProbeMs(): Promise<number> {
  const code = "const c=require('crypto');const b=Buffer.alloc(1<<20);const t=process.hrtime.bigint();for(let i=0;i<200;i++)c.createHash('sha256').update(b).digest();let x=0;for(let i=0;i<3e7;i++)x+=i%7;console.log(Number(process.hrtime.bigint()-t)/1e6)";
  const r = await execa('node', ['-e', code]);
  return Math.round(Number(r.stdout.trim()));
}

/**
 * bench/grpc-floor.ts as the CLI is shipped: one CommonJS bundle made as the
 * CLI's is (bundleLikeCli), loaded by a launcher that turns on Node's compile
 * cache where there is one (as dist/bundle/qfleet.js does), so start-up and
 * each connection compare like with like.
 */
async function bundleGrpcFloor(work: string): Promise<string> {
  await bundleLikeCli(join(DIST, 'bench/grpc-floor.js'), join(work, 'grpc-floor-main.js'));
  const launcher = join(work, 'grpc-floor.js');
  writeFileSync(launcher, "'use strict';\nconst m = require('node:module');\nif (typeof m.enableCompileCache === 'function') m.enableCompileCache();\nrequire('./grpc-floor-main.js');\n");
  return launcher;
}

/** One cold run of a floor (bench/tls-floor.ts, or the bundled grpc-floor.ts) over the first n hosts. */
async function timeFloor(what: string, script: string, pkiDir: string, hosts: readonly { name: string; addr: string }[], key = 'warm-up'): Promise<number> {
  const { r, secs } = await timedNode(key, [script, pkiDir, String(AGENT_PORT), ...hosts.map((h) => `${h.name}=${h.addr}`)], {});
  if (r.exitCode !== 0) throw new Error(`${what}: exit ${r.exitCode}: ${r.stderr.slice(0, 300)}`);
  return secs;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the benchmark as root (it starts sshd and adds a bench user)');
  for (const tool of ['pdsh', 'ansible', '/usr/sbin/sshd']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) {
      throw new Error(`${tool} is missing: apt-get install -y pdsh ansible openssh-server`);
    }
  }
  const work = (workDir = mkdtempSync(join(tmpdir(), 'qfleet-bench-')));
  chmodSync(work, 0o755); // the bench user's sshd reads its authorized_keys from under here
  const home = join(work, 'home');
  const pkiDir = join(home, 'pki');
  mkdirSync(home, { recursive: true });
  await initPki(pkiDir);
  // The bundled CLI an operator runs (dist/bundle/qfleet.js and its program; list needs none of its side files),
  // outside the repository; CommonJS, as the package.json beside the bundles says.
  const cli = join(work, 'qfleet.js');
  for (const f of ['qfleet.js', CLI_PROGRAM_FILE, 'package.json']) copyFileSync(join(DIST, 'bundle', f), join(work, f));
  const tlsFloor = join(DIST, 'bench/tls-floor.js');
  const grpcFloor = await bundleGrpcFloor(work);
  // Every build measured runs the same bundle the same way, on the `node` first in PATH (Node 20 has no
  // compile cache; on 22.1 and later the launcher turns Node's on: put such a node first in PATH to measure it).
  const variants = TRANSPORTS.map((t) => ({ ...t, env: { QFLEET_HOME: home, ...t.env } }));
  const qf: Record<string, Figure[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  const results: Record<string, Figure[]> = { tlsFloor: [], grpcFloor: [], pdsh: [], ansible: [] };
  // Both farms up for the whole run, and for each N the tools take turns, run by run: the machine's
  // speed drifts by tens of percent over minutes (others share its cores), and interleaving keeps
  // that out of the ratios.
  const probeStart = await cpuProbeMs();
  const farm = await startAgentFarm(pkiDir, work, Math.max(...AGENT_COUNTS));
  let ssh: Awaited<ReturnType<typeof startSshFarm>> | undefined;
  try {
    ssh = await startSshFarm(join(work, 'sshd'), Math.max(...PEER_COUNTS));
    for (const n of AGENT_COUNTS) {
      const inv = join(work, `inventory-${n}.yml`);
      writeInventory(inv, farm.hosts.slice(0, n));
      const peers = PEER_COUNTS.includes(n) ? { ...ssh, hosts: ssh.hosts.slice(0, n) } : undefined;
      // Warm-up (page cache); every measured run is still a new process with new handshakes.
      for (const v of variants) await timeQfleetList(cli, v.env, inv, n);
      await timeFloor('tls floor', tlsFloor, pkiDir, farm.hosts.slice(0, n));
      await timeFloor('grpc floor', grpcFloor, pkiDir, farm.hosts.slice(0, n));
      const runs: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
      const runsFloor: number[] = [];
      const runsGrpcFloor: number[] = [];
      const runsPdsh: number[] = [];
      const runsAnsible: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        // The order rotates run by run, so no transport always follows the same neighbour.
        for (let j = 0; j < variants.length; j++) {
          const v = variants[(i + j) % variants.length]!;
          runs[v.key]!.push(await timeQfleetList(cli, v.env, inv, n, `${v.key}@${n}`));
        }
        runsFloor.push(await timeFloor('tls floor', tlsFloor, pkiDir, farm.hosts.slice(0, n), `tlsFloor@${n}`));
        runsGrpcFloor.push(await timeFloor('grpc floor', grpcFloor, pkiDir, farm.hosts.slice(0, n), `grpcFloor@${n}`));
        if (peers && i < PEER_RUNS) {
          runsPdsh.push(await timePdsh(peers));
          runsAnsible.push(await timeAnsible(peers, work));
        }
      }
      for (const v of variants) qf[v.key]!.push(summarize(n, runs[v.key]!));
      results.tlsFloor!.push(summarize(n, runsFloor));
      results.grpcFloor!.push(summarize(n, runsGrpcFloor));
      for (const v of variants) process.stderr.write(`qfleet list (${v.key}) N=${n}: median ${qf[v.key]!.at(-1)!.median.toFixed(3)} s\n`);
      process.stderr.write(`TLS handshakes alone N=${n}: median ${results.tlsFloor!.at(-1)!.median.toFixed(3)} s\n`);
      process.stderr.write(`bare grpc-js calls N=${n}: median ${results.grpcFloor!.at(-1)!.median.toFixed(3)} s\n`);
      if (peers) {
        results.pdsh!.push(summarize(n, runsPdsh));
        results.ansible!.push(summarize(n, runsAnsible));
        process.stderr.write(`pdsh         N=${n}: median ${results.pdsh!.at(-1)!.median.toFixed(3)} s\nansible      N=${n}: median ${results.ansible!.at(-1)!.median.toFixed(3)} s\n`);
      }
    }
  } finally {
    await ssh?.stop();
    await farm.stop();
  }

  const probe = { startMs: probeStart, endMs: await cpuProbeMs() };
  const at = (figs: Figure[], n: number) => figs.find((f) => f.n === n);
  const rows = AGENT_COUNTS.map((n) => {
    const floor = at(results.tlsFloor!, n)!.median;
    const grpcFloor = at(results.grpcFloor!, n)!.median;
    const pd = at(results.pdsh!, n)?.median;
    const an = at(results.ansible!, n)?.median;
    return {
      n,
      tlsFloor: floor,
      grpcFloor,
      grpcFloorOverTlsFloor: grpcFloor / floor,
      pdsh: pd,
      ansible: an,
      qfleet: Object.fromEntries(variants.map((v) => {
        const q = at(qf[v.key]!, n)!.median;
        return [v.key, { median: q, overTlsFloor: q / floor, overGrpcFloor: q / grpcFloor, pdshOver: pd !== undefined ? pd / q : undefined, ansibleOver: an !== undefined ? an / q : undefined }];
      })),
    };
  });
  const [, mid, top] = AGENT_COUNTS as [number, number, number];
  const row = (n: number) => rows.find((r) => r.n === n)!;
  const goals = variants.flatMap((v) => [
    { transport: v.key, goal: `N=${mid} within 2x the TLS floor`, value: row(mid).qfleet[v.key]!.overTlsFloor, met: row(mid).qfleet[v.key]!.overTlsFloor <= 2 },
    { transport: v.key, goal: `N=${top} within 2x the TLS floor`, value: row(top).qfleet[v.key]!.overTlsFloor, met: row(top).qfleet[v.key]!.overTlsFloor <= 2 },
    { transport: v.key, goal: `N=${mid} at least 10x pdsh`, value: row(mid).qfleet[v.key]!.pdshOver, met: (row(mid).qfleet[v.key]!.pdshOver ?? 0) >= 10 },
    { transport: v.key, goal: `N=${mid} at least 40x Ansible`, value: row(mid).qfleet[v.key]!.ansibleOver, met: (row(mid).qfleet[v.key]!.ansibleOver ?? 0) >= 40 },
  ]);

  const fmt = (x: number | undefined, d = 3) => (x === undefined ? '-' : x.toFixed(d));
  console.log(`\nAggregated list over N hosts, cold, median of ${RUNS} (qfleet, TLS floor) / ${PEER_RUNS} (pdsh, ansible) runs, seconds\n`);
  console.log(`   N   ${variants.map((v) => `qfleet ${v.key}`.padStart(16)).join('   ')}   TLS floor   grpc-js floor   pdsh -R ssh ls   ansible -m command ls`);
  for (const r of rows) {
    console.log(`${String(r.n).padStart(4)}   ${variants.map((v) => fmt(r.qfleet[v.key]!.median).padStart(16)).join('   ')}   ${fmt(r.tlsFloor).padStart(9)}   ${fmt(r.grpcFloor).padStart(13)}   ${fmt(r.pdsh).padStart(14)}   ${fmt(r.ansible).padStart(21)}`);
  }
  console.log('\nRatios: qfleet / TLS floor and qfleet / grpc-js floor (lower is better), pdsh / qfleet and ansible / qfleet (higher is better)\n');
  for (const r of rows) {
    for (const v of variants) {
      const q = r.qfleet[v.key]!;
      console.log(`N=${String(r.n).padEnd(4)} ${v.key.padEnd(8)} ${fmt(q.overTlsFloor, 2)}x TLS floor   ${fmt(q.overGrpcFloor, 2)}x grpc-js floor   pdsh ${fmt(q.pdshOver, 1)}x   ansible ${fmt(q.ansibleOver, 1)}x`);
    }
    console.log(`N=${String(r.n).padEnd(4)} the grpc-js floor alone: ${fmt(r.grpcFloorOverTlsFloor, 2)}x TLS floor`);
  }
  const cpu = (key: string) => summarize(0, cpuSeconds[key] ?? [0]).median;
  console.log('\nCPU seconds (user + system) of the process, median: less at the mercy of the machine\'s other load than wall-clock time\n');
  console.log(`   N   ${variants.map((v) => `qfleet ${v.key}`.padStart(16)).join('   ')}   TLS floor   grpc-js floor   ${variants.map((v) => `${v.key} / floor`.padStart(16)).join('   ')}   grpc-js floor / floor`);
  for (const n of AGENT_COUNTS) {
    const floor = cpu(`tlsFloor@${n}`);
    const grpcFloorCpu = cpu(`grpcFloor@${n}`);
    console.log(`${String(n).padStart(4)}   ${variants.map((v) => fmt(cpu(`${v.key}@${n}`)).padStart(16)).join('   ')}   ${fmt(floor).padStart(9)}   ${fmt(grpcFloorCpu).padStart(13)}   ${variants.map((v) => `${fmt(cpu(`${v.key}@${n}`) / floor, 2)}x`.padStart(16)).join('   ')}   ${`${fmt(grpcFloorCpu / floor, 2)}x`.padStart(21)}`);
  }
  console.log('\n(TLS floor: a new node process making the same N mutual-TLS handshakes to the same agents and closing them:');
  console.log(' the floor under any Node.js client here. grpc-js floor: one bare grpc-js call per host over the same TLS,');
  console.log(' channels tuned as qfleet\'s, bundled as the CLI is: the floor under any grpc-js client. The agents share the same cores.)\n');
  for (const g of goals) console.log(`${g.met ? 'met    ' : 'NOT MET'}  ${g.transport}: ${g.goal} (${fmt(g.value, 2)})`);

  const out = join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  console.log(`\nmachine speed probe (a fixed CPU task, lower is faster): ${probe.startMs} ms at the start, ${probe.endMs} ms at the end`);
  const doc = { when: new Date().toISOString(), machine: { cpus: (await import('node:os')).cpus().length, node: process.version, cpuProbe: probe, loadavg: (await import('node:os')).loadavg() }, rows, goals, raw: { ...results, qfleet: qf }, cpuSeconds };
  const file = join(out, `fleet-list-${doc.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(join(out, 'fleet-list-latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`\nsaved ${file}`);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    rmSync(CPU_FILE, { force: true });
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    // Out now, whatever is still running: a farm or sshd started before a failure is ended by
    // execa's cleanup as the process exits, and nothing waits on it.
    process.exit();
  });
