import { CommandFailedError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { InstallSpec, Layout, PreparedBase, ProgressSink } from '../host-driver.js';
import { EMPTY_SHARED_DIRS, SHARED_DIRS, SHARED_LINKS } from './base-split.js';
import { HostCommands } from './host-commands.js';
import { parseManifest } from './manifest.js';
import { parseLsLines, parseSha256q } from './outputs.js';
import { firstLine, parseRelease, stripPatchLevel } from './release.js';
import { assertHostPath, assertUrl } from './validate.js';

const FETCH_TIMEOUT_MS = 60 * 60_000; // base.txz is ~200 MB; fetch -T 60 catches stalls itself
const EXTRACT_TIMEOUT_MS = 30 * 60_000;

/** Install of a base: staging under layout.stagingDir, then a split and a swap by rename. */
export class BaseInstaller {
  constructor(
    private readonly host: HostCommands,
    private readonly layout: Layout,
    private readonly fetchBaseUrl: string,
  ) {}

  async prepare(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
    // Decide everything that can be refused before anything is created.
    const plan = await this.plan(spec);
    const work = await this.makeWorkDir();
    const tree = `${work}/tree`;
    try {
      if (plan.kind === 'download') {
        await this.download(plan.url, work, progress);
        await this.extract(`${work}/base.txz`, tree, progress);
      } else if (plan.kind === 'tarball') {
        await this.extract(plan.path, tree, progress);
      } else {
        progress({ phase: 'extract', message: `copying ${plan.path}` });
        // cp -a = -RpP: keeps modes, owners, file flags (schg) and symlinks as symlinks.
        await this.host.run(['cp', '-a', plan.path, tree], { timeoutMs: EXTRACT_TIMEOUT_MS });
      }
      return { stagingDir: work, release: await this.treeRelease(tree) };
    } catch (err) {
      // Leave nothing behind; the original error is what the caller needs to see.
      await this.host.removeTree(work, 'staging directory').catch(() => undefined);
      throw err;
    }
  }

  private async plan(spec: InstallSpec): Promise<{ kind: 'download'; url: string } | { kind: 'tarball' | 'directory'; path: string }> {
    switch (spec.method) {
      case 'tarball':
      case 'directory':
        return { kind: spec.method, path: assertHostPath(spec.source, `${spec.method} source`) };
      case 'download': {
        const release = firstLine((await this.host.run(['uname', '-r'])).stdout);
        const parsed = parseRelease(release);
        if (!parsed) throw new FailedPreconditionError(`cannot parse the host release ${JSON.stringify(release)}`);
        if (parsed.branch !== 'RELEASE') {
          throw new FailedPreconditionError(`host runs ${release}: only -RELEASE bases can be downloaded; install from a tarball or directory`);
        }
        const machine = firstLine((await this.host.run(['uname', '-m'])).stdout);
        const arch = firstLine((await this.host.run(['uname', '-p'])).stdout);
        for (const v of [machine, arch]) {
          if (!/^[a-z0-9_]+$/.test(v)) throw new FailedPreconditionError(`unexpected machine name ${JSON.stringify(v)} from uname`);
        }
        const base = spec.mirror ? assertUrl(spec.mirror) : this.fetchBaseUrl;
        return { kind: 'download', url: `${base}/${machine}/${arch}/${stripPatchLevel(release)}` };
      }
      default:
        throw new InvalidArgumentError(`install method ${JSON.stringify(spec.method)} is not supported on FreeBSD (use download, tarball or directory)`);
    }
  }

  /** A fresh, uniquely named directory: mktemp(1) creates it atomically. */
  private async makeWorkDir(): Promise<string> {
    await this.host.run(['mkdir', '-p', this.layout.stagingDir]);
    const dir = firstLine((await this.host.run(['mktemp', '-d', `${this.layout.stagingDir}/base.XXXXXXXX`])).stdout);
    return this.assertStaged(dir);
  }

  /** Only directories this installer made may be activated or removed. */
  assertStaged(dir: string): string {
    const prefix = `${this.layout.stagingDir}/base.`;
    if (!dir.startsWith(prefix) || !/^[A-Za-z0-9]+$/.test(dir.slice(prefix.length))) {
      throw new InvalidArgumentError(`${JSON.stringify(dir)} is not a staging directory under ${this.layout.stagingDir}`);
    }
    return dir;
  }

  private async fetch(url: string, file: string): Promise<void> {
    try {
      await this.host.run(['fetch', '-a', '-T', '60', '-o', file, url], { timeoutMs: FETCH_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof CommandFailedError && /Not Found/.test(err.stderr)) {
        throw new NotFoundError(`${url} was not found (${err.stderr.trim()}): the release may be end-of-life (archive.freebsd.org/old-releases) or not published for this machine; set a mirror`);
      }
      throw err;
    }
  }

  private async download(url: string, work: string, progress: ProgressSink): Promise<void> {
    progress({ phase: 'fetch', message: `${url}/MANIFEST` });
    await this.fetch(`${url}/MANIFEST`, `${work}/MANIFEST`);
    const manifest = parseManifest((await this.host.run(['cat', `${work}/MANIFEST`])).stdout);
    const entry = manifest.find((e) => e.file === 'base.txz');
    if (!entry) throw new FailedPreconditionError(`${url}/MANIFEST lists no base.txz`);
    progress({ phase: 'fetch', message: `${url}/base.txz` });
    await this.fetch(`${url}/base.txz`, `${work}/base.txz`);
    progress({ phase: 'verify', message: `sha256 of base.txz against MANIFEST` });
    const actual = parseSha256q((await this.host.run(['sha256', '-q', `${work}/base.txz`])).stdout);
    if (actual !== entry.sha256) {
      throw new FailedPreconditionError(`base.txz from ${url} has sha256 ${actual ?? '(unreadable)'} but MANIFEST says ${entry.sha256}: refusing to extract it`);
    }
  }

  private async extract(tarball: string, tree: string, progress: ProgressSink): Promise<void> {
    progress({ phase: 'extract', message: `extracting ${tarball}` });
    await this.host.run(['mkdir', tree]);
    // -p: as root, restore modes and file flags (schg).
    await this.host.run(['tar', '-xpf', tarball, '-C', tree], { timeoutMs: EXTRACT_TIMEOUT_MS });
  }

  /** Userland release of a populated tree, from its own freebsd-version script. */
  async treeRelease(tree: string): Promise<string> {
    let out: string;
    try {
      out = (await this.host.run(['sh', `${tree}/bin/freebsd-version`, '-u'])).stdout;
    } catch (err) {
      throw new FailedPreconditionError(`${tree} is not a FreeBSD base (cannot run bin/freebsd-version: ${(err as Error).message})`);
    }
    const release = firstLine(out);
    if (!parseRelease(release)) throw new FailedPreconditionError(`${tree}/bin/freebsd-version printed ${JSON.stringify(release)}`);
    return release;
  }

  async activate(base: PreparedBase, progress: ProgressSink): Promise<{ notes: string[] }> {
    const work = this.assertStaged(base.stagingDir);
    const tree = `${work}/tree`;
    const shared = `${work}/sharedfs`;
    const { sharedfs, template } = this.layout;
    const notes: string[] = [];

    progress({ phase: 'split', message: 'splitting the base into sharedfs and template' });
    const present = new Set([
      ...parseLsLines((await this.host.run(['ls', '-A', tree])).stdout),
      ...parseLsLines((await this.host.run(['ls', '-A', `${tree}/usr`])).stdout).map((n) => `usr/${n}`),
    ]);
    await this.host.run(['mkdir', '-p', `${shared}/usr`]);
    for (const d of SHARED_DIRS) {
      if (present.has(d)) await this.host.run(['mv', `${tree}/${d}`, `${shared}/${d}`]);
    }
    // usr/src and usr/ports are shared but empty; a tree that had them keeps them out of the template.
    for (const d of EMPTY_SHARED_DIRS) {
      if (present.has(d)) await this.host.run(['mv', `${tree}/${d}`, `${work}/unused-${d.replace('/', '-')}`]);
    }
    // Every link must resolve, even for a directory this release does not ship (usr/lib32 on some arches).
    const missing = [...SHARED_DIRS.filter((d) => !present.has(d)), ...EMPTY_SHARED_DIRS].map((d) => `${shared}/${d}`);
    await this.host.run(['mkdir', '-p', ...missing]);
    await this.host.run(['mkdir', `${tree}/sharedfs`]);
    const top = SHARED_LINKS.filter((d) => !d.includes('/'));
    const usr = SHARED_LINKS.filter((d) => d.startsWith('usr/'));
    await this.host.run(['ln', '-s', ...top.map((d) => `/sharedfs/${d}`), tree]);
    await this.host.run(['ln', '-s', ...usr.map((d) => `/sharedfs/${d}`), `${tree}/usr`]);

    progress({ phase: 'swap', message: 'swapping in the new sharedfs and template' });
    // Decided before the rename: afterwards the table still names the old tree by the same path.
    const users = (await this.host.mountTable()).entries.filter((e) => e.fstype === 'nullfs' && e.source === sharedfs).map((e) => e.target);
    const hadShared = await this.host.test('-e', sharedfs);
    const hadTemplate = await this.host.test('-e', template);
    await this.host.run(['mkdir', '-p', this.layout.containersDir]);
    // Four renames; if one fails, the ones done are renamed back so the old base stays whole.
    const done: [string, string][] = [];
    const rename = async (from: string, to: string) => {
      await this.host.run(['mv', from, to]);
      done.unshift([to, from]);
    };
    try {
      if (hadShared) await rename(sharedfs, `${work}/old-sharedfs`);
      await rename(shared, sharedfs);
      if (hadTemplate) await rename(template, `${work}/old-template`);
      await rename(tree, template);
    } catch (err) {
      for (const [from, to] of done) await this.host.run(['mv', from, to]).catch(() => undefined);
      throw err;
    }
    if (hadShared && users.length > 0) {
      const retired = `${this.layout.rootDir}/.retired/${work.slice(work.lastIndexOf('/') + 1)}-sharedfs`;
      await this.host.run(['mkdir', '-p', `${this.layout.rootDir}/.retired`]);
      await this.host.run(['mv', `${work}/old-sharedfs`, retired]);
      notes.push(`previous sharedfs kept at ${retired}: still mounted at ${users.join(', ')} (the mount table keeps calling it ${sharedfs}); remove it after those containers restart`);
    }
    await this.host.removeTree(work, 'staging directory');
    return { notes };
  }

  async discard(base: PreparedBase): Promise<void> {
    await this.host.removeTree(this.assertStaged(base.stagingDir), 'staging directory');
  }

  async installedRelease(): Promise<string | undefined> {
    const script = `${this.layout.sharedfs}/bin/freebsd-version`;
    if (!(await this.host.test('-f', script))) return undefined;
    return this.treeRelease(this.layout.sharedfs);
  }
}
