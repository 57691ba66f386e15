// The one-line messages qchroot(8) prints per container; clients show them verbatim.
export const MSG = {
  bypassed: 'Bypassed; No service configured yet',
  started: 'Start chroot completed.',
  alreadyStarted: 'Error; Chroot is already started.',
  stopped: 'Chroot is stopped.',
  alreadyStopped: 'Error; Chroot is already stopped.',
  deleted: 'Chroot is deleted.',
} as const;
