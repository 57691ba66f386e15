/**
 * `npm run bench:host` (as root): one agent, many containers. A real qfleetd
 * process on private paths under a temp dir, a busybox base with a template of
 * a few hundred small configuration files (about what a Debian minbase leaves
 * in etc and var after the split), then:
 *
 * - `create` of 1,000 containers, each timed through the API, beside a plain
 *   `cp -a` of the same template made by this process in the same run (the
 *   floor: the agent copies with cp -a too), taking turns;
 * - `List` p50/p99 while the agent measures the new containers' disk use for
 *   the first time (create leaves it to the first List: a thousand trees, in
 *   du batches at a low priority); shown, not a goal: it is over in seconds;
 * - `List` p50/p99 once every figure is in, with 1,000 stopped containers,
 *   and again once 50 of them run a service (busybox httpd through its init
 *   script): the goal's figure;
 * - the agent's resident memory (VmRSS, and its peak VmHWM) at the end.
 *
 * Not a test: nothing is asserted; the goals are printed beside the figures and
 * the JSON is saved under bench/results/. QFLEET_BENCH_CPU_PROF=DIR runs the
 * agent with --cpu-prof into DIR; QFLEET_BENCH_NODE_ARGS adds node options for
 * the agent. The agent is the bundle, run with the environment the service
 * units give it (deploy/agent-env.ts); QFLEET_BENCH_AGENT_ENV=none runs it
 * without. QFLEET_BENCH_SMOKE=1 runs tiny sizes to check
 * the plumbing (the figures then mean nothing).
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecaRunner } from '../agent/runner/execa-runner.js';
import { AGENT_ENV } from '../deploy/agent-env.js';
import { AgentProcess } from '../test/support/agent-process.js';
import { makeBusyboxBase, pickTestPort } from '../test/support/busybox-base.js';
import { unary } from '../test/support/grpc.js';
import { cleanupTree } from '../test/agent/drivers/linux/real-harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AGENT_BUNDLE = join(ROOT, 'dist/bundle/qfleetd.js');
const SMOKE = process.env.QFLEET_BENCH_SMOKE === '1';
const CONTAINERS = Number(process.env.QFLEET_BENCH_CONTAINERS ?? (SMOKE ? 40 : 1000));
const RUNNING = Number(process.env.QFLEET_BENCH_RUNNING ?? (SMOKE ? 5 : 50));
const TEMPLATE_FILES = Number(process.env.QFLEET_BENCH_TEMPLATE_FILES ?? 400);
/** Lists timed per phase: with 300, the p99 is the third slowest, not the second of 100 (one stall). */
const LIST_RUNS = Number(process.env.QFLEET_BENCH_LIST_RUNS ?? (SMOKE ? 10 : 300));
/** The longest the first disk figures may take to come in (a thousand small trees take about ten seconds). */
const FIRST_FIGURES_MS = 300_000;
/** Every how many creates a `cp -a` of the template is timed beside it. */
const FLOOR_EVERY = SMOKE ? 2 : 10;

const GOALS = { createOverFloor: 1.5, listP99Ms: 50, rssMb: 100 };

interface Summary { n: number; p50: number; p90: number; p99: number; mean: number; min: number; max: number }

function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  return { n: s.length, p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0]!, max: s.at(-1)! };
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t0) / 1e6, r];
}

/** The same fixed CPU task as bench/fleet-list.ts: this machine's speed drifts over minutes. */
async function cpuProbeMs(): Promise<number> {
  const code = "const c=require('crypto');const b=Buffer.alloc(1<<20);const t=process.hrtime.bigint();for(let i=0;i<200;i++)c.createHash('sha256').update(b).digest();let x=0;for(let i=0;i<3e7;i++)x+=i%7;console.log(Number(process.hrtime.bigint()-t)/1e6)";
  return Math.round(Number((await execa('node', ['-e', code])).stdout.trim()));
}

