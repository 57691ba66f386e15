import { UsageError } from './context.js';

/**
 * The longest unix socket path, in bytes without the terminating NUL
 * (sockaddr_un.sun_path: 108 bytes on Linux, 104 on FreeBSD and macOS). A
 * longer path is not refused by connect(2) through Node: it is cut short, and
 * the call goes to whatever socket sits at the truncated path.
 */
export const UNIX_SOCKET_PATH_MAX: Readonly<Record<string, number>> = { linux: 107, freebsd: 103, darwin: 103 };

const SYSTEM: Readonly<Record<string, string>> = { linux: 'Linux', freebsd: 'FreeBSD', darwin: 'macOS' };

/** The local agent's socket as given (--socket or $QFLEET_SOCKET), refused with a usage error if no socket can have it. */
export function checkSocketPath(path: string, given: string, platform: NodeJS.Platform = process.platform): string {
  if (path === '') throw new UsageError(`${given} is empty: give the agent's socket path (default /run/qfleetd.sock; /var/run/qfleetd.sock on FreeBSD).`);
  if (/\s/.test(path)) {
    throw new UsageError(`${given} ${JSON.stringify(path)} has whitespace in it; qfleetd never listens on such a path (its paths have no spaces): check the value.`);
  }
  const max = UNIX_SOCKET_PATH_MAX[platform] ?? 103;
  const bytes = Buffer.byteLength(path);
  if (bytes > max) {
    throw new UsageError(`${given} ${JSON.stringify(path)} is ${bytes} bytes long; a unix socket path can have at most ${max} on ${SYSTEM[platform] ?? platform}: use a shorter path (or a symlink to the directory).`);
  }
  return path;
}
