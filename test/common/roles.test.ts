import { strict as assert } from 'node:assert';
import { AGENT_ROLE, CLIENT_ROLES, isClientRole, roleSubject } from '../../common/roles.js';

describe('common/roles: the role encoding the PKI writes and the agent reads', () => {
  it('a role is the one OU beside O=qfleet', () => {
    assert.equal(roleSubject('read-only', 'grafana'), 'O=qfleet, OU=read-only, CN=grafana');
    assert.equal(roleSubject(AGENT_ROLE, 'web1.example'), 'O=qfleet, OU=agent, CN=web1.example');
  });

  it('client roles are operator and read-only; an agent certificate is no client', () => {
    assert.deepEqual([...CLIENT_ROLES], ['operator', 'read-only']);
    assert.equal(isClientRole('operator'), true);
    assert.equal(isClientRole(AGENT_ROLE), false);
    assert.equal(isClientRole('Operator'), false);
  });
});
