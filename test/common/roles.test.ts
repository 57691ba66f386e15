import { strict as assert } from 'node:assert';
import { AGENT_ROLE, CLIENT_ROLES, isClientRole, roleOf, roleSubject } from '../../common/roles.js';
import { x509 } from '../../common/x509.js';

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

  describe('roleOf reads what roleSubject writes', () => {
    const read = (dn: string) => roleOf(new x509.Name(dn));
    it('each role, client or agent, comes back from its subject', () => {
      for (const role of [...CLIENT_ROLES, AGENT_ROLE] as const) assert.equal(read(roleSubject(role, 'h1.example')), role);
    });
    it('wherever O and OU stand in the name', () => {
      assert.equal(read('CN=grafana, OU=read-only, O=qfleet'), 'read-only');
    });
    it('no role without exactly one O=qfleet and exactly one known OU', () => {
      for (const dn of ['O=qfleet, CN=norole', 'OU=operator, CN=x', 'O=other, OU=operator, CN=x', 'O=qfleet, O=qfleet, OU=operator, CN=x',
        'O=qfleet, OU=read-only, OU=operator, CN=x', 'O=qfleet, OU=admin, CN=x', 'O=qfleet, OU=Operator, CN=x']) {
        assert.equal(read(dn), undefined, dn);
      }
    });
  });
});
