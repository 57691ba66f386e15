import { strict as assert } from 'node:assert';
import { describeIsolation } from '../../../controller/commands/version.js';
import type { Capabilities__Output } from '../../../proto/gen/qfleet/agent/v1/Capabilities.js';

const caps = (over: Partial<Capabilities__Output>): Capabilities__Output => ({
  installMethods: [], namespaces: false, sparseImages: false, ipAliases: false, console: true,
  isolationModes: [], defaultIsolation: 'ISOLATION_UNSPECIFIED', limitMemory: false, limitCpu: false, limitPids: false, missing: [], ...over,
});

describe('qfleet version: what a host can contain with', () => {
  it('a FreeBSD host with jail as its default and racct on: every limit, nothing missing', () => {
    assert.deepEqual(describeIsolation({ apiRevision: 3, capabilities: caps({ isolationModes: ['ISOLATION_CHROOT', 'ISOLATION_JAIL'], defaultIsolation: 'ISOLATION_JAIL', limitMemory: true, limitCpu: true, limitPids: true }) }), [
      'isolation: chroot, jail (default); limits: memory, cpu, pids',
    ]);
  });

  it('a Linux host without tini or cgroup controllers: chroot only, no limits, and why', () => {
    assert.deepEqual(describeIsolation({ apiRevision: 3, capabilities: caps({
      isolationModes: ['ISOLATION_CHROOT'], defaultIsolation: 'ISOLATION_CHROOT',
      missing: ['namespaces: tini-static not found', 'limit memory: no memory controller'],
    }) }), ['isolation: chroot (default); limits: none', 'missing: namespaces: tini-static not found', 'missing: limit memory: no memory controller']);
  });

  it('an agent before API 3 reports no modes: it runs chroot only', () => {
    assert.deepEqual(describeIsolation({ apiRevision: 2, capabilities: caps({}) }), ['isolation: chroot only (API 2 agent: no isolation modes, no limits)']);
  });
});
