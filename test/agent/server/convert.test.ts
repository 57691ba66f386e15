import { strict as assert } from 'node:assert';
import { containerToProto } from '../../../agent/server/convert.js';
import type { ContainerView } from '../../../agent/engine/engine.js';
import { loadAgentProto } from '../../../proto/loader.js';
import { agentService } from '../../../proto/agent-service.js';

const view: ContainerView = {
  name: 'web1', state: 'stopped', reason: '', services: [], mounts: [], baseRelease: 'debian 12',
  createdAt: new Date('2026-11-28T08:00:00Z'), diskUsageBytes: 4096, path: '/var/lib/qfleet/default/containers/web1',
};

/** A List answer as the agent sends it (proto-loader) and as the controller reads it (protobufjs). */
function overTheWire(containers: ContainerView[]) {
  const { definition } = loadAgentProto();
  const list = (definition['qfleet.agent.v1.AgentService'] as Record<string, { responseSerialize: (o: object) => Buffer }>).List!;
  const bytes = list.responseSerialize({ containers: containers.map(containerToProto) });
  return agentService().definition.List.responseDeserialize(bytes).containers;
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
});
