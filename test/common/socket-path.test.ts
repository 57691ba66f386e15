import { strict as assert } from 'node:assert';
import { PRIVATE_BIND_SUFFIX, unixSocketExcess, unixSocketLimits } from '../../common/socket-path.js';

describe('common/socket-path: how long a unix socket path may be (agent config, CLI --socket, bootstrap)', () => {
  it('sun_path less its NUL: 107 bytes on Linux, 103 on FreeBSD and macOS, 103 elsewhere', () => {
    assert.deepEqual(unixSocketLimits('linux'), { system: 'Linux', path: 107, directory: 107 - PRIVATE_BIND_SUFFIX.length });
    assert.deepEqual(unixSocketLimits('freebsd'), { system: 'FreeBSD', path: 103, directory: 103 - PRIVATE_BIND_SUFFIX.length });
    assert.equal(unixSocketLimits('darwin').path, 103);
    assert.equal(unixSocketLimits('sunos').path, 103);
  });

  it('the path: at the limit fits, one byte more is too long; bytes are counted, not characters', () => {
    const at = (n: number) => `/${'s'.repeat(n - 1)}`;
    assert.equal(unixSocketExcess(at(107), 'linux', false), undefined);
    assert.deepEqual(unixSocketExcess(at(108), 'linux', false), { what: 'path', bytes: 108 });
    assert.deepEqual(unixSocketExcess(at(104), 'freebsd', false), { what: 'path', bytes: 104 });
    assert.deepEqual(unixSocketExcess(`/${'é'.repeat(60)}`, 'linux', false), { what: 'path', bytes: 121 });
  });

  it('binding (the agent): the directory must leave room for its private bind directory; connecting (the CLI) does not care', () => {
    const dirMax = unixSocketLimits('linux').directory;
    const inDir = (n: number) => `/${'d'.repeat(n - 1)}/q.sock`;
    assert.equal(unixSocketExcess(inDir(dirMax), 'linux', true), undefined);
    assert.deepEqual(unixSocketExcess(inDir(dirMax + 1), 'linux', true), { what: 'directory', bytes: dirMax + 1 });
    assert.equal(unixSocketExcess(inDir(dirMax + 1), 'linux', false), undefined);
  });
});
