import { isAbsolute } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { DriverCapabilities, HostPathKind, InstallMethodName, InstallSpec } from '../drivers/host-driver.js';

/**
 * Turns what the caller asked for into a definite install spec: an explicit
 * method, or one inferred from the source (a directory, a file, nothing).
 * `statKind` says what a source path is on the host (the driver's hostPathKind).
 */
export function resolveInstallSpec(
  req: { method: InstallMethodName | undefined; source: string; mirror: string },
  caps: DriverCapabilities,
  statKind: (path: string) => HostPathKind,
): InstallSpec {
  const source = req.source.trim();
  if (/[\0\n\r\t]/.test(source) || /[\0\s]/.test(req.mirror)) throw new InvalidArgumentError('Error; install source and mirror may not contain control characters or spaces.');
  let method = req.method;
  if (!method) {
    if (source === '') {
      method = caps.installMethods.includes('download') ? 'download' : undefined;
      if (!method) {
        throw new InvalidArgumentError(
          'Error; this host has no default base to download: give a root-filesystem directory or tarball, or a debootstrap suite.',
        );
      }
    } else {
      method = statKind(source) === 'directory' ? 'directory' : 'tarball';
    }
  }
  if (!caps.installMethods.includes(method)) {
    throw new InvalidArgumentError(`Error; install method ${method} is not supported on this host (supported: ${caps.installMethods.join(', ')}).`);
  }
  if (method === 'directory' || method === 'tarball') {
    if (!isAbsolute(source)) throw new InvalidArgumentError(`Error; install source ${JSON.stringify(source)} must be an absolute path on the agent's host.`);
    const kind = statKind(source);
    if (kind === 'missing') throw new InvalidArgumentError(`Error; install source ${source} does not exist on the agent's host.`);
    if (method === 'directory' && kind !== 'directory') throw new InvalidArgumentError(`Error; install source ${source} is not a directory.`);
    if (method === 'tarball' && kind !== 'file') throw new InvalidArgumentError(`Error; install source ${source} is not a regular file.`);
  }
  if (method === 'debootstrap' && !/^[a-z][a-z0-9.-]*$/.test(source)) {
    throw new InvalidArgumentError(`Error; debootstrap needs a suite name such as bookworm, not ${JSON.stringify(source)}.`);
  }
  if (req.mirror && !/^(https?|file):\/\/\S+$/.test(req.mirror)) {
    throw new InvalidArgumentError(`Error; mirror ${JSON.stringify(req.mirror)} must be an http(s):// or file:// URL.`);
  }
  return { method, source, mirror: req.mirror };
}
