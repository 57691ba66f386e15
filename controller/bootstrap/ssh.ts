import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Client, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import {
  appendKnownHost, blobKeyType, hostFieldMatches, hostLookupName, knownHostsLine, knownKeyTypes, readKnownHostsFiles, removalHints, verifyHostKey,
  type HostKeyVerdict, type KnownHostEntry,
} from './known-hosts.js';

/** What one remote command did. */
export interface ExecResult {
  readonly code: number | null;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** The bootstrap's view of one SSH connection: run a command line, upload a file. */
export interface RemoteSession {
  /** Runs one command line in the login user's shell; stdin is written then closed. */
  exec(commandLine: string, opts?: { stdin?: string | Buffer; timeoutMs?: number }): Promise<ExecResult>;
  /** SFTP upload of `data` to `remotePath` (as the login user), with `mode`. */
  upload(remotePath: string, data: Buffer | string, mode: number): Promise<void>;
  close(): void;
}

export interface SshAuth {
  /** A private key file (--identity); else the ssh-agent at SSH_AUTH_SOCK. */
  readonly identityFile?: string;
  readonly agentSocket?: string;
}

export interface HostKeyPolicy {
  /** Files to read; the first is the one --accept-new appends to. */
  readonly knownHostsFiles: readonly string[];
  readonly acceptNew: boolean;
}

export function defaultKnownHostsFiles(): string[] {
  return [join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
}

/**
 * Why a host key was refused: a verdict of verifyHostKey, or `type-mismatch`
 * when the server offers no key of any type known_hosts has for it.
 */
export type HostKeyRefusal = Exclude<HostKeyVerdict['status'], 'known'> | 'type-mismatch';

/** Raised when the host key check fails: never retried, never accepted. */
export class HostKeyError extends Error {
  constructor(message: string, readonly verdict: HostKeyRefusal) {
    super(message);
    this.name = 'HostKeyError';
  }
}

/** A remote command ran past its time limit (and was killed). */
export class RemoteTimeoutError extends Error {}

export interface SshTarget {
  /** Inventory name; looked up in known_hosts as well as the address. */
  readonly name: string;
  /** Looked up in known_hosts (and recorded there by --accept-new); dialled unless `dial` is given. */
  readonly address: string;
  /** The IP the address resolved to, when the caller resolved it (the fan-out does, in a killable child): dialled instead. */
  readonly dial?: string;
  readonly port: number;
  readonly user: string;
}

const SUPPORTED_HOST_KEY_TYPES: readonly ServerHostKeyAlgorithm[] = [
  'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa',
];

/**
 * Connects and authenticates, checking the host key against known_hosts first.
 * Unknown key: refused unless policy.acceptNew (then appended). Changed or
 * revoked key: always refused.
 */
export async function connectSsh(target: SshTarget, auth: SshAuth, policy: HostKeyPolicy, readyTimeoutMs = 20_000, signal?: AbortSignal): Promise<RemoteSession> {
  const names = [...new Set([hostLookupName(target.address, target.port), hostLookupName(target.name, target.port)])];
  const entries = readKnownHostsFiles(policy.knownHostsFiles);
  const known = knownKeyTypes(entries, names);
  // An honest server of a known host offers the key type we know it by; RSA entries cover the rsa-sha2 signatures.
  const prefer = known.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]))
    .filter((t): t is ServerHostKeyAlgorithm => (SUPPORTED_HOST_KEY_TYPES as readonly string[]).includes(t));
  let hostKeyFailure: HostKeyError | undefined;

  const config: ConnectConfig = {
    host: target.dial ?? target.address,
    port: target.port,
    username: target.user,
    readyTimeout: readyTimeoutMs,
    algorithms: { serverHostKey: prefer.length ? prefer : [...SUPPORTED_HOST_KEY_TYPES] },
    hostVerifier: (key: Buffer): boolean => {
      const v = verifyHostKey(entries, names, key);
      const where = `${names[0]}`;
      if (v.status === 'known') return true;
      if (v.status === 'unknown' && policy.acceptNew) {
        const file = policy.knownHostsFiles[0];
        if (!file) {
          hostKeyFailure = new HostKeyError(`no known_hosts file to record ${where}'s key in`, 'unknown');
          return false;
        }
        appendKnownHost(file, knownHostsLine(hostLookupName(target.address, target.port), key));
        return true;
      }
      hostKeyFailure = hostKeyRefusal(v, names, key);
      return false;
    },
  };
  // The host-key algorithms the server offers, from ssh2's handshake trace: named when none of them is one known_hosts has.
  let offered: string[] | undefined;
  config.debug = (line: string) => {
    const m = offered ? null : /^Handshake: \(remote\) Host key format: (.*)$/.exec(line);
    if (m) offered = m[1]!.split(',').filter(Boolean);
  };
  if (auth.identityFile) {
    config.privateKey = readFileSync(auth.identityFile);
  } else if (auth.agentSocket) {
    config.agent = auth.agentSocket;
  } else {
    throw new Error('no SSH credentials: give --identity FILE or run an ssh-agent (SSH_AUTH_SOCK)');
  }

  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const done = (e?: Error) => {
      if (settled) return;
      settled = true;
      if (e) {
        client.end();
        if (!hostKeyFailure && known.length && /no matching host key format/i.test(e.message)) {
          hostKeyFailure = typeMismatch(names, entries.filter((x) => x.marker === undefined && names.some((n) => hostFieldMatches(x.hosts, n))), offered);
        }
        reject(hostKeyFailure ?? e);
      } else {
        resolve();
      }
    };
    client.once('ready', () => done());
    // on, not once: after a failed handshake the socket can still report a reset, which must not go uncaught.
    client.on('error', (e) => done(e));
    client.once('close', () => done(new Error('connection closed during the handshake')));
    // The host's deadline fell while connecting: stop now rather than at readyTimeout.
    signal?.addEventListener('abort', () => done(new Error('connection abandoned: the deadline fell')), { once: true });
    if (signal?.aborted) return done(new Error('connection abandoned: the deadline fell'));
    try {
      client.connect(config);
    } catch (e) {
      done(e as Error);
    }
  });
  return new Ssh2Session(client);
}

