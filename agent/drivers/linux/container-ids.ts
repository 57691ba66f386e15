import { FailedPreconditionError } from '../../errors.js';
import { readFileBeneathIfExists } from './host-paths.js';

/** Who services and exec sessions run as inside a container, as numbers (the kernel's and nsenter's terms). */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

const ROOT: RunAs = { uid: 0, gid: 0, home: '/root' };

/**
 * The config's user and group as ids, looked up in the container's own
 * /etc/passwd and /etc/group (read without following symlinks), never the
 * host's: a name means what it means inside. Numbers are taken as they are.
 * A group left empty is the user's primary group.
 */
export function resolveRunAs(root: string, container: string, user: string, group: string): RunAs {
  if (!user && !group) return ROOT;
  let uid = 0;
  let gid = 0;
  let home = '/root';
  if (user) {
    const entry = lookup(root, 'etc/passwd', user);
    if (entry) {
      uid = Number(entry[2]);
      gid = Number(entry[3]);
      home = entry[5] || '/';
    } else if (/^\d+$/.test(user)) {
      uid = Number(user);
      gid = uid;
      home = '/';
    } else {
      throw new FailedPreconditionError(`container ${container} has no user ${user} in its /etc/passwd; add it there or give a number`, { fields: { container, user } });
    }
  }
  if (group) {
    const entry = lookup(root, 'etc/group', group);
    if (entry) gid = Number(entry[2]);
    else if (/^\d+$/.test(group)) gid = Number(group);
    else throw new FailedPreconditionError(`container ${container} has no group ${group} in its /etc/group; add it there or give a number`, { fields: { container, group } });
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new FailedPreconditionError(`container ${container}'s /etc/passwd or /etc/group has a malformed line for ${user || group}`, { fields: { container } });
  }
  return { uid, gid, home };
}

/** The fields of the line naming `name` in a passwd-style file, if any. */
function lookup(root: string, rel: string, name: string): string[] | undefined {
  const text = readFileBeneathIfExists(root, rel) ?? '';
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3) return f;
  }
  return undefined;
}
