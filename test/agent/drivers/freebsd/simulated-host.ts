import { createHash } from 'node:crypto';
import type { CommandSpec } from '../../../../agent/runner/command-runner.js';
import type { FakeHandler, FakeReply } from '../../../support/fake-runner.js';
import { putfsent } from './putfsent.js';

/**
 * A small model of a FreeBSD host that answers, as FreeBSD would, the commands
 * the freebsd driver runs: a file tree (dirs, files, symlinks, schg flags), a
 * mount table printed by putfsent()'s TAB rule (or libxo JSON on 14+), devfs
 * rulesets, rc.d services with pids, and procstat rows. Messages follow the
 * captures in test/fixtures/freebsd. Unknown commands get no answer, so the
 * FakeRunner fails the test when the driver starts doing something the model does not know.
 */

type Node = { kind: 'dir' } | { kind: 'file'; data: string; schg?: boolean } | { kind: 'link'; target: string };

interface SimMount {
  source: string;
  target: string;
  fstype: string;
  options: string[];
  /** nullfs: where the mounted tree lives now (it follows a rename; the table text does not). */
  store?: string;
  dump?: number;
  pass?: number;
  ruleset?: number;
}

interface SimProc {
  pid: number;
  comm: string;
  root: string;
  cwd: string;
  service?: string;
  /** The jail it runs in (0: the host, and every chroot). */
  jid?: number;
  /** Dies only from SIGKILL. */
  ignoresTerm?: boolean;
}

/** A running jail, as the kernel keeps it. */
export interface SimJail {
  jid: number;
  name: string;
  path: string;
  hostname: string;
  params: string[];
}

export interface SimulatedHostOptions {
  /** uname -r; default 14.1-RELEASE-p5. */
  readonly release?: string;
  readonly machine?: string;
  readonly arch?: string;
  readonly hostname?: string;
  /** Whether `mount -p --libxo json` works; default: major version >= 14. */
  readonly libxo?: boolean;
  /** devfs rulesets loaded; default 1-4 (devfsrules_hide_all … devfsrules_jail). */
  readonly rulesets?: readonly number[];
  readonly mirror?: string;
  /** Host userland (`freebsd-version -u`); default: the release (uname -r). */
  readonly userland?: string;
  /** Newest patch level freebsd-update offers for the release; default: the host's. */
  readonly latestPatch?: number;
  /** kern.securelevel; default -1 (the default of a fresh install). */
  readonly securelevel?: number;
  /** kern.racct.enable: 1, 0 (GENERIC's default), or 'absent' (a kernel without RACCT); default 0. */
  readonly racct?: 0 | 1 | 'absent';
  /**
   * rc scripts without a pidfile: rc.subr's _find_processes then matches by
   * process name in the caller's jail (every chroot and the host are jail 0),
   * so their status and stop reach same-named processes anywhere in jail 0.
   */
  readonly noPidfile?: readonly string[];
}

const ok = (stdout = ''): FakeReply => ({ stdout, exitCode: 0 });
const fail = (stderr: string, exitCode = 1, stdout = ''): FakeReply => ({ stderr, stdout, exitCode });
const parent = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const under = (p: string, root: string) => p === root || p.startsWith(root === '/' ? '/' : `${root}/`);

export class SimulatedFreeBSD {
  readonly release: string;
  readonly machine: string;
  readonly arch: string;
  readonly hostname: string;
  readonly libxo: boolean;
  readonly rulesets: Set<number>;
  /** Storage: canonical paths where nodes live (mounts redirect lookups into it). */
  readonly fs = new Map<string, Node>();
  readonly mountList: SimMount[] = [];
  readonly procs: SimProc[] = [];
  /** What the remote side serves: URL -> content. */
  readonly remote = new Map<string, string>();
  /** Log files that rc output was sent to. */
  readonly logFiles: string[] = [];
  hostUserland: string;
  latestPatch: number;
  securelevel: number;
  racct: 0 | 1 | 'absent';
  readonly noPidfile: Set<string>;
  readonly jails: SimJail[] = [];
  /** rctl rules, as added. */
  readonly rctl: string[] = [];
  private nextJid = 1;
  private nextPid = 2000;
  private tempCounter = 0;

  constructor(opts: SimulatedHostOptions = {}) {
    this.release = opts.release ?? '14.1-RELEASE-p5';
    this.machine = opts.machine ?? 'amd64';
    this.arch = opts.arch ?? this.machine;
    this.hostname = opts.hostname ?? 'fbsd1.example.net';
    this.libxo = opts.libxo ?? Number(this.release.split('.')[0]) >= 14;
    this.rulesets = new Set(opts.rulesets ?? [1, 2, 3, 4]);
    this.hostUserland = opts.userland ?? this.release;
    this.latestPatch = opts.latestPatch ?? Number(/-p(\d+)$/.exec(this.release)?.[1] ?? 0);
    this.securelevel = opts.securelevel ?? -1;
    this.racct = opts.racct ?? 0;
    this.noPidfile = new Set(opts.noPidfile ?? []);
    this.fs.set('/', { kind: 'dir' });
    for (const d of ['/dev', '/etc', '/tmp', '/usr', '/usr/local', '/var', '/var/tmp', '/var/log', '/home']) this.fs.set(d, { kind: 'dir' });
    this.mountList.push(
      { source: '/dev/ada0p2', target: '/', fstype: 'ufs', options: ['rw'], dump: 1, pass: 1 },
      { source: 'devfs', target: '/dev', fstype: 'devfs', options: ['rw'] },
    );
    this.procs.push({ pid: 1, comm: 'init', root: '/', cwd: '/' }, { pid: 788, comm: 'sshd', root: '/', cwd: '/' });
    const dist = `${opts.mirror ?? 'https://download.freebsd.org/releases'}/${this.machine}/${this.arch}/${this.userland}`;
    const tarball = this.tarball(this.userland);
    this.remote.set(`${dist}/base.txz`, tarball);
    // Real MANIFESTs list lib32.txz on amd64 and (14.x) arm64; see test/fixtures/freebsd/MANIFEST-*.
    const lib32 = this.hasLib32 ? this.lib32Tarball(this.userland) : undefined;
    if (lib32 !== undefined) this.remote.set(`${dist}/lib32.txz`, lib32);
    this.remote.set(`${dist}/MANIFEST`, SimulatedFreeBSD.manifest(tarball, lib32));
  }

