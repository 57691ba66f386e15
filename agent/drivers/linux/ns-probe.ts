import { closeSync, existsSync, openSync, readSync } from 'node:fs';

/** The host programs a namespaces container needs, found by probeNamespaces. */
export interface NsTools {
  readonly unshare: string;
  readonly nsenter: string;
  readonly setpriv: string;
  /** Statically linked: copied into the container, where it runs after the host tree is gone. */
  readonly tini: string;
  readonly busybox: string;
}

export interface NsProbe {
  /** Undefined when the host cannot run namespaces containers; `missing` says why. */
  readonly tools?: NsTools;
  /** "namespaces: tini-static not found (apt-get install tini)", … */
  readonly missing: readonly string[];
}

/** What the probe reads of the host, injected so tests can describe any host. */
export interface ProbeHost {
  exists(path: string): boolean;
  readFile(path: string): Buffer | undefined;
  uid(): number;
}

export const REAL_HOST: ProbeHost = {
  exists: existsSync,
  readFile: (p) => {
    try {
      // The ELF header and program headers are in the first few kilobytes.
      const fd = openSync(p, 'r');
      try {
        const buf = Buffer.alloc(p.startsWith('/proc/') ? 64 : 8192);
        const n = readSync(fd, buf, 0, buf.length, 0);
        return buf.subarray(0, n);
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
  },
  uid: () => process.getuid?.() ?? -1,
};

const BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/**
 * Whether this host can run namespaces containers, from files only (no
 * process is started, so capabilities() stays cheap and synchronous): root,
 * user namespaces enabled, util-linux's unshare/nsenter/setpriv, and static
 * tini and busybox (they run inside after pivot_root, where no host library is).
 */
export function probeNamespaces(host: ProbeHost = REAL_HOST): NsProbe {
  const missing: string[] = [];
  const find = (name: string) => BIN_DIRS.map((d) => `${d}/${name}`).find((p) => host.exists(p));
  if (host.uid() !== 0) missing.push('namespaces: the agent does not run as root');
  if (!host.exists('/proc/self/ns/user')) missing.push('namespaces: this kernel has no user namespaces (CONFIG_USER_NS)');
  const max = host.readFile('/proc/sys/user/max_user_namespaces')?.toString('utf8').trim();
  if (max === '0') missing.push('namespaces: user namespaces are disabled (sysctl user.max_user_namespaces is 0)');
  const [unshare, nsenter, setpriv] = ['unshare', 'nsenter', 'setpriv'].map(find);
  const lacking = Object.entries({ unshare, nsenter, setpriv }).filter(([, p]) => !p).map(([n]) => n);
  if (lacking.length) missing.push(`namespaces: ${lacking.join(', ')} not found (apt-get install util-linux)`);
  const tini = find('tini-static');
  if (!tini) missing.push('namespaces: tini-static not found (apt-get install tini)');
  else if (!isStatic(host.readFile(tini))) missing.push(`namespaces: ${tini} is not statically linked (apt-get install tini)`);
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => host.exists(p) && isStatic(host.readFile(p)));
  if (!busybox) missing.push('namespaces: a statically linked busybox not found (apt-get install busybox-static)');
  if (missing.length || !unshare || !nsenter || !setpriv || !tini || !busybox) return { missing };
  return { tools: { unshare, nsenter, setpriv, tini, busybox }, missing };
}

/** An ELF executable without a PT_INTERP program header needs no dynamic loader. */
export function isStatic(head: Buffer | undefined): boolean {
  if (!head || head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = head[4] === 2;
  const le = head[5] === 1;
  const u16 = (o: number) => (le ? head.readUInt16LE(o) : head.readUInt16BE(o));
  const u32 = (o: number) => (le ? head.readUInt32LE(o) : head.readUInt32BE(o));
  const phoff = is64 ? Number(le ? head.readBigUInt64LE(0x20) : head.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  if (phnum === 0 || phoff + phentsize * phnum > head.length) return false;
  for (let i = 0; i < phnum; i++) if (u32(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  return true;
}