/** A busybox base plus TEMPLATE_FILES small files in etc/ and var/, which stay in the template. */
async function makeBase(dir: string): Promise<void> {
  await makeBusyboxBase(dir);
  for (let i = 0; i < TEMPLATE_FILES; i++) {
    const sub = join(dir, i % 2 ? 'etc' : 'var/lib', `bench-${i % 20}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.conf`), `# bench file ${i}\n${'x'.repeat(64 + ((i * 97) % 1900))}\n`);
  }
}

function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

interface ListedContainer { state: string; diskUsageBytes?: string | number | null }

/**
 * Lists back to back, timed, until every container has its first disk figure
 * (create leaves it to the first List or Get); bounded by FIRST_FIGURES_MS.
 */
async function listUntilMeasured(agent: AgentProcess, expect: number): Promise<{ lists: Summary; seconds: number }> {
  const t0 = Date.now();
  const runs: number[] = [];
  while (Date.now() - t0 < FIRST_FIGURES_MS) {
    const [ms, r] = await timed(() => unary<{ containers: ListedContainer[] }>(agent.client, 'List', {}, 120_000));
    runs.push(ms);
    // Not measured yet: absent (null), or 0 where defaults fill it; a real tree is never 0 bytes.
    const measured = r.containers.filter((c) => c.diskUsageBytes != null && Number(c.diskUsageBytes) > 0).length;
    if (r.containers.length === expect && measured === expect) return { lists: summarize(runs), seconds: (Date.now() - t0) / 1000 };
  }
  throw new Error(`the first disk figures of ${expect} containers did not all come in within ${FIRST_FIGURES_MS / 1000} s`);
}

