import { strict as assert } from 'node:assert';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UNIX_SOCKET_PATH_MAX } from '../../common/socket-path.js';
import { loadConfig, type OsName } from '../../agent/config.js';
import { InvalidArgumentError } from '../../agent/errors.js';
import { healthCheck, unixHealthClient, waitServing } from '../../controller/transport/health.js';
import { AGENT_MAIN } from '../support/agent-process.js';

/** A path of exactly `bytes` bytes: `dir` padded with a directory of x's, then `/name`. */
function pathOf(dir: string, bytes: number, name: string): string {
  const pad = bytes - Buffer.byteLength(dir) - 2 - name.length;
  assert.ok(pad > 0, 'the test directory is short enough');
  return `${dir}/${'x'.repeat(pad)}/${name}`;
}

describe('agent config (qfleetd.conf and flags)', () => {
  let dir: string;
  let conf: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-config-'));
    conf = join(dir, 'qfleetd.conf');
    writeFileSync(conf, '');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const load = (flags: Record<string, string>, os: OsName = 'linux', text = '') => {
    writeFileSync(conf, text);
    return loadConfig({ os, configFile: conf, flags });
  };
  const refuses = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message));

  describe('paths: absolute, without whitespace or ..', () => {
    for (const key of ['root_dir', 'state_dir', 'log_dir', 'socket'] as const) {
      it(`${key} with a space is refused, from a flag or the file`, () => {
        refuses(() => load({ [key]: '/srv/my qfleet/x' }), new RegExp(`^${key} must be an absolute path without spaces or '\\.\\.', not "/srv/my qfleet/x"\\.$`));
        refuses(() => load({}, 'freebsd', `${key}="/srv/my qfleet/x"\n`), new RegExp(`^${key} must be an absolute path without spaces`));
      });
    }
    it('a tab or a newline counts as a space', () => {
      refuses(() => load({ root_dir: '/srv/a\tb' }), /^root_dir must be an absolute path without spaces/);
      refuses(() => load({ log_dir: '/srv/a\nb' }), /^log_dir must be an absolute path without spaces/);
    });
    it('relative paths and .. are refused', () => {
      refuses(() => load({ state_dir: 'state' }), /^state_dir must be an absolute path/);
      refuses(() => load({ state_dir: '/srv/../etc' }), /^state_dir must be an absolute path/);
    });
  });

  describe('socket: a unix socket path', () => {
    it('an empty --socket or socket="" says it is empty', () => {
      refuses(() => load({ socket: '' }), /^socket is empty: give an absolute path \(or leave the setting out for the default\)\.$/);
      refuses(() => load({}, 'linux', 'socket=""\n'), /^socket is empty/);
    });

    for (const [os, system] of [['linux', 'Linux'], ['freebsd', 'FreeBSD']] as const) {
      const max = UNIX_SOCKET_PATH_MAX[os];
      it(`${system}: at most ${max} bytes (sun_path ${max + 1} with its NUL); one more is refused with both numbers`, () => {
        const ok = pathOf('/s', max, 'qfleetd-agent-socket-name.sock');
        assert.equal(load({ socket: ok }, os).socket, ok);
        const long = pathOf('/s', max + 1, 'qfleetd-agent-socket-name.sock');
        refuses(() => load({ socket: long }, os), new RegExp(`^socket "${long}" is ${max + 1} bytes long; a unix socket path can have at most ${max} on ${system}: choose a shorter path`));
        refuses(() => load({}, os, `socket="${long}"\n`), /bytes long; a unix socket path can have at most/);
      });
    }

    it('counts bytes, not characters', () => {
      const max = UNIX_SOCKET_PATH_MAX.linux;
      const s = `/s/${'é'.repeat(40)}/qfleetd-agent-socket-name.sock`; // 3 + 80 + 31 bytes, 74 characters
      assert.ok(s.length <= max && Buffer.byteLength(s) > max);
      refuses(() => load({ socket: s }), /is 114 bytes long/);
    });

    it('a short name in a directory too long for the private bind beside it is refused, naming that path', () => {
      const max = UNIX_SOCKET_PATH_MAX.linux;
      const s = pathOf('/s', max - 10, 'q.sock');
      refuses(() => load({ socket: s }), /is in a directory too long for a unix socket: qfleetd binds it first in a private directory beside it \(.*\/\.qfleetd-bind-XXXXXX\/sock\), which can have at most 107 bytes on Linux, so the directory can have at most 81/);
    });
  });
  describe('default_isolation: what create uses when asked for no mode', () => {
    it('empty by default (the driver decides: namespaces on Linux, jail on FreeBSD); a mode from the file is kept', () => {
      assert.equal(load({}).defaultIsolation, '');
      assert.equal(load({}, 'linux', 'default_isolation = chroot\n').defaultIsolation, 'chroot');
    });
    it('anything else is refused, naming the modes', () => {
      refuses(() => load({}, 'linux', 'default_isolation = docker\n'), /default_isolation must be one of chroot, namespaces, jail/);
    });
  });

  describe('freebsd_manifest_sha256: MANIFEST digests pinned by URL', () => {
    const url = 'http://mirror.example.org/pub/FreeBSD/releases/amd64/amd64/14.1-RELEASE/MANIFEST';
    const url2 = 'http://mirror.example.org/pub/FreeBSD/releases/arm64/aarch64/14.1-RELEASE/MANIFEST';
    const hex = 'ab'.repeat(32);
    it('none by default', () => {
      assert.deepEqual(load({}, 'freebsd').freebsdManifestSha256, {});
    });
    it('URL=SHA256 pairs separated by whitespace; the digest kept in lower case', () => {
      const cfg = load({}, 'freebsd', `freebsd_manifest_sha256="${url}=${hex.toUpperCase()}  ${url2}=${'0'.repeat(64)}"\n`);
      assert.deepEqual(cfg.freebsdManifestSha256, { [url]: hex, [url2]: '0'.repeat(64) });
    });
    it('a digest that is not 64 hex digits is refused, naming the URL and the digest', () => {
      refuses(() => load({}, 'freebsd', `freebsd_manifest_sha256="${url}=${hex.slice(1)}"\n`),
        new RegExp(`^freebsd_manifest_sha256: the digest for ${url} must be a sha256 of 64 hex digits, not "${hex.slice(1)}"\\.$`));
      refuses(() => load({}, 'freebsd', `freebsd_manifest_sha256="${url}=${'g'.repeat(64)}"\n`), /must be a sha256 of 64 hex digits/);
    });
    it('a pin without a URL, or with one not ending in /MANIFEST, is refused with the expected form', () => {
      for (const bad of [hex, `${url.replace(/\/MANIFEST$/, '')}=${hex}`, `ftp://m/MANIFEST=${hex}`]) {
        refuses(() => load({}, 'freebsd', `freebsd_manifest_sha256="${bad}"\n`), /^freebsd_manifest_sha256: ".*" is not URL=SHA256 with an http\(s\) URL ending in \/MANIFEST/);
      }
    });
    it('the same URL twice is refused', () => {
      refuses(() => load({}, 'freebsd', `freebsd_manifest_sha256="${url}=${hex} ${url}=${hex}"\n`), /is pinned twice/);
    });
  });
});

