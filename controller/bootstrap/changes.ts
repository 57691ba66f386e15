// What a host's bootstrap changed, and the one line that says so. Kept apart from
// bootstrap.ts so that the CLI can print it without loading ssh2 and the X.509 code.
import { basename } from 'node:path';

/** certificateReissued when the host had no certificate: a first issue, not a re-issue. */
export const NO_CERTIFICATE = 'none installed';

/** What one host's bootstrap did, for the per-host report. */
export interface HostChanges {
  /** Files replaced because what would be installed differs from what was (SHA-256); empty: unchanged. */
  readonly updated: readonly string[];
  /** Why the certificate was re-issued; undefined: kept. */
  readonly certificateReissued?: string;
  /** `left running` when nothing that needs it changed and it was running. */
  readonly agent: 'left running' | 'restarted' | 'started';
}

/** One line: `unchanged`, or what was updated, re-issued, restarted or started. */
export function describeChanges(d: HostChanges): string {
  const rest = [
    ...(d.certificateReissued === NO_CERTIFICATE ? ['certificate issued'] : d.certificateReissued ? [`certificate re-issued (${d.certificateReissued})`] : []),
    ...(d.agent === 'left running' ? [] : [d.agent === 'started' ? 'started (it was not running)' : 'restarted']),
  ];
  if (!d.updated.length && !rest.length) return 'unchanged';
  return [d.updated.length ? `updated ${d.updated.map((f) => basename(f)).join(', ')}` : 'files unchanged', ...rest].join('; ');
}
