import { spawn, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import { createInterface } from 'node:readline';

/**
 * Host names resolved in a child process, so that a DNS server that never
 * answers cannot hold qfleet past its deadline.
 *
 * Why a child: Node resolves names with getaddrinfo(3) on libuv's thread pool,
 * which cannot be cancelled, and a process does not exit (not even through
 * process.exit) until every pool thread has returned: with a DNS server that
 * drops packets, that is resolv.conf's timeout × attempts (10 s by default)
 * per name after the deadline. A child doing the same getaddrinfo (so
 * /etc/hosts, nsswitch and resolv.conf still apply as they do for ssh or
 * ping) is simply killed. IP addresses never get here; the child starts only
 * when a targeted host has a name, once per command.
 */
export interface NameResolver {
  /** The addresses of `name`, in the resolver's order; rejects with a NameError, or when `signal` aborts. */
  lookup(name: string, signal?: AbortSignal): Promise<string[]>;
  /** Kills the child (any lookup still pending is abandoned). */
  close(): void;
}

export class NameError extends Error {}

/**
 * The one address dialled: the first IPv4 one if there is any, else the first.
 * One address, not each in turn as Node's own connect does (happy eyeballs):
 * IPv4 first keeps a dual-stack host whose IPv6 route is broken reachable,
 * which is the common failure.
 */
export function preferredAddress(addresses: readonly string[]): string {
  return addresses.find((a) => isIP(a) === 4) ?? addresses[0]!;
}

/** Hands every name back as it is (for a factory that fakes connections). */
export const passThroughResolver: NameResolver = { lookup: (name) => Promise.resolve([name]), close: () => undefined };

/** The child's program: one name per input line, one JSON answer per output line, every lookup in parallel. */
const CHILD = `
const dns = require('node:dns');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const tab = l.indexOf('\\t');
  const id = l.slice(0, tab), name = l.slice(tab + 1);
  dns.lookup(name, { all: true, verbatim: true }, (e, a) => out(e ? { id, error: e.code || e.message } : { id, addresses: a.map((x) => x.address) }));
}).on('close', () => process.exit(0));
`;

export function childNameResolver(opts: { parallel?: number } = {}): NameResolver {
  let child: ChildProcess | undefined;
  let seq = 0;
  const waiting = new Map<string, { resolve: (a: string[]) => void; reject: (e: Error) => void }>();
  const failAll = (why: string) => {
    for (const w of waiting.values()) w.reject(new NameError(why));
    waiting.clear();
  };
  const start = (): ChildProcess => {
    if (child) return child;
    // Each pending getaddrinfo holds a pool thread: enough threads that one dead name never queues the others.
    const threads = Math.min(128, Math.max(4, opts.parallel ?? 50));
    const c = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, UV_THREADPOOL_SIZE: String(threads), NODE_OPTIONS: '' } });
    c.on('error', (e) => failAll(`cannot start the name resolver: ${e.message}`));
    c.on('exit', () => failAll('the name resolver ended'));
    c.stdin!.on('error', () => undefined);
    createInterface({ input: c.stdout! }).on('line', (l) => {
      let m: { id?: string; error?: string; addresses?: string[] };
      try {
        m = JSON.parse(l) as typeof m;
      } catch {
        return;
      }
      const w = m.id !== undefined ? waiting.get(m.id) : undefined;
      if (!w) return;
      waiting.delete(m.id!);
      if (m.addresses?.length) w.resolve(m.addresses);
      else w.reject(new NameError(m.error ?? 'no address'));
    });
    // Never what keeps qfleet running: the lookups that matter are awaited with their own deadlines.
    c.unref();
    for (const s of [c.stdin, c.stdout] as const) (s as unknown as { unref?: () => void }).unref?.();
    return (child = c);
  };
  return {
    lookup(name, signal) {
      if (isIP(name)) return Promise.resolve([name]);
      if (/[\s\t\n]/.test(name) || !name) return Promise.reject(new NameError(`not a host name: ${JSON.stringify(name)}`));
      return new Promise((resolve, reject) => {
        if (signal?.aborted) return reject(new NameError('abandoned at the deadline'));
        const id = String(++seq);
        waiting.set(id, { resolve, reject });
        signal?.addEventListener('abort', () => {
          if (waiting.delete(id)) reject(new NameError('abandoned at the deadline'));
        }, { once: true });
        start().stdin!.write(`${id}\t${name}\n`);
      });
    },
    close() {
      failAll('the name resolver was closed');
      child?.kill('SIGKILL');
    },
  };
}
