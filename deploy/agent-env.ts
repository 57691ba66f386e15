/**
 * The environment every way of running qfleetd gives it (deploy/linux/qfleetd.service,
 * deploy/linux/qfleetd-supervise, deploy/freebsd/rc.d/qfleetd; a test keeps them in step),
 * and bench/host-scale.ts runs the agent with, so its memory figure is the hosts' one.
 *
 * Why: at 1,000 containers a List makes a few MB of short-lived objects. With
 * V8's default 16 MB semi-spaces the young generation grows to 32 MB resident
 * and stays there; 2 MB ones keep it at 4 MB, for a scavenge or two more per
 * List. glibc (Linux) gives each thread that mallocs its own arena and keeps
 * freed large blocks (the parser's, compiling the 2 MB bundle) in the heap
 * rather than returning them: two arenas and a fixed mmap threshold give those
 * pages back. FreeBSD's jemalloc reads neither MALLOC_ setting.
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=2';
export const AGENT_GLIBC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

/** What a Linux host's agent runs with. */
export const AGENT_ENV: Readonly<Record<string, string>> = { NODE_OPTIONS: AGENT_NODE_OPTIONS, ...AGENT_GLIBC_ENV };
