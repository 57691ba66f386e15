// The one-line messages qchroot(8) prints per container; clients show them verbatim.
export const MSG = {
  bypassed: 'Bypassed; No service configured yet',
  started: 'Start chroot completed.',
  alreadyStarted: 'Error; Chroot is already started.',
  stopped: 'Chroot is stopped.',
  alreadyStopped: 'Error; Chroot is already stopped.',
  deleted: 'Chroot is deleted.',
} as const;

/**
 * What a validate-only call says it would do (outcome would-change): ours, as
 * qchroot has no dry run; short, as an operator's plan reads.
 */
export const PLAN = {
  start: (services: readonly string[]) => `start ${services.join(' ')}`,
  stop: 'stop',
  stopUnusable: 'stop (signal what runs in it and unmount; it stays broken)',
  delete: 'delete',
} as const;
