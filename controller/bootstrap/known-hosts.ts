import { createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { shQuote } from '../../common/shell-quote.js';

/**
 * OpenSSH known_hosts (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 *   [@marker] hostpatterns keytype base64-key [comment]
 * hostpatterns: comma-separated names, `[host]:port` for a port other than 22,
 * `*`/`?` wildcards, `!` negation, or one hashed entry `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 */
export interface KnownHostEntry {
  readonly marker: 'cert-authority' | 'revoked' | undefined;
  /** The host field as written (patterns, or the hashed form). */
  readonly hosts: string;
  readonly keyType: string;
  /** The key blob (SSH wire format), decoded from base64. */
  readonly key: Buffer;
  readonly file: string;
  readonly line: number;
}

export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/[ \t]+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()!.slice(1);
      if (m !== 'cert-authority' && m !== 'revoked') return; // unknown marker: OpenSSH skips the line
      marker = m;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return; // malformed: skipped, as ssh does
    const key = Buffer.from(b64, 'base64');
    // The blob starts with its own key type; a line whose two disagree is corrupt.
    if (blobKeyType(key) !== keyType) return;
    out.push({ marker, hosts, keyType, key, file, line: i + 1 });
  });
  return out;
}

/** The key type named inside an SSH public-key blob (its first string). */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > blob.length) return undefined;
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** The name OpenSSH looks up: `host` for port 22, else `[host]:port`. */
export function hostLookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** A hashed host field for `name` (`|1|salt|hash`), as `ssh-keygen -H` writes it. */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(text);
}

/** Does the host field of an entry match the lookup name? */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    const want = Buffer.from(hash, 'base64');
    return got.length === want.length && got.equals(want);
  }
  let matched = false;
  for (const p of field.split(',')) {
    if (!p) continue;
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false; // a negated match wins over everything
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

export type HostKeyVerdict =
  | { readonly status: 'known'; readonly entry: KnownHostEntry }
  /** No entry for this host at all: trust on first use only with --accept-new. */
  | { readonly status: 'unknown' }
  /** Entries for this host exist but none has this key: never accepted. */
  | { readonly status: 'changed'; readonly entries: readonly KnownHostEntry[] }
  | { readonly status: 'revoked'; readonly entry: KnownHostEntry }
  /**
   * Known only through a @cert-authority line: its host certificate cannot be
   * checked here (ssh2 has no host-certificate support), so it is refused, and
   * never trusted on first use either.
   */
  | { readonly status: 'cert-authority'; readonly entries: readonly KnownHostEntry[] };

/**
 * Checks a presented host key against the entries for any of `names` (lookup
 * names from hostLookupName). Fails closed: a host known under any key that is
 * not this one is `changed`, even if the other key is of another type (ssh2 is
 * told to prefer the known types, see knownKeyTypes, so an honest server
 * offers one of them).
 */
export function verifyHostKey(entries: readonly KnownHostEntry[], names: readonly string[], key: Buffer): HostKeyVerdict {
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && names.some((n) => hostFieldMatches(e.hosts, n)));
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === undefined);
  const hit = plain.find((e) => e.key.equals(key));
  if (hit) return { status: 'known', entry: hit };
  if (plain.length) return { status: 'changed', entries: plain };
  const cas = entries.filter((e) => e.marker === 'cert-authority' && names.some((n) => hostFieldMatches(e.hosts, n)));
  return cas.length ? { status: 'cert-authority', entries: cas } : { status: 'unknown' };
}

/** Key types the host is known with, in file order (to steer ssh2's host-key algorithm choice). */
export function knownKeyTypes(entries: readonly KnownHostEntry[], names: readonly string[]): string[] {
  const types = entries.filter((e) => e.marker === undefined && names.some((n) => hostFieldMatches(e.hosts, n))).map((e) => e.keyType);
  return [...new Set(types)];
}

export function knownHostsLine(name: string, key: Buffer, opts: { hashed?: boolean; comment?: string } = {}): string {
  const type = blobKeyType(key);
  if (!type) throw new Error('not an SSH public-key blob');
  const host = opts.hashed ? hashHostName(name) : name;
  return `${host} ${type} ${key.toString('base64')}${opts.comment ? ` ${opts.comment}` : ''}`;
}

/** Reads every file that exists (missing files are empty, as for ssh); entries name their file by its full path. */
export function readKnownHostsFiles(files: readonly string[]): KnownHostEntry[] {
  return files.flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, 'utf8'), resolve(f)) : []));
}

/**
 * Appends one line (accept-new). Creates the file 0600 (and its directory
 * 0700) if missing, and starts on a new line if the file does not end with one.
 */
export function appendKnownHost(file: string, line: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  if (existsSync(file) && statSync(file).size > 0) {
    const fd = openSync(file, 'r');
    try {
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, statSync(file).size - 1);
      if (b[0] !== 0x0a) prefix = '\n';
    } finally {
      closeSync(fd);
    }
  }
  appendFileSync(file, `${prefix}${line}\n`, { mode: 0o600 });
}

/**
 * How to remove the entries that stand in the way of a host's new key: one
 * `ssh-keygen -f FILE -R NAME` line per file and name (the name each entry
 * matched, `[host]:port` for a port other than 22), or, for an entry that
 * matched only through a wildcard (which ssh-keygen -R does not remove), the
 * FILE:LINE to edit by hand.
 */
export function removalHints(entries: readonly KnownHostEntry[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const name = names.find((n) => hostFieldMatches(e.hosts, n));
    if (name === undefined) continue;
    const literal = e.hosts.startsWith('|1|') || e.hosts.split(',').some((p) => p.toLowerCase() === name.toLowerCase());
    const hint = literal ? `ssh-keygen -f ${shQuote(e.file)} -R ${shQuote(name)}` : `edit ${e.file}:${e.line} by hand (its pattern ${e.hosts} matches ${name})`;
    if (!out.includes(hint)) out.push(hint);
  }
  return out;
}
