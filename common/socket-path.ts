import { posix } from 'node:path';

/**
 * The longest unix socket path, in bytes without the terminating NUL
 * (sockaddr_un.sun_path: 108 bytes on Linux, 104 on FreeBSD and macOS). A
 * longer path is not refused by bind(2) or connect(2) through Node: it is
 * silently cut short, and the socket is made, or sought, at the truncated path.
 */
export const UNIX_SOCKET_PATH_MAX: Readonly<Record<'linux' | 'freebsd' | 'darwin', number>> = { linux: 107, freebsd: 103, darwin: 103 };

/**
 * What the agent binds first, beside its socket, before renaming it into place
 * (agent/server/server.ts's listenOnUnixSocket): DIR/.qfleetd-bind-XXXXXX/sock.
 * That path must fit as well, so the socket's directory is shorter still.
 */
export const PRIVATE_BIND_SUFFIX = '/.qfleetd-bind-XXXXXX/sock';

export interface UnixSocketLimits {
  /** The system's name, for messages (Linux, FreeBSD, macOS). */
  readonly system: string;
  /** Bytes the socket path may have. */
  readonly path: number;
  /** Bytes the socket's directory may have when the agent binds there (PRIVATE_BIND_SUFFIX). */
  readonly directory: number;
}

const SYSTEM: Readonly<Record<string, string>> = { linux: 'Linux', freebsd: 'FreeBSD', darwin: 'macOS' };

export function unixSocketLimits(platform: string): UnixSocketLimits {
  // Elsewhere, the smaller of the two: the BSDs' 104.
  const path = UNIX_SOCKET_PATH_MAX[platform as keyof typeof UNIX_SOCKET_PATH_MAX] ?? 103;
  return { system: SYSTEM[platform] ?? platform, path, directory: path - PRIVATE_BIND_SUFFIX.length };
}

/**
 * What is too long for a unix socket at `path` on `platform`: the path
 * itself, or (when the agent is to bind it, `binding`) its directory; with the
 * byte count. Undefined when it fits. Callers word the refusal for their reader.
 */
export function unixSocketExcess(path: string, platform: string, binding: boolean): { readonly what: 'path' | 'directory'; readonly bytes: number } | undefined {
  const limits = unixSocketLimits(platform);
  const bytes = Buffer.byteLength(path);
  if (bytes > limits.path) return { what: 'path', bytes };
  if (binding) {
    // posix: the path is the agent host's, whatever the controller runs on.
    const dirBytes = Buffer.byteLength(posix.dirname(path));
    if (dirBytes > limits.directory) return { what: 'directory', bytes: dirBytes };
  }
  return undefined;
}

