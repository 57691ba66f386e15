import { CommandFailedError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { InstallSpec, Layout, PreparedBase, ProgressSink } from '../host-driver.js';
import { DEFAULT_FETCH_BASE_URL, EMPTY_SHARED_DIRS, SHARED_DIRS, SHARED_LINKS, TEMPLATE_ARCHIVE } from './base-split.js';
import { HostCommands } from './host-commands.js';
import { parseManifest, type ManifestEntry } from './manifest.js';
import { parseLsLines, parseSha256q } from './outputs.js';
import { firstLine, parseRelease, stripPatchLevel } from './release.js';
import { assertHostPath, assertUrl } from './validate.js';

const FETCH_TIMEOUT_MS = 60 * 60_000; // base.txz is ~200 MB; fetch -T 60 catches stalls itself
const EXTRACT_TIMEOUT_MS = 30 * 60_000;
const UPDATE_TIMEOUT_MS = 60 * 60_000; // freebsd-update fetches and applies patches for a whole base

/** What a download plan fetches, in order: base.txz always, lib32.txz when MANIFEST lists it. */
const DISTS = ['base.txz', 'lib32.txz'] as const;

/** sha256 of a release's MANIFEST, keyed by its URL: what makes a plain-http mirror trustworthy. */
export type PinnedManifests = Readonly<Record<string, string>>;

/** Install of a base: staging under layout.stagingDir, then a split and a swap by rename. */
export class BaseInstaller {
  constructor(
    private readonly host: HostCommands,
    private readonly layout: Layout,
    private readonly fetchBaseUrl: string,
    private readonly pinnedManifests: PinnedManifests = {},
  ) {}

  async prepare(spec: InstallSpec, progress: ProgressSink): Promise<PreparedBase> {
    // Decide everything that can be refused before anything is created.
    const plan = await this.plan(spec);
    await this.host.assertFlagsClearable('install a base');
    const work = await this.makeWorkDir();
    const tree = `${work}/tree`;
    try {
      if (plan.kind === 'download') {
        const dists = await this.download(plan.url, plan.pin, work, progress);
        await this.host.run(['mkdir', tree]);
        for (const d of dists) await this.extract(`${work}/${d}`, tree, progress);
      } else if (plan.kind === 'tarball') {
        await this.host.run(['mkdir', tree]);
        await this.extract(plan.path, tree, progress);
      } else {
        progress({ phase: 'extract', message: `copying ${plan.path}` });
        // Through an archive, not cp -R: FreeBSD's cp copies each hard link of /rescue as a file of its own.
        await this.host.run(['tar', '-cpf', `${work}/source.tar`, '-C', plan.path, '.'], { timeoutMs: EXTRACT_TIMEOUT_MS });
        await this.host.run(['mkdir', tree]);
        await this.extract(`${work}/source.tar`, tree, progress);
      }
      return { stagingDir: work, release: await this.patch(work, tree, progress) };
    } catch (err) {
      // Leave nothing behind; the original error is what the caller needs to see.
      await this.host.removeTree(work, 'staging directory').catch(() => undefined);
      throw err;
    }
  }

  private async plan(spec: InstallSpec): Promise<{ kind: 'download'; url: string; pin: string | undefined } | { kind: 'tarball' | 'directory'; path: string }> {
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
        const url = `${base}/${machine}/${arch}/${stripPatchLevel(release)}`;
        const pin = this.pinnedManifests[`${url}/MANIFEST`]?.toLowerCase();
        // Over plain http whoever can rewrite base.txz on the way rewrites its digest in MANIFEST too.
        if (!url.startsWith('https://') && pin === undefined) {
          throw new FailedPreconditionError(
            `refusing the plain-http mirror ${base}: a MANIFEST fetched over http proves nothing about base.txz; ` +
            `use an https:// mirror (the default is ${DEFAULT_FETCH_BASE_URL}) or pin the sha256 of ${url}/MANIFEST in the agent's config (freebsd_manifest_sha256)`,
          );
        }
        return { kind: 'download', url, pin };
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

  /** Fetches MANIFEST and the dists it lists (base.txz, and lib32.txz where the release ships one), each verified. */
  private async download(url: string, pin: string | undefined, work: string, progress: ProgressSink): Promise<string[]> {
    progress({ phase: 'fetch', message: `${url}/MANIFEST` });
    await this.fetch(`${url}/MANIFEST`, `${work}/MANIFEST`);
    if (pin !== undefined) {
      progress({ phase: 'verify', message: 'sha256 of MANIFEST against the pinned digest' });
      await this.verify(`${work}/MANIFEST`, pin, `MANIFEST from ${url}`, 'the digest pinned for it');
    }
    const manifest = parseManifest((await this.host.run(['cat', `${work}/MANIFEST`])).stdout);
    const entries = DISTS.map((d) => manifest.find((e) => e.file === d)).filter((e): e is ManifestEntry => e !== undefined);
    if (entries[0]?.file !== 'base.txz') throw new FailedPreconditionError(`${url}/MANIFEST lists no base.txz`);
    for (const entry of entries) {
      progress({ phase: 'fetch', message: `${url}/${entry.file}` });
      await this.fetch(`${url}/${entry.file}`, `${work}/${entry.file}`);
      progress({ phase: 'verify', message: `sha256 of ${entry.file} against MANIFEST` });
      await this.verify(`${work}/${entry.file}`, entry.sha256, `${entry.file} from ${url}`, 'MANIFEST');
    }
    return entries.map((e) => e.file);
  }

  private async verify(file: string, expected: string, what: string, against: string): Promise<void> {
    const actual = parseSha256q((await this.host.run(['sha256', '-q', file])).stdout);
    if (actual !== expected) {
      throw new FailedPreconditionError(`${what} has sha256 ${actual ?? '(unreadable)'} but ${against} says ${expected}: refusing to use it`);
    }
  }

  private async extract(tarball: string, tree: string, progress: ProgressSink): Promise<void> {
    progress({ phase: 'extract', message: `extracting ${tarball}` });
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

  /**
   * Brings a staged base up to the host's patch level before it is split, as
   * Bastille's `update` does for a release: freebsd-update(8) on the tree (-b),
   * told which release the tree holds (--currently-running: the running
   * kernel is not the tree's), without a tty (--not-running-from-cron), with
   * the tree's own freebsd-update.conf and a work directory in staging. It
   * installs the newest patch of that release, which may be past the host's.
   * Returns the tree's release afterwards, -pN included.
   */
  private async patch(work: string, tree: string, progress: ProgressSink): Promise<string> {
    const before = await this.treeRelease(tree);
    const hostUserland = firstLine((await this.host.run(['freebsd-version', '-u'])).stdout);
    const have = parseRelease(before);
    const want = parseRelease(hostUserland);
    // freebsd-update serves -RELEASE patch levels only; another branch or release is left as it is.
    if (!have || !want || have.branch !== 'RELEASE' || want.branch !== 'RELEASE' || have.version !== want.version || have.patch >= want.patch) {
      return before;
    }
    progress({ phase: 'fetch', message: `freebsd-update: bringing the base from ${before} to the host's ${hostUserland}` });
    await this.host.run(['mkdir', '-p', `${work}/freebsd-update`]);
    try {
      await this.host.run(
        [
          'freebsd-update', '--not-running-from-cron', '-b', tree, '-d', `${work}/freebsd-update`, '-f', `${tree}/etc/freebsd-update.conf`,
          '--currently-running', before, 'fetch', 'install',
        ],
        // PAGER: fetch pages its list of files; cat never waits for a key.
        { env: { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', PAGER: '/bin/cat' }, timeoutMs: UPDATE_TIMEOUT_MS },
      );
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new FailedPreconditionError(
        `cannot bring the base from ${before} to the host's ${hostUserland} with freebsd-update (${detail}); ` +
        `reach update.FreeBSD.org from this host, or install from a directory already at ${hostUserland}`,
      );
    }
    return this.treeRelease(tree);
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
    // Containers are extracted from this archive (hard links stay links, file flags are kept).
    await this.host.run(['tar', '-cpf', `${work}/${TEMPLATE_ARCHIVE}`, '-C', tree, '.'], { timeoutMs: EXTRACT_TIMEOUT_MS });

    progress({ phase: 'swap', message: 'swapping in the new sharedfs and template' });
    // Decided before the rename: afterwards the table still names the old tree by the same path.
    const users = (await this.host.mountTable()).entries.filter((e) => e.fstype === 'nullfs' && e.source === sharedfs).map((e) => e.target);
    const hadShared = await this.host.test('-e', sharedfs);
    const hadTemplate = await this.host.test('-e', template);
    const archive = this.templateArchive;
    const hadArchive = await this.host.test('-e', archive);
    await this.host.run(['mkdir', '-p', this.layout.containersDir]);
    // Up to six renames; if one fails, the ones done are renamed back so the old base stays whole.
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
      if (hadArchive) await rename(archive, `${work}/old-${TEMPLATE_ARCHIVE}`);
      await rename(`${work}/${TEMPLATE_ARCHIVE}`, archive);
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

  /** Where activate keeps the template archive that containers are extracted from. */
  get templateArchive(): string {
    return `${this.layout.rootDir}/${TEMPLATE_ARCHIVE}`;
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
