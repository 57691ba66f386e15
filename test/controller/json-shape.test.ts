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
    });
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

  it('times: unset or zero is null, not 1970', () => {
    assert.equal(rfc3339(null), null);
    assert.equal(rfc3339({ seconds: '0', nanos: 0 }), null);
    assert.equal(rfc3339({ seconds: '1795852962', nanos: 5_000_000 }), '2026-11-28T08:02:42.005Z');
  });
});
