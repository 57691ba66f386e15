/**
 * Builds the agent into ONE file, dist/bundle/qfleetd.js, that bootstrap
 * uploads to hosts: node + this file is all a host needs. The controller CLI
 * is bundled the same way (dist/bundle/qfleet.js) for boot-time start on hosts.
 *
 * The agent and two of its libraries read files at run time, found from their
 * own module's location: our proto/agent-proto.ts (agent.proto, via import.meta.url),
 * grpc-health-check (health.proto, via __dirname), @grpc/reflection
 * (reflection.proto, via __dirname), and agent/version.ts (package.json). The
 * bundle embeds those files' texts; at start, before any module runs, a
 * banner writes them to a private temp dir (mkdtemp, 0700, removed at exit)
 * in the repository's layout, and each of those modules is compiled to see
 * itself at its place in that tree (its __dirname / import.meta.url point
 * there). Every other module sees the bundle's own location.
 *
 * The output is CommonJS so that a lone qfleetd.js runs with no package.json
 * beside it.
 */
import { build, type Plugin } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withCodeCache } from './code-cache.js';

/** The repository root, from this module (deploy/bundle/build.ts or dist/deploy/bundle/build.js). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'agent/main.ts'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the qfleet repository root');
}

/** Modules that find data files from their own location (repository-relative paths), per bundle. */
const AGENT_RELOCATED = [
  'proto/agent-proto.ts',
  'agent/version.ts',
  'node_modules/grpc-health-check/build/src/health.js',
  'node_modules/@grpc/reflection/build/src/implementations/reflection-v1.js',
  'node_modules/@grpc/reflection/build/src/implementations/reflection-v1alpha.js',
];
// The CLI checks agent health after bootstrap, so it carries grpc-health-check and its proto too.
const CLI_RELOCATED = ['proto/agent-proto.ts', 'controller/version.ts', 'node_modules/grpc-health-check/build/src/health.js'];

/** Data files embedded in the bundle (directories are searched for .proto files). */
const EMBEDDED_PROTO_DIRS = ['proto/qfleet', 'node_modules/grpc-health-check/proto', 'node_modules/@grpc/reflection/build/proto/grpc'];

function protoFiles(root: string, dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) throw new Error(`${dir} is missing: run npm ci`);
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.proto') && statSync(join(abs, f)).isFile())
    .map((f) => join(dir, f).split(sep).join('/'))
    .sort();
}

export function embeddedFiles(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const d of EMBEDDED_PROTO_DIRS) for (const f of protoFiles(root, d)) files[f] = readFileSync(join(root, f), 'utf8');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  files['package.json'] = `${JSON.stringify({ name: pkg.name, version: pkg.version })}\n`;
  return files;
}

/** Runs before every module: materialises the embedded files in a private temp dir. */
function banner(files: Record<string, string>): string {
  return `/* qfleetd: the qfleet agent, bundled (deploy/bundle/build.ts). */
var __qfleetBundle = (function () {
  var fs = require('node:fs'), os = require('node:os'), path = require('node:path'), url = require('node:url');
  var files = ${JSON.stringify(files)};
  var root = fs.mkdtempSync(path.join(os.tmpdir(), 'qfleetd-bundle-'));
  process.on('exit', function () { try { fs.rmSync(root, { recursive: true, force: true }); } catch (e) {} });
  for (var rel in files) {
    var p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
    fs.writeFileSync(p, files[rel], { mode: 0o600 });
  }
  return {
    root: root,
    self: url.pathToFileURL(__filename).href,
    dir: function (rel) { return path.dirname(path.join(root, rel)); },
    file: function (rel) { return path.join(root, rel); },
    url: function (rel) { return url.pathToFileURL(path.join(root, rel)).href; },
  };
})();`;
}

function relocatePlugin(root: string, relocated: readonly string[]): Plugin {
  const wanted = new Map(relocated.map((r) => [join(root, r), r]));
  const seen = new Set<string>();
  return {
    name: 'qfleet-relocate',
    setup(b) {
      b.onLoad({ filter: /\.(ts|js)$/ }, (args) => {
        const rel = wanted.get(args.path);
        if (!rel) return undefined;
        seen.add(rel);
        let text = readFileSync(args.path, 'utf8');
        const loader = rel.endsWith('.ts') ? 'ts' : 'js';
        if (text.includes('import.meta.url')) text = text.split('import.meta.url').join(`__qfleetBundle.url(${JSON.stringify(rel.replace(/\.ts$/, '.js'))})`);
        if (/\b__dirname\b|\b__filename\b/.test(text)) {
          text = `var __dirname = __qfleetBundle.dir(${JSON.stringify(rel)}), __filename = __qfleetBundle.file(${JSON.stringify(rel)});\n${text}`;
        }
        return { contents: text, loader };
      });
      b.onEnd(() => {
        const missing = relocated.filter((r) => !seen.has(r));
        if (missing.length) throw new Error(`bundle: expected to relocate ${missing.join(', ')} but they were not bundled; update RELOCATED`);
      });
    },
  };
}

export interface BundleResult {
  readonly outfile: string;
  readonly bytes: number;
}

async function bundleOne(root: string, entry: string, outfile: string, relocated: readonly string[], opts: { codeCache?: string } = {}): Promise<BundleResult> {
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // The CLI is parsed at every start: no whitespace or comments (names are kept, for stack traces).
    // No real import() either: it cannot run from a V8 code cache (code-cache.ts); as require it can.
    ...(opts.codeCache ? { minifyWhitespace: true, minifySyntax: true, supported: { 'dynamic-import': false } } : {}),
    sourcemap: false,
    legalComments: 'eof',
    logLevel: 'warning',
    banner: { js: banner(embeddedFiles(root)) },
    // Any other module asking where it lives is told: the bundle.
    define: { 'import.meta.url': '__qfleetBundle.self' },
    // ssh2's optional native helpers (cpu-features, its sshcrypto addon) are loaded in try/catch: left out.
    external: ['cpu-features', '*.node'],
    plugins: [relocatePlugin(root, relocated)],
  });
  if (result.errors.length) throw new Error(`bundle failed: ${result.errors.map((e) => e.text).join('; ')}`);
  if (opts.codeCache) writeFileSync(outfile, withCodeCache(readFileSync(outfile, 'utf8'), opts.codeCache));
  chmodSync(outfile, 0o755);
  // The bundles are CommonJS; inside the repository the root package.json says "module", so say otherwise here.
  writeFileSync(join(dirname(outfile), 'package.json'), '{ "type": "commonjs" }\n');
  return { outfile, bytes: statSync(outfile).size };
}

/** The agent, dist/bundle/qfleetd.js: what bootstrap uploads and the service runs. */
export async function buildBundle(opts: { root?: string; outfile?: string } = {}): Promise<BundleResult> {
  const root = opts.root ?? repoRoot();
  return bundleOne(root, 'agent/main.ts', opts.outfile ?? join(root, 'dist/bundle/qfleetd.js'), AGENT_RELOCATED);
}

/** The controller CLI, dist/bundle/qfleet.js: uploaded too, for boot-time start (`qfleet start -A` on the local socket). */
export async function buildCliBundle(opts: { root?: string; outfile?: string } = {}): Promise<BundleResult> {
  const root = opts.root ?? repoRoot();
  // A CLI starts many times and briefly, so it starts from a V8 code cache (see code-cache.ts); the agent starts once.
  return bundleOne(root, 'controller/main.ts', opts.outfile ?? join(root, 'dist/bundle/qfleet.js'), CLI_RELOCATED, {
    codeCache: 'qfleet: the controller CLI, bundled (deploy/bundle/build.ts).',
  });
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