/** The command(s) that remove the old entries, each in backquotes. */
function fixHint(entries: readonly KnownHostEntry[], names: readonly string[]): string {
  return removalHints(entries, names).map((h) => `\`${h}\``).join(' and ');
}

/** The message for a refused host key: what was found, where, and the exact command that fixes it when the change is expected. */
export function hostKeyRefusal(v: Exclude<HostKeyVerdict, { status: 'known' }>, names: readonly string[], key: Buffer): HostKeyError {
  const where = names[0]!;
  const fp = `${blobKeyType(key)} SHA256:${sha256(key)}`;
  const at = (es: readonly KnownHostEntry[]) => es.map((e) => `${e.file}:${e.line}`).join(', ');
  switch (v.status) {
    case 'unknown':
      return new HostKeyError(`host key of ${where} is not known (${fp}); check it and add it to known_hosts, or rerun with --accept-new`, 'unknown');
    case 'revoked':
      return new HostKeyError(`host key of ${where} is revoked (${v.entry.file}:${v.entry.line})`, 'revoked');
    case 'cert-authority':
      return new HostKeyError(
        `${where} is known only through a @cert-authority line (${at(v.entries)}), and qfleet cannot check host certificates; add the host's own key (${fp}) to known_hosts`,
        'cert-authority',
      );
    case 'changed':
      return new HostKeyError(
        `HOST KEY OF ${where} HAS CHANGED: it now offers ${fp}, not the key in ${at(v.entries)}; someone may be intercepting the connection, so qfleet refuses it. ` +
          `If the host's key was replaced on purpose, remove the old entry with ${fixHint(v.entries, names)} and rerun with --accept-new`,
        'changed',
      );
  }
}

/** The server offers no host key of a type known_hosts has for it (say only ssh-rsa, where known_hosts has only ssh-ed25519). */
function typeMismatch(names: readonly string[], entries: readonly KnownHostEntry[], offered: readonly string[] | undefined): HostKeyError {
  const known = [...new Set(entries.map((e) => e.keyType))];
  return new HostKeyError(
    `host key type mismatch for ${names[0]}: known_hosts has only ${known.join(' and ')} ${entries.length === 1 ? 'key' : 'keys'} for it (${entries.map((e) => `${e.file}:${e.line}`).join(', ')}), ` +
      `and the server offers ${offered?.length ? `only ${offered.join(', ')}` : 'none of that type'}; qfleet does not trust a key of another type. ` +
      `If the host's keys were replaced on purpose, remove the old entry with ${fixHint(entries, names)} and rerun with --accept-new`,
    'type-mismatch',
  );
}

// A host key's fingerprint as OpenSSH prints it (SHA256:base64, no padding), unlike bootstrap.ts's hex file digests.
function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('base64').replace(/=+$/, '');
}

class Ssh2Session implements RemoteSession {
  constructor(private readonly client: Client) {}

  exec(commandLine: string, opts: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    return new Promise((resolve, reject) => {
      this.client.exec(commandLine, (err, stream) => {
        if (err) return reject(err);
        const out: Buffer[] = [];
        const errb: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        const timer = setTimeout(() => {
          // Ask sshd to kill the command (sudo relays it) before closing, so a timed-out step does not
          // keep running as root after the host is reported failed. Servers without signal support ignore it.
          try { stream.signal('KILL'); } catch { /* the channel may already be gone */ }
          stream.close();
          reject(new RemoteTimeoutError(`remote command timed out after ${Math.round(timeoutMs / 1000)} s: ${commandLine}`));
        }, timeoutMs);
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errb.push(d));
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errb).toString('utf8') });
        });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  upload(remotePath: string, data: Buffer | string, mode: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) return reject(err);
        sftp.writeFile(remotePath, data, { mode }, (e) => {
          if (e) {
            sftp.end();
            return reject(new Error(`SFTP upload to ${remotePath} failed: ${e.message}`));
          }
          // writeFile's mode applies only at creation; make it exact for a re-upload too.
          sftp.chmod(remotePath, mode, (e2) => {
            sftp.end();
            if (e2) reject(new Error(`SFTP chmod of ${remotePath} failed: ${e2.message}`));
            else resolve();
          });
        });
      });
    });
  }

  close(): void {
    this.client.end();
  }
}