  get hasLib32(): boolean {
    return this.machine === 'amd64' || this.machine === 'arm64';
  }

  /** Contents standing in for a lib32.txz of `release`. */
  lib32Tarball(release: string): string {
    return `SIMULATED-LIB32 ${release} ${this.machine}\n`;
  }

  /** The release a freshly extracted base.txz reports (no -pN: that comes from freebsd-update). */
  get userland(): string {
    return this.release.replace(/-p\d+$/, '');
  }

  /** Contents standing in for a base.txz of `release`. */
  tarball(release: string): string {
    return `SIMULATED-BASE ${release} ${this.machine}\n`;
  }

  static sha256(data: string): string {
    return createHash('sha256').update(data).digest('hex');
  }

  static manifest(baseTxz: string, lib32Txz?: string): string {
    const line = (f: string, sha: string, n: number, d: string, desc: string, on: string) => `${f}\t${sha}\t${n}\t${d}\t"${desc}"\t${on}\n`;
    return (
      line('base-dbg.txz', 'd4fd842ddfe0dd9aaa634d2c1dea1934e526a1367a6f9bf675ae08efd560c3df', 1702, 'base_dbg', 'Base system (Debugging)', 'off') +
      line('base.txz', SimulatedFreeBSD.sha256(baseTxz), 29832, 'base', 'Base system (MANDATORY)', 'on') +
      line('kernel.txz', 'f05c0a74f101ee5638185c36003ed4d3dd6972826de6a64d91ec5cd0fdd3a0a6', 877, 'kernel', 'Kernel (MANDATORY)', 'on') +
      (lib32Txz === undefined ? '' : line('lib32.txz', SimulatedFreeBSD.sha256(lib32Txz), 730, 'lib32', '32-bit compatibility libraries', 'on'))
    );
  }

  /** For FakeRunner.handle(). */
  readonly handler: FakeHandler = (spec) => this.exec(spec);

  // --- file tree ---------------------------------------------------------------

  /** Where a namespace path's node is stored, after nullfs redirection. */
  private store(ns: string): string {
    let best: SimMount | undefined;
    for (const m of this.mountList) {
      if (m.store !== undefined && under(ns, m.target) && (!best || m.target.length >= best.target.length)) best = m;
    }
    return best ? best.store! + ns.slice(best.target.length) : ns;
  }

  /**
   * Resolves like namei(): symlinks are followed (absolute ones from `chroot`),
   * the last one only when `follow`. Returns the namespace path (what realpath
   * prints), its storage key and node (undefined when only the last part is missing).
   */
  resolve(path: string, follow = true, chroot = ''): { ns: string; store: string; node: Node | undefined } | undefined {
    let comps = path.split('/').filter((c) => c !== '' && c !== '.');
    let ns = chroot;
    for (let hops = 0; comps.length > 0; ) {
      const c = comps.shift()!;
      if (c === '..') {
        ns = ns.length > chroot.length ? parent(ns) : ns;
        if (ns === '/') ns = '';
        continue;
      }
      const next = `${ns}/${c}`;
      const node = this.fs.get(this.store(next));
      if (!node) return comps.length === 0 ? { ns: next, store: this.store(next), node: undefined } : undefined;
      if (node.kind === 'link' && (comps.length > 0 || follow)) {
        if (++hops > 32) return undefined;
        comps = [...node.target.split('/').filter((x) => x !== '' && x !== '.'), ...comps];
        if (node.target.startsWith('/')) ns = chroot;
        continue;
      }
      if (comps.length > 0 && node.kind !== 'dir') return undefined;
      ns = next;
    }
    const p = ns || '/';
    return { ns: p, store: this.store(p), node: this.fs.get(this.store(p)) };
  }

  private keysUnder(store: string): string[] {
    return [...this.fs.keys()].filter((k) => under(k, store));
  }

  mkdirP(path: string): void {
    let cur = '';
    for (const c of path.split('/').filter(Boolean)) {
      cur = `${cur}/${c}`;
      const r = this.resolve(cur);
      if (!r) throw new Error(`sim mkdirP ${path}`);
      if (!r.node) this.fs.set(r.store, { kind: 'dir' });
    }
  }

  writeFile(path: string, data: string, schg = false): void {
    this.mkdirP(parent(path));
    this.fs.set(this.resolve(path, false)!.store, { kind: 'file', data, ...(schg ? { schg } : {}) });
  }

  symlink(target: string, path: string): void {
    this.fs.set(this.resolve(path, false)!.store, { kind: 'link', target });
  }

