import { strict as assert } from 'node:assert';
import { containerToProto, listToProto, oneContainerToProto } from '../../../agent/server/convert.js';
import type { ContainerView } from '../../../agent/engine/engine.js';
import { LEGACY_CONFIG } from '../../../agent/drivers/container-config.js';
import { loadAgentProto } from '../../../proto/loader.js';
import { agentService } from '../../../proto/agent-service.js';
import { carrierOf, carrierType, enumNumbers, isWireReady } from '../../../proto/wire-ready.js';
import { _qfleet_agent_v1_Container_State as StateNames } from '../../../proto/gen/qfleet/agent/v1/Container.js';

const view: ContainerView = {
  name: 'web1', state: 'stopped', reason: '', services: [], mounts: [], baseRelease: 'debian 12',
  createdAt: new Date('2026-11-28T08:00:00Z'), diskUsageBytes: 4096, path: '/var/lib/qfleet/default/containers/web1',
};

/** Every field of a container away from its default, and the settled and transient states. */
const views: ContainerView[] = [
  { ...view, config: LEGACY_CONFIG },
  {
    ...view, name: 'web2', state: 'running', createdAt: new Date('2026-11-28T08:00:00.123Z'), diskUsageBytes: 0,
    services: [{ name: 'httpd', running: true }, { name: 'sshd', running: false }],
    mounts: [{ source: '/var/lib/qfleet/default/sharedfs', target: '/var/lib/qfleet/default/containers/web2/sharedfs', fstype: 'none', options: ['ro', 'bind'] }],
    initPid: 4242,
    config: {
      isolation: 'namespaces', hostname: 'w2', network: 'none',
      uidMap: [{ inside: 0, outside: 100000, count: 65536 }], gidMap: [{ inside: 1, outside: 200001, count: 1 }],
      mounts: [{ kind: 'bind', source: '/srv/data', target: '/data', readOnly: true, sizeBytes: 0 }, { kind: 'tmpfs', source: '', target: '/tmp', readOnly: false, sizeBytes: 2 ** 40 }],
      user: 'www', group: 'www', env: { A: '1', EMPTY: '' }, workdir: '/srv', limits: { memoryBytes: 5 * 2 ** 30, cpus: 1.5, pids: 100 }, securelevel: -1,
    },
  },
  { ...view, name: 'jail1', state: 'broken', reason: 'service httpd is not running', jid: 7, diskUsageBytes: undefined, config: { ...LEGACY_CONFIG, isolation: 'jail', securelevel: 0 } },
  { ...view, name: 'web3', state: 'stopping', reason: 'stopping since …', busy: { op: 'stopping', since: new Date('2026-11-28T09:00:00.5Z') } },
  { ...view, name: 'old', baseRelease: '', createdAt: undefined, path: '' },
];

const seconds = (iso: string) => String(Math.floor(Date.parse(iso) / 1000));

/** A List answer as the agent sends it and as the controller reads it. */
function overTheWire(containers: ContainerView[], behind = new Map<string, string>()) {
  const { List } = agentService().definition;
  return List.responseDeserialize(List.responseSerialize(listToProto(containers, behind))).containers;
}