async function timeLists(agent: AgentProcess, expect: number, running: number): Promise<Summary> {
  const one = async () => {
    const [ms, r] = await timed(() => unary<{ containers: ListedContainer[] }>(agent.client, 'List', {}, 120_000));
    const up = r.containers.filter((c) => c.state === 'STATE_RUNNING' || c.state === 'running').length;
    if (r.containers.length !== expect || up !== running) {
      const states = new Map<string, number>();
      for (const c of r.containers) states.set(c.state, (states.get(c.state) ?? 0) + 1);
      throw new Error(`List: ${r.containers.length} containers (${[...states].map(([k, v]) => `${v} ${k}`).join(', ')}), expected ${expect} with ${running} running`);
    }
    return ms;
  };
  for (let i = 0; i < 3; i++) await one(); // warm-up: JIT; after a start, the first status of each service
  const runs: number[] = [];
  for (let i = 0; i < LIST_RUNS; i++) runs.push(await one());
  return summarize(runs);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the benchmark as root (the agent mounts and chroots)');
  const work = mkdtempSync(join(tmpdir(), 'qfleet-host-bench-'));
  const profDir = process.env.QFLEET_BENCH_CPU_PROF;
  const nodeArgs = [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), ...(process.env.QFLEET_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  // The bundle with the hosts' environment, as deploy/linux/qfleetd.service runs it (not dist/agent/main.js).
  const agentEnv = process.env.QFLEET_BENCH_AGENT_ENV === 'none' ? {} : AGENT_ENV;
  const agent = new AgentProcess(join(work, 'agent'), nodeArgs, AGENT_BUNDLE, agentEnv);
  const runner = new ExecaRunner();
  const probeStart = await cpuProbeMs();
  const name = (i: number) => `c${String(i).padStart(4, '0')}`;
  try {
    await makeBase(join(work, 'base'));
    await agent.start();
    const inst = await agent.cli(['install', join(work, 'base')]);
    if (inst.exitCode !== 0) throw new Error(`install failed: ${inst.stderr}`);
    const template = join(agent.rootDir, 'template');
    const floorDir = join(work, 'floor');
    mkdirSync(floorDir);

    // create, with a cp -a of the template beside it every FLOOR_EVERY creates
    const creates: number[] = [];
    const floors: number[] = [];
    /** create / cp -a, each copy against the create made right before or after it. */
    const pairRatios: number[] = [];
    const copyFloor = async (i: number) => {
      const dest = join(floorDir, `copy-${i}`);
      const [fms] = await timed(async () => {
        mkdirSync(dest, { mode: 0o755 });
        await execa('cp', ['-a', '--', `${template}/.`, dest]);
      });
      floors.push(fms);
      // Kept until the creates end, as the containers are: on this VM's ext4, a copy made where
      // copies had just been removed grew slower with every round (20 -> 180 ms over 400 creates),
      // which made creates look cheap beside it.
    };
    for (let i = 0; i < CONTAINERS; i++) {
      // Every FLOOR_EVERY creates, a copy right before or right after (by turns), so both see the machine alike.
      const sample = i % FLOOR_EVERY === 0;
      if (sample && i % (2 * FLOOR_EVERY) === 0) await copyFloor(i);
      const [ms] = await timed(() => unary(agent.client, 'Create', { name: name(i) }, 120_000));
      creates.push(ms);
      if (sample && i % (2 * FLOOR_EVERY) !== 0) await copyFloor(i);
      if (sample) pairRatios.push(ms / floors.at(-1)!);
      if ((i + 1) % 100 === 0) {
        // The last hundred's medians, to see whether either side drifts as the host fills up.
        const recent = (xs: number[], n: number) => summarize(xs.slice(-n)).p50.toFixed(1);
        process.stderr.write(`created ${i + 1}/${CONTAINERS} (last 100: create p50 ${recent(creates, 100)} ms, cp -a p50 ${recent(floors, 100 / FLOOR_EVERY)} ms)\n`);
      }
    }
    const create = summarize(creates);
    const floor = summarize(floors);
    rmSync(floorDir, { recursive: true, force: true });

    const firstFigures = await listUntilMeasured(agent, CONTAINERS);
    process.stderr.write(`first disk figures of ${CONTAINERS} containers: ${firstFigures.seconds.toFixed(1)} s; List meanwhile p50 ${firstFigures.lists.p50.toFixed(1)} ms, p99 ${firstFigures.lists.p99.toFixed(1)} ms\n`);
    const listStopped = await timeLists(agent, CONTAINERS, 0);
    process.stderr.write(`List, ${CONTAINERS} stopped: p50 ${listStopped.p50.toFixed(1)} ms, p99 ${listStopped.p99.toFixed(1)} ms\n`);

    const port0 = pickTestPort();
    const runningNames = Array.from({ length: RUNNING }, (_, i) => name(i));
    for (const [i, n] of runningNames.entries()) {
      writeFileSync(join(agent.rootDir, 'containers', n, 'etc/qfleet-httpd.port'), `${port0 + i}\n`);
      await unary(agent.client, 'Configure', { name: n, services: ['httpd'] });
    }
    const started = await unary<{ results: { outcome: string; message: string }[] }>(agent.client, 'Start', { names: runningNames }, 300_000);
    const bad = started.results.filter((r) => !/STARTED/.test(r.outcome));
    if (bad.length) throw new Error(`start: ${bad.length} failed: ${bad[0]!.message}`);

    const listRunning = await timeLists(agent, CONTAINERS, RUNNING);
    process.stderr.write(`List, ${CONTAINERS} with ${RUNNING} running: p50 ${listRunning.p50.toFixed(1)} ms, p99 ${listRunning.p99.toFixed(1)} ms\n`);
    const memory = memoryOf(agent.pid!);

    await unary(agent.client, 'Stop', { names: runningNames, grace_seconds: 3 }, 300_000);
    await agent.stop();

    const probe = { startMs: probeStart, endMs: await cpuProbeMs() };
    // The machine's speed drifts within seconds here, so the ratio is taken pair by pair (a create and the
    // copy made right beside it), and its median reported; the ratio of the two medians is printed too.
    const ratio = summarize(pairRatios).p50;
    const goals = [
      { goal: `create at most ${GOALS.createOverFloor}x a plain cp -a of the template (median of paired ratios)`, met: ratio <= GOALS.createOverFloor, value: ratio },
      { goal: `List p99 under ${GOALS.listP99Ms} ms with ${CONTAINERS} containers, ${RUNNING} running`, met: listRunning.p99 < GOALS.listP99Ms, value: listRunning.p99 },
      { goal: `agent RSS under ${GOALS.rssMb} MB`, met: memory.rssMb < GOALS.rssMb, value: memory.rssMb },
    ];
    const f = (x: number, d = 1) => x.toFixed(d);
    console.log(`\nOne host: ${CONTAINERS} containers (template: busybox + ${TEMPLATE_FILES} files), ${RUNNING} running httpd; ${cpus().length} CPUs, node ${process.version}\n`);
    console.log(`create (API round trip)   p50 ${f(create.p50)} ms   p90 ${f(create.p90)} ms   p99 ${f(create.p99)} ms   (${create.n} runs)`);
    console.log(`cp -a of the template     p50 ${f(floor.p50)} ms   p90 ${f(floor.p90)} ms   p99 ${f(floor.p99)} ms   (${floor.n} runs)`);
    console.log(`create / cp -a            ${f(ratio, 2)}x, median of ${pairRatios.length} pairs (ratio of the medians: ${f(create.p50 / floor.p50, 2)}x)   (goal: at most ${GOALS.createOverFloor}x)`);
    console.log(`List, first disk figures  p50 ${f(firstFigures.lists.p50)} ms   p99 ${f(firstFigures.lists.p99)} ms   (${firstFigures.lists.n} runs in the ${f(firstFigures.seconds)} s they took to come in)`);
    console.log(`List, all stopped         p50 ${f(listStopped.p50)} ms   p99 ${f(listStopped.p99)} ms   (${listStopped.n} runs)`);
    console.log(`List, ${String(RUNNING).padEnd(2)} running          p50 ${f(listRunning.p50)} ms   p99 ${f(listRunning.p99)} ms   (${listRunning.n} runs; goal: p99 under ${GOALS.listP99Ms} ms)`);
    console.log(`agent memory              RSS ${f(memory.rssMb)} MB   peak ${f(memory.peakRssMb)} MB   (goal: RSS under ${GOALS.rssMb} MB)\n`);
    for (const g of goals) console.log(`${g.met ? 'met    ' : 'NOT MET'}  ${g.goal} (${f(g.value, 2)})`);
    console.log(`\nmachine speed probe (a fixed CPU task, lower is faster): ${probe.startMs} ms at the start, ${probe.endMs} ms at the end`);

    const out = join(ROOT, 'bench/results');
    mkdirSync(out, { recursive: true });
    const doc = {
      when: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version, cpuProbe: probe },
      agent: AGENT_BUNDLE, agentEnv, agentNodeArgs: nodeArgs,
      sizes: { containers: CONTAINERS, running: RUNNING, templateFiles: TEMPLATE_FILES, listRuns: LIST_RUNS, smoke: SMOKE },
      create, cpFloor: floor, createOverFloor: ratio, createOverFloorPairs: summarize(pairRatios),
      listFirstFigures: { ...firstFigures.lists, seconds: firstFigures.seconds }, listStopped, listRunning, memory, goals,
    };
    const file = join(out, `host-scale-${doc.when.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
    writeFileSync(join(out, 'host-scale-latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`saved ${file}`);
  } finally {
    // Containers outlive their agent (namespaces inits run on): a run cut short stops them first.
    await unary(agent.client, 'Stop', { all: true, grace_seconds: 1 }, 300_000).catch(() => undefined);
    await agent.stop().catch(() => undefined);
    await cleanupTree(runner, work);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