  /** Populates `dir` as a base.txz of `release` would (a few representative entries). */
  populateBase(dir: string, release: string): void {
    const dirs = [
      'bin', 'boot', 'dev', 'etc', 'etc/rc.d', 'lib', 'libexec', 'media', 'mnt', 'proc', 'rescue', 'root', 'sbin', 'tmp', 'usr', 'usr/bin',
      'usr/include', 'usr/lib', ...(this.machine === 'amd64' ? ['usr/lib32'] : []), 'usr/libdata', 'usr/libexec', 'usr/obj',
      'usr/sbin', 'usr/share', 'usr/share/man', 'usr/src', 'usr/tests', 'var', 'var/db', 'var/empty', 'var/log', 'var/run',
    ];
    for (const d of dirs) this.mkdirP(`${dir}/${d}`);
    this.writeFile(`${dir}/COPYRIGHT`, 'Copyright (c) 1992-2024 The FreeBSD Project.\n');
    this.writeFile(`${dir}/bin/sh`, 'ELF sh\n');
    this.writeFile(`${dir}/bin/test`, 'ELF test\n');
    this.writeFile(`${dir}/bin/freebsd-version`, `#!/bin/sh\nUSERLAND_VERSION="${release}"\n`);
    this.writeFile(`${dir}/lib/libc.so.7`, 'ELF libc\n', true);
    this.writeFile(`${dir}/sbin/init`, 'ELF init\n', true);
    this.writeFile(`${dir}/usr/bin/su`, 'ELF su\n', true);
    this.writeFile(`${dir}/usr/sbin/service`, '#!/bin/sh\n');
    this.writeFile(`${dir}/usr/sbin/cron`, 'ELF cron\n');
    this.writeFile(`${dir}/etc/rc.subr`, '# rc.subr\n');
    this.writeFile(`${dir}/etc/freebsd-update.conf`, 'Components src world kernel\n');
    this.writeFile(`${dir}/boot/loader`, 'ELF loader\n');
    // One binary under many names in a real base (hard links; the model has no link count).
    this.writeFile(`${dir}/rescue/rescue`, 'ELF rescue\n', true);
    this.writeFile(`${dir}/etc/rc.d/cron`, '#!/bin/sh\n# PROVIDE: cron\n');
    this.writeFile(`${dir}/etc/rc.d/sshd`, '#!/bin/sh\n# PROVIDE: sshd\n');
    this.writeFile(`${dir}/etc/login.conf`, 'default:\\\n');
    this.writeFile(`${dir}/var/empty/.keep`, '', true);
  }

  // --- mount table ---------------------------------------------------------------

  mountP(): string {
    return this.mountList.map((m) => `${putfsent(m)}\n`).join('');
  }

  mountPJson(): string {
    const fstab = this.mountList.map((m) => ({ device: m.source, mntpoint: m.target, fstype: m.fstype, opts: m.options.join(','), dump: m.dump ?? 0, pass: m.pass ?? 0 }));
    return `${JSON.stringify({ __version: '1', mount: { fstab } })}\n`;
  }

  /** Mount targets at or under `root`. */
  mountedUnder(root: string): string[] {
    return this.mountList.filter((m) => under(m.target, root)).map((m) => m.target);
  }

  // --- processes -------------------------------------------------------------------

  procstatAf(only?: readonly number[]): string {
    const row = (p: SimProc, fd: string, v: string, path: string) =>
      `${String(p.pid).padStart(5)} ${p.comm.padEnd(16)} ${fd.padStart(5)} v ${v} r-------   -       - -   ${path}\n`;
    let out = '  PID COMM                FD T V FLAGS    REF  OFFSET PRO NAME\n';
    for (const p of this.procs) {
      if (only && !only.includes(p.pid)) continue;
      out += row(p, 'text', 'r', `${p.root === '/' ? '' : p.root}/usr/sbin/${p.comm}`) + row(p, 'cwd', 'd', p.cwd) + row(p, 'root', 'd', p.root);
    }
    return out;
  }

  // --- commands ----------------------------------------------------------------------

  exec(spec: CommandSpec): FakeReply | undefined {
    const [cmd, ...a] = spec.argv;
    switch (cmd) {
      case 'uname': return this.uname(a);
      case 'mkdir': return this.mkdir(a);
      case 'mktemp': return this.mktemp(a);
      case 'fetch': return this.fetch(a);
      case 'cat': return this.cat(a);
      case 'sha256': return this.sha(a);
      case 'tar': return this.tar(a);
      case 'cp': return this.cp(a);
      case 'sh': return this.sh(a);
      case 'freebsd-version': return a.join(' ') === '-u' ? ok(`${this.hostUserland}\n`) : this.unknown(spec);
      case 'freebsd-update': return this.freebsdUpdate(a, spec);
      case 'sysctl': return this.sysctl(a, spec);
      case 'ls': return this.ls(a);
      case 'mv': return this.mv(a);
      case 'ln': return this.ln(a);
      case 'test': return this.test(a);
      case 'realpath': return this.realpath(a);
      case 'mount_nullfs': return this.mountNullfs(a);
      case 'mount': return this.mount(a);
      case 'devfs': return this.devfs(a);
      case 'umount': return this.umount(a);
      case 'chroot': return this.chroot(a, spec);
      case 'procstat': return this.procstat(a, spec);
      case 'jail': return this.jail(a);
      case 'jls': return a.join(' ') === '--libxo json -v' ? ok(this.jlsJson()) : this.unknown(spec);
      case 'jexec': return this.jexec(a, spec);
      case 'pgrep': return this.pgrep(a, spec);
      case 'pkill': return this.pkill(a, spec);
      case 'rctl': return this.rctlCmd(a);
      case 'kill': return this.kill(a);
      case 'chflags': return this.chflags(a);
      case 'rm': return this.rm(a);
      case 'du': return this.du(a);
      case 'nice': return this.nice(a, spec);
      default: return this.unknown(spec);
    }
  }

  /** `nice -n N UTILITY ARGS...`: the utility's own answer (the model has no scheduler to slow). */
  private nice(a: string[], spec: CommandSpec): FakeReply | undefined {
    if (a[0] !== '-n' || !/^-?\d+$/.test(a[1] ?? '') || !a[2]) return this.unknown(spec);
    return this.exec({ ...spec, argv: a.slice(2) });
  }