describe('qfleetd refuses a bad socket before it makes anything', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qf-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function qfleetd(socket: string | undefined, conf = '') {
    writeFileSync(join(dir, 'qfleetd.conf'), conf);
    return execa('node', [AGENT_MAIN, '--config', join(dir, 'qfleetd.conf'), '--root-dir', join(dir, 'a/root'), '--state-dir', join(dir, 'a/state'),
      '--log-dir', join(dir, 'a/log'), ...(socket === undefined ? [] : ['--socket', socket])], { reject: false, timeout: 30_000 });
  }

  it('--socket too long: exit 2, the reason, and no directory, file or pidfile made', async () => {
    const long = pathOf(join(dir, 'a'), 200, 'qfleetd.sock');
    const r = await qfleetd(long);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /^qfleetd: socket ".*" is 200 bytes long; a unix socket path can have at most 107 on Linux/);
    assert.deepEqual(readdirSync(dir), ['qfleetd.conf']);
  });

  it('an empty --socket, or socket="" in the file: exit 2, nothing made', async () => {
    for (const [flag, conf] of [['', ''], [undefined, 'socket=""\n']] as const) {
      const r = await qfleetd(flag, conf);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, /^qfleetd: socket is empty/);
      assert.deepEqual(readdirSync(dir), ['qfleetd.conf']);
    }
  });

  it('an unknown flag or a flag without its value is a usage error too: exit 2, as in qfleet', async () => {
    for (const args of [['--bogus'], ['--stop-grace-seconds']]) {
      const r = await execa('node', [AGENT_MAIN, ...args], { reject: false, timeout: 30_000 });
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: (unknown option|option .* argument missing)/);
    }
    assert.equal((await execa('node', [AGENT_MAIN, '--version'], { reject: false, timeout: 30_000 })).exitCode, 0);
  });

  it('a start that fails after claiming the pidfile (a file where the socket goes) leaves no pidfile', async () => {
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run/qfleetd.sock'), 'not a socket');
    const r = await qfleetd(join(dir, 'run/qfleetd.sock'));
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, /exists and is not a socket; refusing to replace it/);
    assert.equal(existsSync(join(dir, 'a/state/qfleetd.pid')), false);
  });

  it('a socket of the longest allowed length is served at exactly that path', async () => {
    const max = UNIX_SOCKET_PATH_MAX.linux;
    const socket = pathOf(join(dir, 'a'), max, 'qfleetd-agent-socket-name.sock');
    const child = execa('node', [AGENT_MAIN, '--config', join(dir, 'none.conf'), '--root-dir', join(dir, 'a/root'), '--state-dir', join(dir, 'a/state'),
      '--log-dir', join(dir, 'a/log'), '--socket', socket], { reject: false, stdin: 'ignore' });
    writeFileSync(join(dir, 'none.conf'), '');
    const c = unixHealthClient(socket);
    try {
      await waitServing(c, 20_000, 100);
      assert.equal(await healthCheck(c), 'SERVING');
    } finally {
      c.close();
      child.kill('SIGTERM');
      await Promise.race([child, new Promise((r) => setTimeout(r, 8000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
