/**
 * Builds the agent into ONE file, dist/bundle/qfleetd.js, that bootstrap
 * uploads to hosts: node + this file is all a host needs. The controller CLI
 * is bundled the same way (dist/bundle/qfleet-main.js, with its launcher qfleet.js);
 * bootstrap puts the program on hosts for the boot-time start.
 *
 * Nothing is written to disk at start. Our own API is built in
 * (proto/gen/agent-root.ts, generated from agent.proto). Three modules read
 * files from their own location, and are given what they read at bundle time
 * instead: agent/version.ts and controller/version.ts (package.json: the
 * version becomes a constant), grpc-health-check (health.proto) and
 * @grpc/reflection (reflection.proto): their one loadSync(file) call becomes
 * proto-loader's fromJSON(the same file as protobufjs JSON, parsed here with
 * the options the library gives it). A library whose call is no longer there
 * fails the build, naming it. One more change, in the CLI alone: grpc-js's
 * client transport reads the peer's certificate for its auth context only when
 * asked (see builtIns).
 *
 * The output is CommonJS so that a lone qfleetd.js runs with no package.json
 * beside it.
 *
 * The CLI's program is qfleet-main.js; qfleet.js is a launcher of a few
 * lines (cliLauncher) that turns on Node's compile cache where the runtime
 * has one (module.enableCompileCache, Node >= 22.1) and then loads the
 * program, so the cache serves it: a file is compiled before any of its code
 * runs, so a program cannot turn the cache on for itself.
 *
 * The CLI keeps two big libraries that only a few commands use in files of
 * their own beside the program (CLI_SIDE_BUNDLES): ssh2 (bootstrap) and
 * @peculiar/x509 (pki). Every CLI start parses the whole program, and
 * those two were half of it: ~1 MB less JavaScript, ~25 ms less CPU at every
 * start (V8's pre-parse of 1.9 MB against 0.9 MB, measured on the build
 * machine). Node loads a side file, relative to the program, the first time a
 * command needs it; a command that does not never touches it.
 */
import { build, type BuildOptions, type Plugin } from 'esbuild';
import protobuf from 'protobufjs';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_PROGRAM_FILE } from '../../controller/bundle-files.js';

/** The repository root, from this module (deploy/bundle/build.ts or dist/deploy/bundle/build.js). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'agent/main.ts'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the qfleet repository root');
}

/** A .proto of a library as protobufjs JSON, parsed with the library's own keepCase. */
export function protoJson(file: string, keepCase: boolean): string {
  const root = new protobuf.Root();
  root.loadSync(file, { keepCase });
  return JSON.stringify(root.resolveAll().toJSON());
}

interface Replacement {
  /** The text to find, exactly once. */
  readonly find: string | RegExp;
  readonly replace: (root: string) => string;
}

/** What each module that reads a file at run time is given instead, by repository-relative path. */
function builtIns(root: string): Map<string, Replacement[]> {
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const constantVersion: Replacement = {
    find: /export function packageVersion\(\): string \{[\s\S]*\n\}\n/,
    replace: () => `export function packageVersion(): string {\n  return ${JSON.stringify(version)};\n}\n`,
  };
  const reflection = (v: string): Replacement => ({
    find: 'protoLoader.loadSync(protoPath, constants_1.PROTO_LOADER_OPTS)',
    replace: (r) => `protoLoader.fromJSON(${protoJson(join(r, `node_modules/@grpc/reflection/build/proto/grpc/reflection/${v}/reflection.proto`), false)}, constants_1.PROTO_LOADER_OPTS)`,
  });
  return new Map<string, Replacement[]>([
    ['agent/version.ts', [constantVersion]],
    ['controller/version.ts', [constantVersion]],
    ['node_modules/grpc-health-check/build/src/health.js', [{
      find: "(0, proto_loader_1.loadSync)('health/v1/health.proto',",
      replace: (r) => `(0, proto_loader_1.fromJSON)(${protoJson(join(r, 'node_modules/grpc-health-check/proto/health/v1/health.proto'), true)},`,
    }]],
    ['node_modules/@grpc/reflection/build/src/implementations/reflection-v1.js', [reflection('v1')]],
    ['node_modules/@grpc/reflection/build/src/implementations/reflection-v1alpha.js', [reflection('v1alpha')]],
    // Every client connection's auth context (what call.getAuthContext() answers) copies the
    // agent's certificate into a JS object as the connection comes up: ~0.2 ms a host that the
    // CLI never reads. The CLI's bundle copies it when first asked instead.
    [GRPC_JS_TRANSPORT, [{
      find: `            this.authContext = {
                transportSecurityType: 'ssl',
                sslPeerCertificate: session.socket.getPeerCertificate()
            };`,
      replace: () => `            const peerSocket = session.socket;
            let peerCertificate;
            this.authContext = {
                transportSecurityType: 'ssl',
                get sslPeerCertificate() { return (peerCertificate !== null && peerCertificate !== void 0 ? peerCertificate : (peerCertificate = peerSocket.getPeerCertificate())); }
            };`,
    }]],
  ]);
}

