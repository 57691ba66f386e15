import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_ENV, AGENT_GLIBC_ENV, AGENT_NODE_OPTIONS } from '../../deploy/agent-env.js';
import { repoRoot } from '../support/repo-root.js';

// bench/host-scale.ts measures the agent with AGENT_ENV: each way hosts run it must give it the same.
describe('every service unit runs qfleetd with the environment deploy/agent-env.ts names', () => {
  const root = repoRoot();
  const text = (f: string) => readFileSync(join(root, f), 'utf8');

  /** A value as a shell (or systemd) word: quoted when it holds a space. */
  const word = (v: string, quote: string) => (v.includes(' ') ? `${quote}${v}${quote}` : v);

  it('the systemd unit (an assignment with a space in its value is quoted whole)', () => {
    const env = text('deploy/linux/qfleetd.service').split('\n').filter((l) => l.startsWith('Environment='))
      .flatMap((l) => l.slice('Environment='.length).match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"(.*)"$/, '$1'));
    assert.deepEqual(Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])), AGENT_ENV);
  });

  it('the supervisor without systemd', () => {
    const launch = text('deploy/linux/qfleetd-supervise').split('\n').find((l) => /"\$node" "\$script" --config/.test(l));
    assert.equal(launch?.trim(), `${Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${word(v, "'")}`).join(' ')} "$node" "$script" --config "$config" &`);
  });

  it('the FreeBSD rc script (jemalloc there: no glibc settings; rc.subr evals the value, so it is quoted inside)', () => {
    assert.ok(text('deploy/freebsd/rc.d/qfleetd').split('\n').includes(`: \${qfleetd_env:="NODE_OPTIONS=${word(AGENT_NODE_OPTIONS, "'")}"}`));
    assert.ok(Object.keys(AGENT_GLIBC_ENV).every((k) => k.startsWith('MALLOC_')));
  });
});
