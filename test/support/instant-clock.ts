import type { Clock } from '../../agent/engine/clock.js';

/** An engine clock whose sleeps pass at once but still advance its time (from 2026-11-23T12:00:00Z). */
export function instantClock(): Clock {
  let t = Date.parse('2026-11-23T12:00:00Z');
  return { now: () => new Date(t), sleep: async (ms) => { t += ms; } };
}
