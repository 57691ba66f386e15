import { strict as assert } from 'node:assert';
import { containerJson, resultJson, rfc3339, versionJson } from '../../controller/json-shape.js';
import type { Container__Output } from '../../proto/gen/qfleet/agent/v1/Container.js';

const running: Container__Output = {
  name: 'web1',
  state: 'STATE_RUNNING',
  reason: '',
  services: [{ name: 'httpd', state: 'STATE_RUNNING' }],
  mounts: [{ source: '/var/lib/qfleet/default/sharedfs', target: '/var/lib/qfleet/default/containers/web1/sharedfs', fstype: 'none', options: ['ro'] }],
  baseRelease: 'debian 12',
  createTime: { seconds: '1795852962', nanos: 336000000 },
  diskUsageBytes: '77824',
  path: '/var/lib/qfleet/default/containers/web1',
  busySince: null,
  baseBehind: '',
  config: null,
  initPid: 0,
  jid: 0,
};

describe('qfleet --json: its own stable shape (docs/json.md)', () => {
  it('a container: state as a word, RFC 3339 times, numbers as numbers, null where there is nothing', () => {
    assert.deepEqual(containerJson(running), {
      name: 'web1',
      state: 'running',
      reason: null,
      services: [{ name: 'httpd', running: true }],
      mounts: [{ source: '/var/lib/qfleet/default/sharedfs', target: '/var/lib/qfleet/default/containers/web1/sharedfs', fstype: 'none', options: ['ro'] }],
      baseRelease: 'debian 12',
      baseBehind: null,
      created: '2026-11-28T08:02:42.336Z',
      busySince: null,
      diskUsageBytes: 77824,
      path: '/var/lib/qfleet/default/containers/web1',
      isolation: null,
      config: null,
      initPid: null,
      jid: null,
    });
  });

  it('a disk use the agent has not measured yet is null, not 0', () => {
    const { diskUsageBytes: _omitted, ...unmeasured } = running;
    assert.equal(containerJson(unmeasured as Container__Output).diskUsageBytes, null);
    assert.equal(containerJson({ ...running, diskUsageBytes: '0' }).diskUsageBytes, 0, 'an empty tree is 0');
  });

  it('a broken container carries its reason; one without a usable state file has no creation time or release', () => {
    const j = containerJson({ ...running, state: 'STATE_BROKEN', reason: 'its state file is unusable: it is empty', createTime: null, baseRelease: '', services: [] });
    assert.equal(j.state, 'broken');
    assert.equal(j.reason, 'its state file is unusable: it is empty');
    assert.equal(j.created, null);
    assert.equal(j.baseRelease, null);
  });

  it('a busy container: its transient state, what holds it and since when', () => {
    const j = containerJson({ ...running, state: 'STATE_STOPPING', reason: 'stopping since 2026-11-28T08:10:00.000Z', busySince: { seconds: '1795853400', nanos: 0 } });
    assert.equal(j.state, 'stopping');
    assert.equal(j.busySince, '2026-11-28T08:10:00.000Z');
    assert.match(j.reason ?? '', /^stopping since/);
  });

  it('an unknown state from a newer agent is "unknown", never a crash', () => {
    assert.equal(containerJson({ ...running, state: 'STATE_PAUSED' as Container__Output['state'] }).state, 'unknown');
  });

  it('results say whether anything changed: no-ops keep qchroot\'s words and changed=false', () => {
    assert.deepEqual(resultJson({ state: 'STATE_UNSPECIFIED', error: null, name: 'web1', outcome: 'OUTCOME_STARTED', message: 'Start chroot completed.' }), { name: 'web1', outcome: 'started', changed: true, message: 'Start chroot completed.' });
    assert.deepEqual(resultJson({ state: 'STATE_UNSPECIFIED', error: null, name: 'web1', outcome: 'OUTCOME_ALREADY_STARTED', message: 'Error; Chroot is already started.' }), {
      name: 'web1', outcome: 'already-started', changed: false, message: 'Error; Chroot is already started.',
    });
    assert.equal(resultJson({ state: 'STATE_UNSPECIFIED', error: null, name: 'web1', outcome: 'OUTCOME_ALREADY_STOPPED', message: '' }).changed, false);
    assert.equal(resultJson({ state: 'STATE_UNSPECIFIED', error: null, name: 'web1', outcome: 'OUTCOME_BYPASSED', message: '' }).changed, false);
    assert.equal(resultJson({ state: 'STATE_UNSPECIFIED', error: null, name: 'web1', outcome: 'OUTCOME_FAILED', message: '' }).changed, false);
    assert.equal(resultJson({ state: 'STATE_UNSPECIFIED', error: null, name: 'web1', outcome: 'OUTCOME_DELETED', message: '' }).changed, true);
    assert.deepEqual(resultJson({ state: 'STATE_RUNNING', error: null, name: 'web1', outcome: 'OUTCOME_WOULD_CHANGE', message: 'stop' }), {
      name: 'web1', outcome: 'would-change', changed: false, message: 'stop',
    }, 'a validate-only answer changed nothing');
  });

  it('version: install methods as words, capabilities as booleans', () => {
    const v = versionJson({
      agentVersion: '0.1.0', apiRevision: 1, os: 'Linux', release: 'debian 12', machine: 'x86_64', driver: 'linux', hostname: 'h1',
      capabilities: { installMethods: ['INSTALL_METHOD_DIRECTORY', 'INSTALL_METHOD_TARBALL'], namespaces: false, sparseImages: false, ipAliases: false, console: true,
        isolationModes: ['ISOLATION_CHROOT'], defaultIsolation: 'ISOLATION_NAMESPACES', limitMemory: false, limitCpu: false, limitPids: false, missing: [] },
      baseRelease: '', rootDir: '/var/lib/qfleet/default', baseBehind: '',
    });
    assert.deepEqual(v.capabilities.installMethods, ['directory', 'tarball']);
    assert.equal(v.baseRelease, null);
    assert.equal(v.baseBehind, null);
    assert.equal(v.capabilities.console, true);
  });

  it('a FreeBSD base behind the running kernel says why', () => {
    const why = 'base 14.1-RELEASE-p3 is behind the running kernel 14.1-RELEASE-p5: run qfleet install to bring it to the host\'s patch level';
    assert.equal(containerJson({ ...running, baseRelease: '14.1-RELEASE-p3', baseBehind: why }).baseBehind, why);
  });

  it('a container\'s config: the isolation as a word, limits as numbers (0: none), null for a default, init pid or jid as a number or null', () => {
    const c: Container__Output = {
      ...running,
      initPid: 4242,
      config: {
        isolation: 'ISOLATION_NAMESPACES', hostname: '', network: 'NETWORK_NONE',
        uidMap: [{ inside: 0, outside: 100000, count: 65536 }], gidMap: [],
        mounts: [
          { kind: 'KIND_BIND', source: '/srv/www', target: '/var/www', readOnly: true, sizeBytes: '0' },
          { kind: 'KIND_TMPFS', source: '', target: '/tmp', readOnly: false, sizeBytes: '67108864' },
        ],
        user: 'www', group: '', env: { LANG: 'C.UTF-8' }, workdir: '/var/www',
        limits: { memoryBytes: '536870912', cpus: 1.5, pids: 256 }, securelevel: -1,
      },
    };
    const j = containerJson(c);
    assert.equal(j.isolation, 'namespaces');
    assert.equal(j.initPid, 4242);
    assert.equal(j.jid, null);
    assert.deepEqual(j.config, {
      isolation: 'namespaces', hostname: null, network: 'none',
      uidMap: [{ inside: 0, outside: 100000, count: 65536 }], gidMap: [],
      mounts: [
        { kind: 'bind', source: '/srv/www', target: '/var/www', readOnly: true, sizeBytes: 0 },
        { kind: 'tmpfs', source: null, target: '/tmp', readOnly: false, sizeBytes: 67108864 },
      ],
      user: 'www', group: null, env: { LANG: 'C.UTF-8' }, workdir: '/var/www',
      limits: { memoryBytes: 536870912, cpus: 1.5, pids: 256 }, securelevel: null,
    });
    const jail = containerJson({ ...running, jid: 7, config: { ...c.config!, isolation: 'ISOLATION_JAIL', securelevel: 3 } });
    assert.deepEqual([jail.isolation, jail.jid, jail.initPid, jail.config?.securelevel], ['jail', 7, null, 3]);
    assert.equal(containerJson({ ...c, config: { ...c.config!, isolation: 9 as unknown as 'ISOLATION_JAIL' } }).isolation, 'unknown', 'a mode newer than this qfleet');
  });

  it('version: the isolation modes, the default, the limits and what is missing; an agent before API 3 offers none', () => {
    const base = {
      agentVersion: '0.2.0', apiRevision: 3, os: 'Linux', release: 'debian 12', machine: 'x86_64', driver: 'linux', hostname: 'h1',
      baseRelease: '', rootDir: '/var/lib/qfleet/default', baseBehind: '',
    };
    const caps = { installMethods: [], namespaces: true, sparseImages: false, ipAliases: false, console: true,
      isolationModes: ['ISOLATION_CHROOT', 'ISOLATION_NAMESPACES'], defaultIsolation: 'ISOLATION_NAMESPACES', limitMemory: false, limitCpu: true, limitPids: true,
      missing: ['limit memory: no memory controller'] } as const;
    const v = versionJson({ ...base, capabilities: { ...caps, isolationModes: [...caps.isolationModes], installMethods: [], missing: [...caps.missing] } });
    assert.deepEqual(
      { isolationModes: v.capabilities.isolationModes, defaultIsolation: v.capabilities.defaultIsolation, limits: v.capabilities.limits, missing: v.capabilities.missing },
      { isolationModes: ['chroot', 'namespaces'], defaultIsolation: 'namespaces', limits: { memory: false, cpu: true, pids: true }, missing: ['limit memory: no memory controller'] },
    );
    const old = versionJson({ ...base, apiRevision: 2, capabilities: { ...caps, isolationModes: [], defaultIsolation: 'ISOLATION_UNSPECIFIED', limitCpu: false, limitPids: false, installMethods: [], missing: [] } });
    assert.deepEqual([old.capabilities.isolationModes, old.capabilities.defaultIsolation], [[], null]);
  });

  it('times: unset or zero is null, not 1970', () => {
    assert.equal(rfc3339(null), null);
    assert.equal(rfc3339({ seconds: '0', nanos: 0 }), null);
    assert.equal(rfc3339({ seconds: '1795852962', nanos: 5_000_000 }), '2026-11-28T08:02:42.005Z');
  });
});
