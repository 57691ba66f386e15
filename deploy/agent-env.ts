/**
 * The environment every way of running qfleetd gives it (deploy/linux/qfleetd.service,
 * deploy/linux/qfleetd-supervise, deploy/freebsd/rc.d/qfleetd; a test keeps them in step),
 * and bench/host-scale.ts runs the agent with, so its memory figure is the hosts' one.
 *
 * Why: at 1,000 containers a List made about 11 MB of short-lived objects,
 * alive until its answer is sent (7 MB once answers went out wire-ready, less
 * again now that List reuses the views and encodings of quiet containers; the
 * figures below are from the 11 MB days). V8's default 16 MB semi-spaces keep the
 * young generation at 32 MB resident; 2 MB ones made it scavenge a List's
 * objects six times over and promote them. 4 MB ones are the middle: about
 * three scavenges a List for 8 MB resident (8 MB ones cost some 9 MB more
 * resident for a few ms less a List). A heap limit under 2 GB (V8 sizes its
 * heap growth by it) lets the old generation grow by at most 1.6x its live
 * size between full collections instead of 4x: the live heap is about 15 MB,
 * and was left to grow to 57 MB of garbage. 1 GB is still some 60 times that
 * live heap. glibc (Linux) gives each thread that mallocs its own arena and
 * keeps freed large blocks (the parser's, compiling the 2 MB bundle) in the
 * heap rather than returning them: two arenas and a fixed mmap threshold give
 * those pages back. FreeBSD's jemalloc reads neither MALLOC_ setting.
 *
 * Measured (1,000 containers, 50 running, 100 Lists; agent CPU a List, RSS after; a shared 2-core host):
 * semi-spaces 2 MB, no heap limit: 47 ms, 109 MB; 2 MB + 1 GB: 47 ms, 79 MB; 4 MB + 1 GB: 41 ms, 82 MB;
 * 8 MB + 1 GB: 35 ms, 91 MB; 16 MB + 1 GB: 29 ms, 108 MB.
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=1024';
export const AGENT_GLIBC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

/** What a Linux host's agent runs with. */
export const AGENT_ENV: Readonly<Record<string, string>> = { NODE_OPTIONS: AGENT_NODE_OPTIONS, ...AGENT_GLIBC_ENV };
