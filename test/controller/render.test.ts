import { strict as assert } from 'node:assert';
import { renderContainer, renderContainers, renderPlan } from '../../controller/render.js';
import type { Container__Output } from '../../proto/gen/qfleet/agent/v1/Container.js';

const c = (name: string, state = 'STATE_STOPPED', reason = ''): Container__Output =>
  ({ name, state, reason, services: [], mounts: [], baseRelease: 'debian 12', createTime: null, diskUsageBytes: '2048', path: `/var/lib/qfleet/default/containers/${name}` }) as unknown as Container__Output;

describe('render', () => {
  it('fleet list: one table with a HOST column, sorted by host then name, whatever order the hosts answered in', () => {
    const out = renderContainers([
      { host: 'web02', container: c('b') },
      { host: 'db01', container: c('z', 'STATE_RUNNING') },
      { host: 'web02', container: c('a') },
      { host: 'db01', container: c('m', 'STATE_BROKEN', 'sharedfs is not mounted') },
    ]);
    const lines = out.split('\n');
    assert.match(lines[0]!, /^HOST\s+NAME\s+STATE\s+ISOLATION\s+SERVICES\s+RELEASE\s+CREATED\s+DISK\s+PATH$/);
    assert.deepEqual(lines.slice(1, 5).map((l) => l.split(/\s+/).slice(0, 3)), [
      ['db01', 'm', 'broken'], ['db01', 'z', 'running'], ['web02', 'a', 'stopped'], ['web02', 'b', 'stopped'],
    ]);
    assert.equal(lines[5], 'db01: m: broken: sharedfs is not mounted');
    assert.equal(lines.length, 6);
  });

  it('fleet list with no container at all says so', () => assert.equal(renderContainers([]), 'No chroot containers.'));

  it('local list keeps its columns (no HOST)', () => {
    const out = renderContainers([{ container: c('b') }, { container: c('a', 'STATE_BROKEN', 'its directory is missing') }]).split('\n');
    assert.match(out[0]!, /^NAME\s+STATE/);
    assert.deepEqual(out.slice(1, 3).map((l) => l.split(/\s+/)[0]), ['b', 'a'], 'in the order the agent sent');
    assert.equal(out[3], 'a: broken: its directory is missing', 'no host prefix');
  });

  it('marks a release behind the host kernel (a FreeBSD base missing the host -pN)', () => {
    const old = { ...c('a'), baseRelease: '14.1-RELEASE-p3', baseBehind: 'base 14.1-RELEASE-p3 is behind the running kernel 14.1-RELEASE-p5' };
    assert.match(renderContainers([{ container: old }, { container: c('b') }]), /^a\s+stopped\s+-\s+-\s+14\.1-RELEASE-p3 \(behind kernel\)\s+-/m);
    assert.match(renderContainers([{ container: c('b') }]), /^b\s+stopped\s+-\s+-\s+debian 12\s+-/m);
  });

  it('get: a running jail shows its jid and securelevel; every empty field says what it means', () => {
    const jail = {
      ...c('db1', 'STATE_RUNNING'), jid: 7, initPid: 0,
      services: [{ name: 'postgresql', state: 'STATE_RUNNING' }],
      config: {
        isolation: 'ISOLATION_JAIL', hostname: '', network: 'NETWORK_HOST', uidMap: [], gidMap: [],
        mounts: [{ kind: 'KIND_BIND', source: '/data/db1', target: '/var/db/postgres', readOnly: false, sizeBytes: '0' }],
        user: '', group: '', env: { PGDATA: '/var/db/postgres/data', MOTD: 'two words' }, workdir: '',
        limits: { memoryBytes: '1073741824', cpus: 2, pids: 0 }, securelevel: 2,
      },
    } as unknown as Container__Output;
    assert.deepEqual(renderContainer(jail).split('\n').map((l) => l.split(/:\s+/)), [
      ['name', 'db1'], ['state', 'running'], ['isolation', 'jail'], ['jid', '7'], ['hostname', 'db1 (its name)'], ['network', 'host'],
      ['uid map', 'default (0:100000:65536)'], ['gid map', 'default (0:100000:65536)'], ['mounts', '/data/db1:/var/db/postgres:rw'], ['user', 'root'], ['group', "the user's"],
      ['env', 'PGDATA=/var/db/postgres/data MOTD="two words"'], ['workdir', '/'], ['limits', 'memory 1G, cpus 2'], ['securelevel', '2'],
      ['services', 'postgresql'], ['release', 'debian 12'], ['created', '-'], ['disk', '2.0K'], ['path', '/var/lib/qfleet/default/containers/db1'],
    ]);
  });

  it('a disk use the agent has not measured yet is "-" in a list and says so in get, never 0B', () => {
    const { diskUsageBytes: _omitted, ...unmeasured } = c('new');
    assert.match(renderContainers([{ container: unmeasured as unknown as Container__Output }]), /^new\s+stopped\s+.*\s-\s+\/var\/lib\/qfleet/m);
    assert.match(renderContainer(unmeasured as unknown as Container__Output), /^disk:\s+not measured yet$/m);
  });

  it('get: a container whose config the agent does not give says so', () => {
    assert.match(renderContainer({ ...c('old'), config: null } as unknown as Container__Output), /^isolation:\s+unknown \(the agent did not say\)$/m);
  });

  it('dry-run plan: a table and a closing line counting what would be touched and what would fail', () => {
    const out = renderPlan([
      { host: 'h1', container: 'web1', state: 'stopped', action: 'start httpd', problem: '' },
      { host: 'h1', container: 'web', state: 'stopped', action: 'none (no service configured)', problem: '' },
      { host: 'h2', container: 'web1', state: '-', action: 'start', problem: 'no such container' },
      { host: 'h3', container: '-', state: '-', action: 'start', problem: 'unreachable: connect ECONNREFUSED' },
    ], 'start');
    const lines = out.split('\n');
    assert.match(lines[0]!, /^HOST\s+CONTAINER\s+STATE\s+ACTION\s+PROBLEM$/);
    assert.match(lines[1]!, /^h1\s+web1\s+stopped\s+start httpd\s+-$/);
    assert.equal(lines.at(-1), 'Dry run: start would touch 1 container on 1 of 3 hosts; 2 steps would fail; nothing was changed.');
  });

  it('dry-run plan of a host-wide action counts hosts', () => {
    const out = renderPlan([{ host: 'h1', container: '-', state: '-', action: 'install', problem: '' }], 'install');
    assert.equal(out.split('\n').at(-1), 'Dry run: install would run on 1 of 1 host; nothing was changed.');
  });
});
