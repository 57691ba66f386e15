/**
 * qjail's split of a base: these go to the read-only sharedfs (nullfs-mounted
 * into every container at /sharedfs); everything else (etc, root, var, tmp,
 * usr/local, …) is the per-container template. Order is the order commands run.
 * boot and rescue are binaries too: /rescue alone is one static binary under
 * ~150 hard-linked names, which a per-container copy would multiply.
 */
export const SHARED_DIRS = [
  'bin', 'boot', 'lib', 'libexec', 'rescue', 'sbin',
  'usr/bin', 'usr/include', 'usr/lib', 'usr/lib32', 'usr/libdata', 'usr/libexec', 'usr/sbin', 'usr/share',
] as const;

/** Present in sharedfs but never populated (qchroot: usr/src and usr/ports "included, but not populated"). */
export const EMPTY_SHARED_DIRS = ['usr/src', 'usr/ports'] as const;

/** Every path in a container that is a symlink to /sharedfs/<same path>. */
export const SHARED_LINKS = [...SHARED_DIRS, ...EMPTY_SHARED_DIRS] as const;

export const DEFAULT_FETCH_BASE_URL = 'https://download.freebsd.org/releases';

/** The template as an archive made at install: `tar -xpf` keeps hard links and file flags (cp -R keeps no links). */
export const TEMPLATE_ARCHIVE = 'template.tar';