  /** A command the model does not know: no answer, so the FakeRunner fails the test naming it. */
  private unknown(_spec: CommandSpec): undefined {
    return undefined;
  }

  private uname(a: string[]): FakeReply {
    const v: Record<string, string> = { '-s': 'FreeBSD', '-r': this.release, '-m': this.machine, '-p': this.arch, '-n': this.hostname };
    const out = a[0] !== undefined && a.length === 1 ? v[a[0]] : undefined;
    return out ? ok(`${out}\n`) : fail('usage: uname [-abiKmnoprsUv]');
  }

  private mkdir(a: string[]): FakeReply {
    const p = a[0] === '-p';
    for (const path of p ? a.slice(1) : a) {
      const r = this.resolve(path);
      if (p) {
        if (r?.node && r.node.kind !== 'dir') return fail(`mkdir: ${path}: File exists`);
        this.mkdirP(path);
        continue;
      }
      if (!r || this.resolve(parent(path))?.node?.kind !== 'dir') return fail(`mkdir: ${path}: No such file or directory`);
      if (r.node) return fail(`mkdir: ${path}: File exists`);
      this.fs.set(r.store, { kind: 'dir' });
    }
    return ok();
  }

  private mktemp(a: string[]): FakeReply {
    const tpl = a[1];
    if (a[0] !== '-d' || !tpl) return fail('usage: mktemp [-d] [-p tmpdir] [-q] [-t prefix] [-u] template ...');
    const xs = /X+$/.exec(tpl)?.[0].length ?? 0;
    const path = tpl.slice(0, tpl.length - xs) + `s${++this.tempCounter}`.padEnd(xs, '0');
    const r = this.resolve(path);
    if (!r || this.resolve(parent(path))?.node?.kind !== 'dir') return fail(`mktemp: mkdtemp failed on ${tpl}: No such file or directory`);
    this.fs.set(r.store, { kind: 'dir' });
    return ok(`${path}\n`);
  }

  private fetch(a: string[]): FakeReply {
    const o = a.indexOf('-o');
    const file = a[o + 1];
    const url = a[a.length - 1];
    if (o < 0 || !file || !url) return fail('usage: fetch [-146AadFlMmnPpqRrsUv] ... -o file URL');
    const data = this.remote.get(url);
    if (data === undefined) return fail(`fetch: ${url}: Not Found`);
    if (this.resolve(parent(file))?.node?.kind !== 'dir') return fail(`fetch: ${file}: open(): No such file or directory`);
    this.writeFile(file, data);
    return fail(`${base(url).padEnd(55)}${String(data.length).padStart(4)}  B  519 kBps    00s\n`, 0);
  }

  private file(path: string | undefined): Extract<Node, { kind: 'file' }> | undefined {
    const n = path ? this.resolve(path)?.node : undefined;
    return n?.kind === 'file' ? n : undefined;
  }

  private cat(a: string[]): FakeReply {
    const f = this.file(a[0]);
    return f ? ok(f.data) : fail(`cat: ${a[0]}: No such file or directory`);
  }

  private sha(a: string[]): FakeReply {
    const f = this.file(a[1]);
    if (a[0] !== '-q') return fail('usage: sha256 [-pqrtx] [-c string] [-s string] [files ...]');
    return f ? ok(`${SimulatedFreeBSD.sha256(f.data)}\n`) : fail(`sha256: ${a[1]}: No such file or directory`);
  }

  private tar(a: string[]): FakeReply | undefined {
    const [flags, archive, c, dir, dot] = a;
    if (flags === '-cpf' && archive && c === '-C' && dir && dot === '.' && a.length === 5) return this.tarCreate(archive, dir);
    if (flags !== '-xpf' || c !== '-C' || !archive || !dir || a.length !== 4) return undefined;
    const f = this.file(archive);
    if (!f) return fail(`tar: Error opening archive: Failed to open '${archive}'`);
    const d = this.resolve(dir);
    if (d?.node?.kind !== 'dir') return fail(`tar: could not chdir to '${dir}'`);
    if (f.data.startsWith(SimulatedFreeBSD.TAR)) {
      const entries = JSON.parse(f.data.slice(SimulatedFreeBSD.TAR.length)) as [string, Node][];
      for (const [rel, node] of entries) this.fs.set(d.store + rel, { ...node });
      return ok();
    }
    const lib32 = /^SIMULATED-LIB32 (\S+) /.exec(f.data);
    if (lib32) {
      this.writeFile(`${d.ns}/usr/lib32/libc.so.7`, 'ELF32 libc\n', true);
      return ok();
    }
    const m = /^SIMULATED-BASE (\S+) /.exec(f.data);
    if (!m) return fail('tar: Error opening archive: Unrecognized archive format');
    this.populateBase(d.ns, m[1]!);
    return ok();
  }

  static readonly TAR = 'SIMULATED-TAR\n';

  /** `tar -cpf ARCHIVE -C DIR .`: the subtree as stored (modes and flags included), symlinks not followed. */
  private tarCreate(archive: string, dir: string): FakeReply {
    const d = this.resolve(dir);
    if (d?.node?.kind !== 'dir') return fail(`tar: could not chdir to '${dir}'`);
    const entries = this.keysUnder(d.store).filter((k) => k !== d.store).map((k) => [k.slice(d.store.length), this.fs.get(k)!] as const);
    if (this.resolve(parent(archive))?.node?.kind !== 'dir') return fail(`tar: Failed to open '${archive}'`);
    this.writeFile(archive, SimulatedFreeBSD.TAR + JSON.stringify(entries));
    return ok();
  }