function builtInPlugin(root: string, expected: readonly string[]): Plugin {
  const table = builtIns(root);
  const wanted = new Map(expected.map((r) => [join(root, r), r]));
  const seen = new Set<string>();
  return {
    name: 'qfleet-built-in',
    setup(b) {
      b.onLoad({ filter: /\.(ts|js)$/ }, (args) => {
        const rel = wanted.get(args.path);
        if (!rel) return undefined;
        seen.add(rel);
        let text = readFileSync(args.path, 'utf8');
        for (const { find, replace } of table.get(rel) ?? []) {
          const hits = typeof find === 'string' ? text.split(find).length - 1 : (text.match(new RegExp(find.source, 'g')) ?? []).length;
          if (hits !== 1) throw new Error(`bundle: ${rel} no longer has exactly one ${String(find)} (found ${hits}); update deploy/bundle/build.ts`);
          text = text.replace(find, () => replace(root));
        }
        return { contents: text, loader: rel.endsWith('.ts') ? 'ts' : 'js' };
      });
      b.onEnd(() => {
        const missing = expected.filter((r) => !seen.has(r));
        if (missing.length) throw new Error(`bundle: expected to build in ${missing.join(', ')} but they were not bundled; update deploy/bundle/build.ts`);
      });
    },
  };
}

/** The CLI's one change to grpc-js (the lazy auth context, see builtIns). */
const GRPC_JS_TRANSPORT = 'node_modules/@grpc/grpc-js/build/src/transport.js';

const AGENT_BUILT_IN = [
  'agent/version.ts',
  'node_modules/grpc-health-check/build/src/health.js',
  'node_modules/@grpc/reflection/build/src/implementations/reflection-v1.js',
  'node_modules/@grpc/reflection/build/src/implementations/reflection-v1alpha.js',
];
// The CLI checks agent health after bootstrap, so it carries grpc-health-check too.
const CLI_BUILT_IN = ['controller/version.ts', 'node_modules/grpc-health-check/build/src/health.js', GRPC_JS_TRANSPORT];

/**
 * Bundles another program as the CLI's is bundled (the same esbuild options,
 * minified, with the CLI's change to grpc-js), so that it loads grpc-js as
 * the CLI does: the benchmark's grpc-js floor (bench/grpc-floor.ts).
 */
export async function bundleLikeCli(entry: string, outfile: string, root = repoRoot()): Promise<void> {
  const result = await build({
    ...nodeBundleOptions(root),
    entryPoints: [entry],
    outfile,
    minifyWhitespace: true,
    minifySyntax: true,
    plugins: [builtInPlugin(root, [GRPC_JS_TRANSPORT])],
  });
  if (result.errors.length) throw new Error(`bundle failed: ${result.errors.map((e) => e.text).join('; ')}`);
}

/** Runs before every module: where the bundle lives, for the modules that ask (import.meta.url). */
function banner(what: string): string {
  return `/* ${what}, bundled (deploy/bundle/build.ts). */
var __qfleetSelf = require('node:url').pathToFileURL(__filename).href;`;
}

/**
 * dist/bundle/qfleet.js: turns on Node's compile cache where there is one
 * (in Node's default place, or $NODE_COMPILE_CACHE; a cache that cannot be
 * made is passed over), then runs the program beside it. Measured on Node 22
 * against the program turning the cache on and loading itself once more (as
 * it did before): a list of one host 0.19 -> 0.16-0.17 s of CPU, 20-80 ms
 * less at 100 hosts.
 */
export function cliLauncher(): string {
  return `#!/usr/bin/env node
/* qfleet: the controller CLI. Its program is ${CLI_PROGRAM_FILE}, beside this file (deploy/bundle/build.ts). */
'use strict';
const m = require('node:module');
if (typeof m.enableCompileCache === 'function') m.enableCompileCache();
let program;
try {
  program = require('./${CLI_PROGRAM_FILE}');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).split('\\n')[0].includes('${CLI_PROGRAM_FILE}')) {
    process.stderr.write('qfleet: ${CLI_PROGRAM_FILE}, the program, is not beside ' + __filename + ': copy every file of dist/bundle/ together\\n');
    process.exit(1);
  }
  throw e;
}
program.runAsProgram();
`;
}

export interface BundleResult {
  readonly outfile: string;
  readonly bytes: number;
}

/**
 * The CLI's side files: each library's import becomes a require of its file
 * beside qfleet.js. reflect-metadata goes with @peculiar/x509, which needs it
 * loaded first (see common/x509.ts).
 */
