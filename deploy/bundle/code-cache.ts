import { createHash } from 'node:crypto';

/**
 * Wraps a bundled CommonJS program so that it starts from a V8 code cache.
 *
 * Why: the CLI is one 3 MB file; compiling it is most of what `qfleet` does
 * before its first connection (Node 20 has no module.enableCompileCache). The
 * wrapped file holds the program as one string literal (which V8 scans, not
 * parses) and a small loader that compiles it with vm.Script and the cached
 * data from an earlier run; with no usable cache it compiles as usual and, at
 * exit, saves what V8 compiled during that run (createCachedData after the
 * run, so the functions the command used are in it, not only the top level).
 *
 * The cache is code that will run, so it is only read from and written to a
 * directory owned by the user that is not writable by group or others
 * ($QFLEET_CODE_CACHE_DIR, else $XDG_CACHE_HOME/qfleet, else ~/.cache/qfleet),
 * made only inside a directory that already is the user's own;
 * the file name carries the program's hash, the file's path (FNV-1a), Node's
 * version and the CPU architecture, and V8 refuses (cachedDataRejected) a cache from other flags.
 * QFLEET_CODE_CACHE=off turns it off. Any problem with the cache only means
 * a normal compile: it never fails the command.
 */
export function withCodeCache(program: string, comment: string): string {
  const body = program.replace(/^#!.*\n/, '');
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${body}\n})`;
  return `#!/usr/bin/env node
/* ${comment} The program is the string below; see deploy/bundle/code-cache.ts. */
"use strict";
(${loader.toString()})(${JSON.stringify(wrapped)}, ${JSON.stringify(hash)}, module, require, __filename, __dirname);
`;
}

/* The loader, run as plain JavaScript in the bundle (so: no imports, no TypeScript-only syntax in its body). */
function loader(source: string, hash: string, mod: NodeModule, req: NodeJS.Require, filename: string, dirname: string): void {
  const fs = req('node:fs') as typeof import('node:fs');
  const path = req('node:path') as typeof import('node:path');
  const vm = req('node:vm') as typeof import('node:vm');
  const env = process.env;
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  // Ours alone: a real directory (or file), owned by this user, that group and others cannot write.
  const ours = (p: string, dir: boolean) => {
    try {
      const st = fs.lstatSync(p);
      return (dir ? st.isDirectory() : st.isFile()) && (uid < 0 || st.uid === uid) && (st.mode & 0o022) === 0;
    } catch {
      return false;
    }
  };
  let dir: string | undefined;
  if (env.QFLEET_CODE_CACHE !== 'off') {
    const base = env.QFLEET_CODE_CACHE_DIR || (env.XDG_CACHE_HOME ? path.join(env.XDG_CACHE_HOME, 'qfleet') : env.HOME ? path.join(env.HOME, '.cache', 'qfleet') : '');
    if (base && path.isAbsolute(base)) dir = base;
  }
  // V8 keeps the script name of the run that made the cache (stack traces): one cache per copy of the file.
  let where = 0x811c9dc5;
  for (let i = 0; i < filename.length; i++) where = Math.imul(where ^ filename.charCodeAt(i), 0x01000193) >>> 0;
  const copy = `-${where.toString(16).padStart(8, '0')}-${process.version}-${process.arch}.v8cache`;
  const name = `qfleet-${hash}${copy}`;
  const file = dir ? path.join(dir, name) : undefined;
  let cached: Buffer | undefined;
  if (dir && file && ours(dir, true)) {
    try {
      const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      try {
        const st = fs.fstatSync(fd);
        if (st.isFile() && (uid < 0 || st.uid === uid) && (st.mode & 0o022) === 0) cached = fs.readFileSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch { /* no cache yet, or not one we may use */ }
  }
  // No importModuleDynamically: the bundle has no dynamic imports (build.ts has esbuild turn them
  // into require), and such a callback would not survive a code cache (nodejs/node#43663).
  const script = new vm.Script(source, { filename, ...(cached ? { cachedData: cached } : {}) });
  if (dir && file && (!cached || script.cachedDataRejected)) {
    process.once('exit', () => {
      try {
        // Made only inside a directory that is already ours (never ~/.cache of another user, as
        // root with someone else's HOME would), and without following links.
        if (!ours(dir, true)) {
          const parent = path.dirname(dir);
          // ~/.cache itself may be made, in a home that is the user's own.
          if (!env.QFLEET_CODE_CACHE_DIR && !env.XDG_CACHE_HOME && env.HOME && !fs.existsSync(parent) && ours(env.HOME, true)) fs.mkdirSync(parent, { mode: 0o700 });
          if (!ours(parent, true)) return;
          fs.mkdirSync(dir, { mode: 0o700 });
          if (!ours(dir, true)) return;
        }
        const tmp = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
        try {
          fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600, flag: 'wx' });
          fs.renameSync(tmp, file);
        } catch {
          fs.rmSync(tmp, { force: true });
          return;
        }
        // Earlier builds of this same copy are dead weight (about 1 MB each).
        for (const f of fs.readdirSync(dir)) if (f.startsWith('qfleet-') && f.endsWith(copy) && f !== name) fs.rmSync(path.join(dir, f), { force: true });
      } catch { /* a read-only or foreign cache directory: run uncached next time too */ }
    });
  }
  (script.runInThisContext() as (...a: unknown[]) => void).call(mod.exports, mod.exports, req, mod, filename, dirname);
}