  /** What `freebsd-update -b TREE … --currently-running R fetch install` leaves: the tree at the newest patch of R. */
  private freebsdUpdate(a: string[], spec: CommandSpec): FakeReply | undefined {
    const at = (flag: string) => { const i = a.indexOf(flag); return i >= 0 ? a[i + 1] : undefined; };
    const tree = at('-b');
    const running = at('--currently-running');
    const work = at('-d');
    if (!tree || !running || !work || !a.includes('--not-running-from-cron') || a.slice(-2).join(' ') !== 'fetch install') return undefined;
    if (spec.env?.PAGER !== '/bin/cat') return fail('simulated host: freebsd-update would wait in less(1) for a key', 99);
    if (this.resolve(work)?.node?.kind !== 'dir') return fail('', 1, `freebsd-update: Directory does not exist or is not writable: ${work}\n`);
    const script = this.file(`${tree}/bin/freebsd-version`);
    if (!script) return undefined;
    const release = running.replace(/-p\d+$/, '');
    const patched = this.latestPatch > 0 ? `${release}-p${this.latestPatch}` : release;
    this.writeFile(`${tree}/bin/freebsd-version`, `#!/bin/sh\nUSERLAND_VERSION="${patched}"\n`);
    // Not a capture: the driver reads no output from freebsd-update.
    return ok(`simulated freebsd-update: ${running} -> ${patched}\n`);
  }

  private copyTree(fromStore: string, toStore: string): void {
    for (const k of this.keysUnder(fromStore)) {
      const n = this.fs.get(k)!;
      this.fs.set(toStore + k.slice(fromStore.length), { ...n });
    }
  }

  private cp(a: string[]): FakeReply {
    const [flag, src, dst] = a;
    if (flag !== '-a' || !src || !dst) return fail('usage: cp [-R [-H | -L | -P]] [-f | -i | -n] [-alpsvx] source_file target_file');
    const s = this.resolve(src, false);
    if (!s?.node) return fail(`cp: ${src}: No such file or directory`);
    let d = this.resolve(dst);
    if (d?.node?.kind === 'dir') d = this.resolve(`${dst}/${base(src)}`);
    if (!d || this.resolve(parent(d.ns))?.node?.kind !== 'dir') return fail(`cp: ${dst}: No such file or directory`);
    this.copyTree(s.store, d.store);
    return ok();
  }

