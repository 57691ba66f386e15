import { unixSocketExcess, unixSocketLimits } from '../common/socket-path.js';
import { UsageError } from './context.js';

/**
 * The local agent's socket as given (--socket or $QFLEET_SOCKET), refused with
 * a usage error if no socket can have it. Only the path counts here, not the
 * agent's bind directory beside it: the CLI connects, it never binds.
 */
export function checkSocketPath(path: string, given: string, platform: NodeJS.Platform = process.platform): string {
  if (path === '') throw new UsageError(`${given} is empty: give the agent's socket path (default /run/qfleetd.sock; /var/run/qfleetd.sock on FreeBSD).`);
  if (/\s/.test(path)) {
    throw new UsageError(`${given} ${JSON.stringify(path)} has whitespace in it; qfleetd never listens on such a path (its paths have no spaces): check the value.`);
  }
  const excess = unixSocketExcess(path, platform, false);
  if (excess) {
    const { path: max, system } = unixSocketLimits(platform);
    throw new UsageError(`${given} ${JSON.stringify(path)} is ${excess.bytes} bytes long; a unix socket path can have at most ${max} on ${system}: use a shorter path (or a symlink to the directory).`);
  }
  return path;
}
