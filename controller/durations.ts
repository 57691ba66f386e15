import { UsageError } from './context.js';

/**
 * Every duration and count an operator passes has a documented upper bound
 * (README, "Limits"): beyond it, a usage error (exit 2) rather than a command
 * that waits for days or opens thousands of connections at once.
 */
export const LIMITS = {
  /** --timeout: the whole command's deadline. A day covers a slow base install across a large fleet. */
  timeoutSeconds: 86_400,
  /** --grace: between SIGTERM and SIGKILL; the agent allows the same hour. */
  graceSeconds: 3_600,
  /** bootstrap --health-timeout. */
  healthTimeoutSeconds: 600,
  /** --forks: hosts in flight at once. */
  forks: 1_000,
} as const;

/** A number of seconds in [min, max], whole if `whole`; otherwise a usage error naming the flag and its range. */
export function boundedSeconds(v: string, flag: string, max: number, opts: { min?: number; whole?: boolean } = {}): number {
  const min = opts.min ?? 0;
  const n = Number(v);
  const kind = opts.whole ? 'whole seconds' : 'seconds';
  if (v.trim() === '' || !Number.isFinite(n) || (opts.whole && !Number.isInteger(n)) || n < min || n > max || (min === 0 && n <= 0)) {
    const range = min === 0 ? `more than 0 and at most ${max}` : `${min} to ${max}`;
    throw new UsageError(`${flag} must be ${kind}, ${range}, not ${JSON.stringify(v)}.`);
  }
  return n;
}

/** A whole number in [1, max]; otherwise a usage error naming the flag and its range. */
export function boundedCount(v: string, flag: string, max: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${flag} must be a whole number from 1 to ${max}, not ${JSON.stringify(v)}.`);
  }
  return n;
}