export const CLI_SIDE_BUNDLES: readonly { readonly file: string; readonly modules: readonly string[]; readonly source: string }[] = [
  { file: 'qfleet-ssh2.js', modules: ['ssh2'], source: "module.exports = require('ssh2');\n" },
  { file: 'qfleet-x509.js', modules: ['reflect-metadata', '@peculiar/x509'], source: "require('reflect-metadata');\nmodule.exports = require('@peculiar/x509');\n" },
];

function sideBundlePlugin(): Plugin {
  const fileOf = new Map(CLI_SIDE_BUNDLES.flatMap((b) => b.modules.map((m) => [m, b.file] as const)));
  const filter = new RegExp(`^(${[...fileOf.keys()].map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`);
  return {
    name: 'qfleet-side-bundles',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: `./${fileOf.get(args.path)!}`, external: true }));
    },
  };
}

/** The common esbuild options of every bundle here. */
function nodeBundleOptions(root: string): BuildOptions {
  return {
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: false,
    legalComments: 'eof',
    logLevel: 'warning',
    // ssh2's optional native helpers (cpu-features, its sshcrypto addon) are loaded in try/catch: left out.
    external: ['cpu-features', '*.node'],
  };
}

async function bundleSide(root: string, dir: string, side: (typeof CLI_SIDE_BUNDLES)[number]): Promise<void> {
  const outfile = join(dir, side.file);
  const result = await build({
    ...nodeBundleOptions(root),
    stdin: { contents: side.source, resolveDir: root, loader: 'js', sourcefile: side.file },
    outfile,
    minifyWhitespace: true,
    minifySyntax: true,
    banner: { js: `/* qfleet: ${side.modules.join(' and ')}, for the commands that need it (deploy/bundle/build.ts). */` },
  });
  if (result.errors.length) throw new Error(`bundle failed: ${result.errors.map((e) => e.text).join('; ')}`);
}

async function bundleOne(root: string, entry: string, outfile: string, builtIn: readonly string[], what: string, opts: { cli?: boolean } = {}): Promise<BundleResult> {
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await build({
    ...nodeBundleOptions(root),
    entryPoints: [join(root, entry)],
    outfile,
    // The CLI is parsed at every start: no whitespace or comments (names are kept, for stack traces).
    ...(opts.cli ? { minifyWhitespace: true, minifySyntax: true } : {}),
    banner: { js: banner(what) },
    // Any other module asking where it lives is told: the bundle.
    define: { 'import.meta.url': '__qfleetSelf' },
    plugins: [builtInPlugin(root, builtIn), ...(opts.cli ? [sideBundlePlugin()] : [])],
  });
  if (result.errors.length) throw new Error(`bundle failed: ${result.errors.map((e) => e.text).join('; ')}`);
  if (opts.cli) await Promise.all(CLI_SIDE_BUNDLES.map((side) => bundleSide(root, dirname(outfile), side)));
  chmodSync(outfile, 0o755);
  // The bundles are CommonJS; inside the repository the root package.json says "module", so say otherwise here.
  writeFileSync(join(dirname(outfile), 'package.json'), '{ "type": "commonjs" }\n');
  return { outfile, bytes: statSync(outfile).size };
}

/** The agent, dist/bundle/qfleetd.js: what bootstrap uploads and the service runs. */
export async function buildBundle(opts: { root?: string; outfile?: string } = {}): Promise<BundleResult> {
  const root = opts.root ?? repoRoot();
  return bundleOne(root, 'agent/main.ts', opts.outfile ?? join(root, 'dist/bundle/qfleetd.js'), AGENT_BUILT_IN, 'qfleetd: the qfleet agent');
}

/**
 * The controller CLI: its launcher dist/bundle/qfleet.js (the outfile), the
 * program beside it (CLI_PROGRAM_FILE: uploaded too, for boot-time start,
 * `qfleet start -A` on the local socket) and its side files (CLI_SIDE_BUNDLES).
 * The result names the program. A CLI starts many times and briefly, so it
 * goes through Node's compile cache where there is one; the agent starts once.
 */
export async function buildCliBundle(opts: { root?: string; outfile?: string } = {}): Promise<BundleResult> {
  const root = opts.root ?? repoRoot();
  const launcher = opts.outfile ?? join(root, 'dist/bundle/qfleet.js');
  const program = await bundleOne(root, 'controller/main.ts', join(dirname(launcher), CLI_PROGRAM_FILE), CLI_BUILT_IN, 'qfleet: the controller CLI', { cli: true });
  writeFileSync(launcher, cliLauncher(), { mode: 0o755 });
  chmodSync(launcher, 0o755);
  return program;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  Promise.all([buildBundle(), buildCliBundle()]).then(
    (rs) => rs.forEach((r) => process.stdout.write(`bundle: ${relative(process.cwd(), r.outfile)} (${(r.bytes / 1024 / 1024).toFixed(1)} MiB)\n`)),
    (e: unknown) => {
      process.stderr.write(`bundle: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
