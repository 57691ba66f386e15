import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { statFields } from '../../../../agent/drivers/linux/processes.js';

describe('statFields (/proc/PID/stat)', () => {
  it('reads state, parent, thread count and start time after a comm with spaces and parentheses', () => {
    // proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice num_threads itrealvalue starttime vsize ...
    const line = '4242 (my (odd) daemon) S 17 4242 4242 0 -1 4194560 100 0 0 0 3 1 0 0 20 0 2 0 987654 10485760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n';
    const f = statFields(line);
    assert.equal(f[0], 'S');
    assert.equal(f[1], '17');
    assert.equal(f[17], '2');
    assert.equal(f[19], '987654');
    assert.equal(f.length, 20, 'the fields after the start time are not split off');
  });

  it('reads this very process: its start time is the one ps would show, its parent is the one Node reports', () => {
    const f = statFields(readFileSync('/proc/self/stat', 'utf8'));
    assert.equal(f[0], 'R');
    assert.match(f[19]!, /^\d+$/);
    assert.equal(Number(f[1]), process.ppid);
  });
});
