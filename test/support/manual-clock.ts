import type { Clock } from '../../controller/fleet/clock.js';

/** A clock that only moves when the test says so: deadlines run without waiting. */
export class ManualClock implements Clock {
  private t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now() { return this.t; }
  setTimeout(fn: () => void, ms: number) { const id = ++this.ids; this.timers.push({ at: this.t + ms, fn, id }); return id; }
  clearTimeout(h: unknown) { this.timers = this.timers.filter((x) => x.id !== h); }
  get pending() { return this.timers.length; }
  advance(ms: number) {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fn();
  }
}