describe('agent/server/convert: a container on the wire', () => {
  it('carries a measured disk use, 0 included, as the number it is', () => {
    const [measured, empty] = overTheWire([view, { ...view, name: 'web2', diskUsageBytes: 0 }]);
    assert.equal(measured!.diskUsageBytes, '4096');
    assert.equal(empty!.diskUsageBytes, '0', 'an explicit 0, present on the wire');
  });

  it('leaves a disk use not measured yet unset, so a client cannot read it as 0', () => {
    const [c] = overTheWire([{ ...view, diskUsageBytes: undefined }]);
    assert.equal(c!.diskUsageBytes, undefined);
  });

  it('leaves out what is at its default, and a client reads every field as it was', () => {
    const got = overTheWire(views);
    const [legacy, running, jail, held, old] = got;
    assert.equal(legacy!.state, 'STATE_STOPPED');
    assert.equal(legacy!.reason, '');
    assert.deepEqual(legacy!.services, []);
    assert.deepEqual(legacy!.config!.limits, { memoryBytes: '0', cpus: 0, pids: 0 }, 'limits present, as the engine always has them');
    assert.equal(legacy!.config!.isolation, 'ISOLATION_CHROOT');
    assert.equal(legacy!.config!.securelevel, -1, 'securelevel is optional: present although -1');
    assert.deepEqual(legacy!.createTime, { seconds: seconds('2026-11-28T08:00:00Z'), nanos: 0 });
    assert.equal(running!.state, 'STATE_RUNNING');
    assert.deepEqual(running!.services, [{ name: 'httpd', state: 'STATE_RUNNING' }, { name: 'sshd', state: 'STATE_STOPPED' }]);
    assert.deepEqual(running!.mounts[0]!.options, ['ro', 'bind']);
    assert.equal(running!.initPid, 4242);
    assert.deepEqual(running!.createTime, { seconds: seconds('2026-11-28T08:00:00Z'), nanos: 123_000_000 });
    const c = running!.config!;
    assert.deepEqual([c.isolation, c.hostname, c.network, c.user, c.group, c.workdir], ['ISOLATION_NAMESPACES', 'w2', 'NETWORK_NONE', 'www', 'www', '/srv']);
    assert.deepEqual(c.uidMap, [{ inside: 0, outside: 100000, count: 65536 }]);
    assert.deepEqual(c.gidMap, [{ inside: 1, outside: 200001, count: 1 }]);
    assert.deepEqual(c.mounts, [
      { kind: 'KIND_BIND', source: '/srv/data', target: '/data', readOnly: true, sizeBytes: '0' },
      { kind: 'KIND_TMPFS', source: '', target: '/tmp', readOnly: false, sizeBytes: String(2 ** 40) },
    ]);
    assert.deepEqual(c.env, { A: '1', EMPTY: '' });
    assert.deepEqual(c.limits, { memoryBytes: String(5 * 2 ** 30), cpus: 1.5, pids: 100 });
    assert.deepEqual([jail!.state, jail!.reason, jail!.jid, jail!.config!.isolation, jail!.config!.securelevel], ['STATE_BROKEN', 'service httpd is not running', 7, 'ISOLATION_JAIL', 0]);
    assert.deepEqual([held!.state, held!.busySince], ['STATE_STOPPING', { seconds: seconds('2026-11-28T09:00:00Z'), nanos: 500_000_000 }]);
    assert.deepEqual([old!.baseRelease, old!.createTime, old!.path, old!.config], ['', null, '', null]);
  });

  it("marks a base behind the host's kernel on the containers of that release only", () => {
    const [a, b] = overTheWire([view, { ...view, name: 'web2', baseRelease: 'debian 13' }], new Map([['debian 12', 'the kernel is newer']]));
    assert.deepEqual([a!.baseBehind, b!.baseBehind], ['the kernel is newer', '']);
  });

  it('marks only the answers it builds as wire-ready; anything else is still copied through fromObject', () => {
    assert.ok(carrierOf(listToProto([view], new Map())));
    assert.ok(isWireReady(oneContainerToProto(view)));
    // An answer built the usual way (enum names) is never encoded as if it were wire-ready.
    const { Get } = agentService().definition;
    const named = Get.responseDeserialize(Get.responseSerialize({ container: { name: 'x', state: 'STATE_RUNNING' } }));
    assert.equal(named.container!.state, 'STATE_RUNNING');
  });

  it('sends each container as its encoding, the very bytes proto-loader (kept for reflection) writes for the messages', () => {
    const { definition } = loadAgentProto();
    const list = (definition['qfleet.agent.v1.AgentService'] as Record<string, { responseSerialize: (o: object) => Buffer }>).List!;
    const behind = new Map([['debian 12', 'the kernel is newer']]);
    const asMessages = { containers: views.map((v) => ({ ...containerToProto(v), ...(behind.get(v.baseRelease) ? { baseBehind: behind.get(v.baseRelease) } : {}) })) };
    assert.deepEqual(agentService().definition.List.responseSerialize(listToProto(views, behind)), list.responseSerialize(asMessages));
  });

  it("keeps a view's encoding while the engine gives the same view, and encodes another view afresh", () => {
    const carried = (vs: ContainerView[]) => (listToProto(vs, new Map()) as unknown as { containers: Uint8Array[] }).containers;
    const [first] = carried([view]);
    const [again] = carried([view]);
    const [other] = carried([{ ...view }]);
    assert.equal(again, first, 'the same view: the same bytes, not encoded again');
    assert.notEqual(other, first);
    assert.deepEqual(other, first, 'an equal view encodes alike');
    // A base found behind the kernel (or caught up) is a new encoding of the same view.
    const behind = (vs: ContainerView[]) => (listToProto(vs, new Map([['debian 12', 'the kernel is newer']])) as unknown as { containers: Uint8Array[] }).containers;
    const [marked] = behind([view]);
    assert.notDeepEqual(marked, first);
    assert.equal(behind([view])[0], marked, 'kept with its mark');
    assert.deepEqual(carried([view])[0], first, 'and without it once the base caught up');
  });
});

describe('proto/wire-ready: enum numbers', () => {
  it("are the definition's, by the generated names", () => {
    const n = enumNumbers<typeof StateNames, StateNames>('qfleet.agent.v1.Container.State', StateNames);
    assert.deepEqual([n.STATE_UNSPECIFIED, n.STATE_STOPPED, n.STATE_RUNNING, n.STATE_RECOVERING], [0, 1, 2, 8]);
  });

  it('refuse, at load, an enum the API lacks or a name it does not have', () => {
    assert.throws(() => enumNumbers('qfleet.agent.v1.NoSuchEnum', StateNames), /qfleet.agent.v1.NoSuchEnum is no enum of the agent API/);
    assert.throws(() => enumNumbers('qfleet.agent.v1.Isolation', StateNames), /qfleet.agent.v1.Isolation has no value STATE_UNSPECIFIED/);
  });
});

describe('proto/wire-ready: carriers', () => {
  it('are made only for messages of repeated message fields (a carrier would drop any other field)', () => {
    const root = agentService().root;
    assert.deepEqual(carrierType(root.lookupType('qfleet.agent.v1.ListResponse')).fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated]), [['containers', 1, 'bytes', true]]);
    assert.throws(() => carrierType(root.lookupType('qfleet.agent.v1.GetResponse')), /GetResponse.container is not a repeated message/);
    assert.throws(() => carrierType(root.lookupType('qfleet.agent.v1.Mount')), /Mount.source is not a repeated message/);
  });
});
