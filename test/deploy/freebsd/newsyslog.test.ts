import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostPaths, renderNewsyslog } from '../../../controller/bootstrap/plan.js';
import { repoRoot } from '../../support/repo-root.js';

// The newsyslog rule and the rc.d script must agree: the file rotated is the one daemon(8)
// writes, and the pid newsyslog signals is daemon's, which reopens its output on SIGHUP (-H).

const read = (rel: string) => readFileSync(join(repoRoot(), rel), 'utf8');
const rule = () => read('deploy/freebsd/newsyslog.conf.d/qfleetd.conf');
const rc = () => read('deploy/freebsd/rc.d/qfleetd');
/** newsyslog.conf(5): logfilename [owner:group] mode count size when flags [/pid_file] [sig_num]. */
const fields = (text: string) => text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.trim().split(/\s+/));

describe('deploy/freebsd newsyslog rule for the agent log', () => {
  it('is one rule in newsyslog.conf(5) form: owner:group, octal mode, count, size, when, flags, pid file', () => {
    const lines = fields(rule());
    assert.equal(lines.length, 1);
    const [file, owner, mode, count, size, when, flags, pid, ...rest] = lines[0]!;
    assert.deepEqual(rest, [], 'no signal number: newsyslog sends SIGHUP by default');
    assert.equal(file, '/var/log/qfleetd.log');
    assert.match(owner!, /^[a-z]+:[a-z]+$/);
    assert.match(mode!, /^[0-7]{3}$/);
    assert.match(count!, /^\d+$/);
    assert.match(size!, /^(\d+|\*)$/);
    assert.equal(when, '*');
    assert.match(flags!, /^[JC]+$/);
    assert.equal(pid, '/var/run/qfleetd.pid');
  });

  it('rotates the file the rc.d script has daemon(8) write, signalling the pid file daemon -P writes, and daemon reopens on SIGHUP (-H)', () => {
    const script = rc();
    const [file, , , , , , , pid] = fields(rule())[0]!;
    assert.match(script, new RegExp(`^: \\$\\{qfleetd_log:="${file}"\\}$`, 'm'));
    assert.match(script, /^name=qfleetd$/m);
    assert.match(script, /^pidfile="\/var\/run\/\$\{name\}\.pid"$/m);
    assert.equal(pid, '/var/run/qfleetd.pid');
    assert.match(script, /^command_args=".*-P \$\{pidfile\} .*-o \$\{qfleetd_log\} -H /m);
  });

  it("is rendered with the host's agent log (qfleet_agent_log), keeping the rest of the rule", () => {
    const p = hostPaths('freebsd', { qfleet_agent_log: '/srv/log/qfleetd.log' });
    const out = renderNewsyslog(rule(), p);
    assert.deepEqual(fields(out)[0]!.slice(0, 1), ['/srv/log/qfleetd.log']);
    assert.deepEqual(fields(out)[0]!.slice(1), fields(rule())[0]!.slice(1));
    assert.equal(renderNewsyslog(rule(), hostPaths('freebsd', {})), rule());
  });
});
