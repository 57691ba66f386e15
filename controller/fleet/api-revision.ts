import type { VersionResponse__Output } from '../../proto/gen/qfleet/agent/v1/VersionResponse.js';
import { call } from '../transport/call.js';
import { HostError, type HostCall } from './fanout.js';

/** The first API revision whose agents read Create.config and Configure.update_mask; an older one ignores them and would act without them. */
export const CONFIG_API = 3;

/** A feature a request needs of the agent: the revision that brought it, and what the command line asked that needs it. */
export interface ApiNeed {
  readonly revision: number;
  /** What would be lost, for the message: `container config (--isolation, --memory)`. */
  readonly what: string;
}

/** The need of a command line that gave config options (undefined: none given, so any agent will do). */
export function configNeed(flags: readonly string[] | undefined): ApiNeed | undefined {
  return flags?.length ? { revision: CONFIG_API, what: `container config (${flags.join(', ')})` } : undefined;
}

/** Why this agent cannot be sent the request, or undefined when it can. */
export function tooOld(v: Pick<VersionResponse__Output, 'agentVersion' | 'apiRevision'>, need: ApiNeed): string | undefined {
  return v.apiRevision < need.revision
    ? `qfleetd ${v.agentVersion} (API ${v.apiRevision}) would ignore ${need.what}, which needs API ${need.revision}; nothing was asked of it`
    : undefined;
}

/**
 * Asks the host's agent its revision first, and fails the host (nothing else
 * asked of it) when it would silently ignore what the request needs: an
 * agent before API 3 would create a chroot for `create --isolation jail`
 * and answer success. No need: nothing is asked.
 */
export async function requireApi(c: HostCall, need: ApiNeed | undefined): Promise<void> {
  if (!need) return;
  const v = await call(c.client, 'Version', {}, c.timeoutMs, c.signal);
  const why = tooOld(v, need);
  if (why) throw new HostError(why, 'failed');
}