  private sh(a: string[]): FakeReply {
    const [script, flag] = a;
    const f = this.file(script);
    if (!f) return fail(`sh: cannot open ${script}: No such file or directory`, 2);
    const m = /USERLAND_VERSION="([^"]+)"/.exec(f.data);
    if (flag !== '-u' || !m) return fail('usage: freebsd-version [-kru] [-j jail]');
    return ok(`${m[1]}\n`);
  }

  private ls(a: string[]): FakeReply {
    const [flag, dir] = a;
    const r = dir ? this.resolve(dir) : undefined;
    if (flag !== '-A' || !r?.node) return fail(`ls: ${dir}: No such file or directory`);
    const names = [...this.fs.keys()].filter((k) => parent(k) === r.store && k !== r.store).map(base).sort();
    return ok(names.map((n) => `${n}\n`).join(''));
  }

  private mv(a: string[]): FakeReply {
    const [src, dst] = a;
    if (!src || !dst || a.length !== 2) return fail('usage: mv [-f | -i | -n] [-hv] source target');
    const s = this.resolve(src, false);
    if (!s?.node) return fail(`mv: rename ${src} to ${dst}: No such file or directory`);
    let d = this.resolve(dst);
    if (d?.node?.kind === 'dir') d = this.resolve(`${dst}/${base(src)}`);
    if (!d || d.node || this.resolve(parent(d.ns))?.node?.kind !== 'dir') return fail(`mv: rename ${src} to ${dst}: File exists`);
    if (this.mountList.some((m) => m.target === s.ns)) return fail(`mv: rename ${src} to ${dst}: Device busy`);
    for (const k of this.keysUnder(s.store)) {
      const n = this.fs.get(k)!;
      this.fs.delete(k);
      this.fs.set(d.store + k.slice(s.store.length), n);
    }
    // A nullfs mount holds the vnode, not the name: it follows the rename.
    for (const m of this.mountList) if (m.store !== undefined && under(m.store, s.store)) m.store = d.store + m.store.slice(s.store.length);
    return ok();
  }

  private ln(a: string[]): FakeReply {
    if (a[0] !== '-s' || a.length < 3) return fail('usage: ln [-s [-F] | -L | -P] [-f | -i] [-hnv] source_file [target_file]');
    const targets = a.slice(1, -1);
    const dir = a[a.length - 1]!;
    const d = this.resolve(dir);
    const paths = d?.node?.kind === 'dir' ? targets.map((t) => `${dir}/${base(t)}`) : targets.length === 1 ? [dir] : [];
    if (paths.length === 0) return fail(`ln: ${dir}: Not a directory`);
    for (const [i, p] of paths.entries()) {
      const r = this.resolve(p, false);
      if (!r) return fail(`ln: ${p}: No such file or directory`);
      if (r.node) return fail(`ln: ${p}: File exists`);
      this.fs.set(r.store, { kind: 'link', target: targets[i]! });
    }
    return ok();
  }

  private test(a: string[]): FakeReply {
    const [flag, path] = a;
    const n = path ? this.resolve(path)?.node : undefined;
    const yes = flag === '-e' ? !!n : flag === '-d' ? n?.kind === 'dir' : flag === '-f' ? n?.kind === 'file' : false;
    return { exitCode: yes ? 0 : 1 };
  }

  private realpath(a: string[]): FakeReply {
    const r = a[0] ? this.resolve(a[0]) : undefined;
    return r?.node ? ok(`${r.ns}\n`) : fail(`realpath: ${a[0]}: No such file or directory`);
  }

  private mountNullfs(a: string[]): FakeReply {
    const [o, opts, src, dst] = a;
    if (o !== '-o' || !opts || !src || !dst) return fail('usage: mount_nullfs [-o options] target mount-point');
    const s = this.resolve(src);
    const d = this.resolve(dst);
    if (s?.node?.kind !== 'dir') return fail(`mount_nullfs: ${src}: No such file or directory`);
    if (d?.node?.kind !== 'dir') return fail(`mount_nullfs: ${dst}: No such file or directory`);
    const list = opts.split(',');
    // nocover/emptydir are checks at mount time (MNT_CMDFLAGS), not options the table shows. Error wording not confirmed.
    if (list.includes('nocover') && this.mountList.some((m) => m.target === d.ns)) return fail(`mount_nullfs: ${dst}: Device busy`);
    if (list.includes('emptydir') && [...this.fs.keys()].some((k) => parent(k) === d.store && k !== d.store)) return fail(`mount_nullfs: ${dst}: Directory not empty`);
    this.mountList.push({ source: s.ns, target: d.ns, fstype: 'nullfs', options: list.filter((x) => x !== 'nocover' && x !== 'emptydir'), store: s.store });
    return ok();
  }

  private mount(a: string[]): FakeReply | undefined {
    const args = a.join(' ');
    if (args === '-p') return ok(this.mountP());
    if (args === '-p --libxo json') {
      return this.libxo ? ok(this.mountPJson()) : fail('mount: illegal option -- -\nusage: mount [-adflpruvw] [-F fstab] [-o options] [-t ufs | external_type]');
    }
    const [t, type, o, opts, dev, dst] = a;
    if (t === '-t' && type === 'tmpfs' && o === '-o' && opts && dev === 'tmpfs' && dst && a.length === 6) {
      const d = this.resolve(dst);
      if (d?.node?.kind !== 'dir') return fail(`mount: ${dst}: No such file or directory`);
      this.mountList.push({ source: 'tmpfs', target: d.ns, fstype: 'tmpfs', options: opts.split(','), store: `/.tmpfs${d.ns}` });
      this.fs.set(`/.tmpfs${d.ns}`, { kind: 'dir' });
      return ok();
    }
    const rs = /^ruleset=(\d+)$/.exec(opts ?? '');
    if (t === '-t' && type === 'devfs' && o === '-o' && rs && dev === 'devfs' && dst && a.length === 6) {
      const d = this.resolve(dst);
      if (d?.node?.kind !== 'dir') return fail(`mount: ${dst}: No such file or directory`);
      // devfs(5): the mount's ruleset from the start; an unknown number makes an empty ruleset (hides nothing).
      this.mountList.push({ source: 'devfs', target: d.ns, fstype: 'devfs', options: ['rw'], ruleset: Number(rs[1]) });
      return ok();
    }
    return undefined;
  }

  private devfs(a: string[]): FakeReply | undefined {
    if (a.join(' ') === 'rule showsets') return ok([...this.rulesets].sort((x, y) => x - y).map((n) => `${n}\n`).join(''));
    const [m, mp, rule, s, n, verb] = a;
    if (m === '-m' && rule === 'rule' && s === '-s' && verb === 'applyset' && mp && n) {
      const mnt = [...this.mountList].reverse().find((x) => x.target === mp && x.fstype === 'devfs');
      if (!mnt) return fail(`devfs: ${mp}: not a devfs mount`); // wording not confirmed; the driver never gets here
      if (!this.rulesets.has(Number(n))) return fail('devfs: ioctl DEVFSIO_SAPPLY: No such process');
      mnt.ruleset = Number(n);
      return ok();
    }
    return undefined;
  }

  private umount(a: string[]): FakeReply {
    const [path] = a;
    const i = path && a.length === 1 ? this.mountList.map((m) => m.target).lastIndexOf(path) : -1;
    if (i < 0) return fail(`umount: ${path}: not a file system root directory`);
    const m = this.mountList[i]!;
    const nested = this.mountList.some((x, j) => j > i && x !== m && under(x.target, m.target) && x.target !== m.target);
    // Processes chrooted into the container hold its mounts.
    const busy = this.procs.some((p) => under(p.root, parent(m.target)) && p.root !== '/');
    if (nested || busy) return fail(`umount: unmount of ${path} failed: Device busy`);
    this.mountList.splice(i, 1);
    return ok();
  }

  private chroot(a: string[], spec: CommandSpec): FakeReply | undefined {
    const [newroot, cmd, service, verb] = a;
    const r = newroot ? this.resolve(newroot) : undefined;
    if (r?.node?.kind !== 'dir') return fail(`chroot: ${newroot}: No such file or directory`);
    const root = r.ns;
    if (cmd !== '/usr/sbin/service' || !service || !verb || a.length !== 4) return undefined;
    if (this.resolve(cmd, true, root)?.node?.kind !== 'file') return fail(`chroot: ${cmd}: No such file or directory`);
    const script = ['/etc/rc.d', '/usr/local/etc/rc.d'].some((d) => this.resolve(`${d}/${service}`, true, root)?.node?.kind === 'file');
    if (!script) {
      return fail('', 1, `${service} does not exist in /etc/rc.d or the local startup\ndirectories (/usr/local/etc/rc.d), or is not executable\n`);
    }
    return this.rc(root, 0, service, verb, spec);
  }

  /**
   * rc.subr's run_rc_command for onestatus/onestart/onestop, run with root `root`
   * in jail `jid`. The pids it acts on: the service's own (its pidfile), or for a
   * script without one every process of that name in the same jail (_find_processes).
   */
  private rc(root: string, jid: number, service: string, verb: string, spec: CommandSpec): FakeReply {
    const found = this.noPidfile.has(service)
      ? this.procs.filter((p) => p.comm === service && (p.jid ?? 0) === jid)
      : this.procs.filter((p) => p.root === root && p.service === service);
    const running = found[0];
    const pidList = found.map((p) => p.pid).join(' ');
    switch (verb) {
      case 'onestatus':
        return running ? ok(`${service} is running as pid ${pidList}.\n`) : fail('', 1, `${service} is not running.\n`);
      case 'onestart': {
        // A daemon keeps the command's stdout open: a real runner would wait forever on a pipe.
        if (!spec.logFile) return fail('simulated host: onestart without logFile would hang on the daemon', 99);
        this.logFiles.push(spec.logFile);
        if (running) return fail('', 1, `${service} already running? (pid=${running.pid}).\n`);
        if (!this.mountList.some((m) => m.target === `${root}/dev` && m.fstype === 'devfs')) {
          return fail('/etc/rc.subr: cannot create /dev/null: No such file or directory');
        }
        this.procs.push({ pid: this.nextPid++, comm: service, root, cwd: '/', service, ...(jid ? { jid } : {}) });
        return ok(`Starting ${service}.\n`);
      }
      case 'onestop':
        if (!running) return fail('', 1, `${service} not running? (check /var/run/${service}.pid).\n`);
        for (const p of found) this.procs.splice(this.procs.indexOf(p), 1);
        return ok(`Stopping ${service}.\nWaiting for PIDS: ${pidList}.\n`);
      default:
        return fail(`/etc/rc.d/${service}: unknown directive '${verb}'.`);
    }
  }

  /** Starts a process rooted at `root` that no rc script knows about (a stray daemon). */
  spawnStray(root: string, comm = 'stray', more: Partial<SimProc> = {}): number {
    const pid = this.nextPid++;
    this.procs.push({ pid, comm, root, cwd: '/', ...more });
    return pid;
  }

  // --- sysctl, procstat, jails, rctl -------------------------------------------------

  private sysctl(a: string[], spec: CommandSpec): FakeReply | undefined {
    const args = a.join(' ');
    if (args === '-n kern.securelevel') return ok(`${this.securelevel}\n`);
    if (args === '-n kern.racct.enable') {
      // sysctl(8)'s message for a name the kernel lacks; not from a capture.
      return this.racct === 'absent' ? fail("sysctl: unknown oid 'kern.racct.enable'") : ok(`${this.racct}\n`);
    }
    return this.unknown(spec);
  }

  private procstat(a: string[], spec: CommandSpec): FakeReply | undefined {
    if (a.join(' ') === '-af') return ok(this.procstatAf());
    if (a[0] === '-f' && a.length > 1 && a.slice(1).every((x) => /^\d+$/.test(x))) {
      const pids = a.slice(1).map(Number);
      const gone = pids.filter((p) => !this.procs.some((x) => x.pid === p));
      // procstat warns about a pid that is gone and exits 1; wording not confirmed.
      return { stdout: this.procstatAf(pids), stderr: gone.map((p) => `procstat: kinfo_getproc(${p}): No such process\n`).join(''), exitCode: gone.length ? 1 : 0 };
    }
    return this.unknown(spec);
  }

  /** `jls --libxo json -v`, in the shape of the captures in test/fixtures/freebsd/jls-libxo-json.txt. */
  jlsJson(): string {
    const rows = this.jails.map((j) => `{"jid":${j.jid},"hostname":${JSON.stringify(j.hostname)},"path":${JSON.stringify(j.path)},"name":${JSON.stringify(j.name)},"state":"ACTIVE","cpusetid":${j.jid + 2}, "ipv4_addrs": [], "ipv6_addrs": []}`);
    return `{"__version": "2", "jail-information": {"jail": [${rows.join(', ')}]}}\n`;
  }

  private jailByName(n: string | undefined): SimJail | undefined {
    return this.jails.find((j) => j.name === n || String(j.jid) === n);
  }

  /** `jail -c param=value ...` and `jail -R name`. */
  private jail(a: string[]): FakeReply | undefined {
    if (a[0] === '-R' && a.length === 2) {
      const j = this.jailByName(a[1]);
      if (!j) return fail(`jail: jail "${a[1]}" not found`);
      // jail_remove(2): every process in it is killed.
      for (const p of this.procs.filter((x) => x.jid === j.jid)) this.procs.splice(this.procs.indexOf(p), 1);
      this.jails.splice(this.jails.indexOf(j), 1);
      return ok();
    }
    if (a[0] !== '-c') return undefined;
    const params = a.slice(1);
    const get = (k: string) => params.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1);
    const name = get('name');
    const path = get('path');
    if (!name || !path) return undefined;
    if (this.jailByName(name)) return fail(`jail: ${name}: already exists`);
    const r = this.resolve(path);
    if (r?.node?.kind !== 'dir') return fail(`jail: ${name}: path ${path}: No such file or directory`);
    if (params.includes('mount.devfs')) {
      // jail(8) mounts devfs on path/dev with devfs_ruleset (default 4) before creating the jail.
      const dev = this.resolve(`${path}/dev`);
      if (dev?.node?.kind !== 'dir') return fail(`jail: ${name}: ${path}/dev: No such file or directory`);
      this.mountList.push({ source: 'devfs', target: dev.ns, fstype: 'devfs', options: ['rw'], ruleset: Number(get('devfs_ruleset') ?? 4) });
    }
    this.jails.push({ jid: this.nextJid++, name, path: r.ns, hostname: get('host.hostname') ?? '', params });
    return ok(`${name}: created\n`);
  }

  /** `jexec -l JAIL /usr/sbin/service SVC VERB` and `jexec -l JAIL /usr/bin/env ...`. */
  private jexec(a: string[], spec: CommandSpec): FakeReply | undefined {
    if (a[0] !== '-l' || !a[1]) return undefined;
    const j = this.jailByName(a[1]);
    if (!j) return fail(`jexec: jail "${a[1]}" not found`);
    const [cmd, service, verb] = a.slice(2);
    if (cmd !== '/usr/sbin/service' || !service || !verb || a.length !== 5) return undefined;
    const script = ['/etc/rc.d', '/usr/local/etc/rc.d'].some((d) => this.resolve(`${d}/${service}`, true, j.path)?.node?.kind === 'file');
    if (!script) return fail('', 1, `${service} does not exist in /etc/rc.d or the local startup\ndirectories (/usr/local/etc/rc.d), or is not executable\n`);
    return this.rc(j.path, j.jid, service, verb, spec);
  }

  private pgrep(a: string[], spec: CommandSpec): FakeReply | undefined {
    if (a[0] !== '-j' || !/^\d+$/.test(a[1] ?? '') || a.length !== 2) return a[0] === '-P' ? undefined : this.unknown(spec);
    const pids = this.procs.filter((p) => p.jid === Number(a[1])).map((p) => p.pid);
    return pids.length ? ok(pids.map((p) => `${p}\n`).join('')) : { exitCode: 1 };
  }

  private pkill(a: string[], spec: CommandSpec): FakeReply | undefined {
    if (a[0] !== '-TERM' || a[1] !== '-j' || !/^\d+$/.test(a[2] ?? '') || a.length !== 3) return this.unknown(spec);
    const hit = this.procs.filter((p) => p.jid === Number(a[2]));
    for (const p of hit) if (!p.ignoresTerm) this.procs.splice(this.procs.indexOf(p), 1);
    return hit.length ? ok() : { exitCode: 1 };
  }

  /** `rctl -a RULE`, `rctl -r FILTER`; messages from usr.bin/rctl/rctl.c (test/fixtures/freebsd/rctl-racct.txt). */
  private rctlCmd(a: string[]): FakeReply | undefined {
    const [flag, arg] = a;
    if (!arg || a.length !== 2) return undefined;
    if (this.racct !== 1) return fail('rctl: RACCT/RCTL present, but disabled; enable using kern.racct.enable=1 tunable');
    if (flag === '-a') {
      if (!/^jail:[^:]+:(memoryuse|pcpu|maxproc):deny=\d+$/.test(arg)) return fail(`rctl: failed to add rule '${arg}': Invalid argument`);
      this.rctl.push(arg);
      return ok();
    }
    if (flag === '-r') {
      const before = this.rctl.length;
      for (let i = this.rctl.length - 1; i >= 0; i--) if (this.rctl[i]!.startsWith(`${arg}:`)) this.rctl.splice(i, 1);
      return before === this.rctl.length ? fail(`rctl: failed to remove rule '${arg}': No such process`) : ok();
    }
    return undefined;
  }

  private kill(a: string[]): FakeReply {
    const [sig, ...pids] = a;
    if (!sig?.startsWith('-') || pids.length === 0) return fail('usage: kill [-s signal_name] pid ...');
    let err = '';
    for (const p of pids) {
      const i = this.procs.findIndex((x) => x.pid === Number(p));
      if (i < 0) err += `kill: ${p}: No such process\n`;
      else if (sig === '-KILL' || (sig === '-TERM' && !this.procs[i]!.ignoresTerm)) this.procs.splice(i, 1);
    }
    return err ? fail(err) : ok();
  }

  private chflags(a: string[]): FakeReply {
    const path = a[a.length - 1];
    if (a.slice(0, -1).join(' ') !== '-R -x 0' || !path) return fail('usage: chflags [-fhvx] [-R [-H | -L | -P]] flags file ...');
    const r = this.resolve(path, false);
    if (!r?.node) return fail(`chflags: ${path}: No such file or directory`);
    for (const k of this.keysUnder(r.store)) {
      const n = this.fs.get(k)!;
      if (n.kind === 'file' && n.schg) this.fs.set(k, { kind: 'file', data: n.data });
    }
    return ok();
  }

  private rm(a: string[]): FakeReply {
    const path = a[a.length - 1];
    if (a.slice(0, -1).join(' ') !== '-rf -x' || !path) return fail('usage: rm [-f | -i] [-dIPRrvWx] file ...');
    const r = this.resolve(path, false);
    if (!r?.node) return ok();
    const busy = this.mountList.filter((m) => under(m.target, r.ns) && m.target !== '/');
    if (busy.length > 0) return fail(busy.map((m) => `rm: ${m.target}: Device busy\n`).join(''));
    const keys = this.keysUnder(r.store);
    const locked = keys.filter((k) => { const n = this.fs.get(k)!; return n.kind === 'file' && n.schg; });
    if (locked.length > 0) {
      for (const k of keys) if (!locked.some((l) => under(l, k))) this.fs.delete(k);
      return fail(locked.map((l) => `rm: ${l}: Operation not permitted\n`).join('') + `rm: ${path}: Directory not empty\n`);
    }
    for (const k of keys) this.fs.delete(k);
    return ok();
  }

  /** `du -sxk [--] PATH...`: a line per tree it found (4 KiB a node), a complaint and exit 1 for each it did not, as du(1) goes on. */
  private du(a: string[]): FakeReply {
    if (a[0] !== '-sxk') return fail(`du: unexpected options: ${a.join(' ')}`);
    const paths = a[1] === '--' ? a.slice(2) : a.slice(1);
    let stdout = '';
    const complaints: string[] = [];
    for (const path of paths) {
      const r = this.resolve(path);
      if (r?.node) stdout += `${this.keysUnder(r.store).length * 4}\t${path}\n`;
      else complaints.push(`du: ${path}: No such file or directory\n`);
    }
    return complaints.length ? fail(complaints.join(''), 1, stdout) : ok(stdout);
  }
}
