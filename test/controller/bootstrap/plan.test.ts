import { shQuote } from '../../../common/shell-quote.js';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootstrapHosts, type BootstrapArtifacts, type BootstrapOptions } from '../../../controller/bootstrap/bootstrap.js';
import {
  checkAgentSocket, commandLine, debianMajor, enableService, hostPaths, restartService, serviceStatus, parseAptCandidate, parseNode, parseUname, renderAgentConfig, renderAgentUnit, renderContainersUnit,
} from '../../../controller/bootstrap/plan.js';
import { FakeSession, type Reply } from './fake-session.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import { initPki } from '../../../controller/pki/index.js';
import { makeAgentCsr } from '../../../agent/tls/csr.js';

const ARTIFACTS: BootstrapArtifacts = {
  bundle: Buffer.from('// agent bundle'), cli: Buffer.from('// cli bundle'), supervisor: '#!/bin/sh\n',
  rcAgent: '#!/bin/sh\n# rc qfleetd\n', rcContainers: '#!/bin/sh\n# rc qfleet\n',
  newsyslog: '# rotation\n/var/log/qfleetd.log    root:wheel      600  7     10240 *     JC    /var/run/qfleetd.pid\n',
  unitAgent: '[Service]\nExecStart=/usr/bin/node /usr/local/lib/qfleet/qfleetd.js --config /etc/qfleet/qfleetd.conf\n',
  unitContainers: "[Service]\nExecStartPre=/bin/sh -c 'test -S /run/qfleetd.sock'\nExecStart=x\nExecStop=y\n",
};

/** The probe of what is installed (node -e as root), answered: nothing installed. */
const PROBE = / -e 'const fs=/;
const NOTHING_INSTALLED: [RegExp, Reply] = [PROBE, { stdout: '{"files":{},"cert":null,"ca":null,"keyMatches":false}\n' }];
/** The lines, with the probe's long script replaced by PROBE. */
const shown = (lines: readonly string[]) => lines.map((l) => (PROBE.test(l) ? `${l.slice(0, l.indexOf(' -e '))} -e PROBE` : l));

function host(name: string, address: string, vars: Record<string, unknown> = {}, user = 'admin'): HostTarget {
  return { name, address, sshPort: 22, sshUser: user, agentPort: 7443, vars };
}

describe('bootstrap plan (command lines as data)', () => {
  let dir: string;
  let csrPem: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-plan-'));
    await initPki(join(dir, 'pki'));
    csrPem = (await makeAgentCsr({ dir: join(dir, 'agent-tls'), name: 'web1', ips: ['192.0.2.10'] })).csrPem;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function options(session: FakeSession | ((t: string) => FakeSession), extra: Partial<BootstrapOptions> = {}): BootstrapOptions {
    return {
      connect: async (t) => (typeof session === 'function' ? session(t.name) : session),
      artifacts: ARTIFACTS, pkiDir: join(dir, 'pki'), defaultUser: 'root', waitHealthy: async () => undefined, ...extra,
    };
  }

  it('quotes words for the remote shell', () => {
    assert.equal(shQuote('/usr/local/bin/node'), '/usr/local/bin/node');
    assert.equal(shQuote('a b'), "'a b'");
    assert.equal(shQuote("it's"), "'it'\\''s'");
    assert.equal(shQuote(''), "''");
    assert.equal(shQuote('$(reboot)'), "'$(reboot)'");
    assert.equal(commandLine({ argv: ['id', '-u'], root: true }, 'sudo'), 'sudo -n -- id -u');
    assert.equal(commandLine({ argv: ['id', '-u'], root: true }, 'doas'), 'doas -n id -u');
    assert.equal(commandLine({ argv: ['id', '-u'], root: true }, 'none'), 'id -u');
    assert.equal(commandLine({ argv: ['id', '-u'], root: false }, 'sudo'), 'id -u');
  });

  it('parses uname, node -v, apt-cache policy and Debian versions', () => {
    assert.deepEqual(parseUname('FreeBSD 14.1-RELEASE amd64\n'), { os: 'freebsd', kernel: 'FreeBSD', release: '14.1-RELEASE', machine: 'amd64' });
    assert.equal(parseUname('Linux 6.1.0-18-amd64 x86_64').os, 'linux');
    assert.throws(() => parseUname('Darwin 23.0 arm64'), /unsupported OS Darwin/);
    assert.deepEqual(parseNode('/usr/local/bin/node\nv22.11.0\n'), { path: '/usr/local/bin/node', version: 'v22.11.0', major: 22 });
    assert.equal(parseNode(''), undefined);
    assert.equal(parseAptCandidate('nodejs:\n  Installed: (none)\n  Candidate: 18.19.0+dfsg-6~deb12u2\n'), '18.19.0+dfsg-6~deb12u2');
    assert.equal(parseAptCandidate('nodejs:\n  Installed: (none)\n  Candidate: (none)\n'), undefined);
    assert.equal(debianMajor('18.19.0+dfsg-6~deb12u2'), 18);
    assert.equal(debianMajor('1:22.3.0-1'), 22);
  });

  it('paths: OS defaults, qfleet_* host vars over them, unsafe values refused', () => {
    const fb = hostPaths('freebsd', {});
    assert.equal(fb.bundle, '/usr/local/lib/qfleet/qfleetd.js');
    assert.equal(fb.config, '/usr/local/etc/qfleetd.conf');
    assert.equal(fb.socket, '/var/run/qfleetd.sock');
    assert.equal(fb.stateDir, '/var/db/qfleet');
    const lx = hostPaths('linux', { qfleet_install_dir: '/opt/qf/', qfleet_agent_socket_path: '/srv/a/qfleetd.sock' });
    assert.equal(lx.bundle, '/opt/qf/qfleetd.js');
    assert.equal(lx.config, '/etc/qfleet/qfleetd.conf');
    assert.equal(lx.supervisorPidfile, '/srv/a/qfleetd-supervise.pid');
    assert.throws(() => hostPaths('linux', { qfleet_root_dir: 'relative' }), /absolute path/);
    assert.throws(() => hostPaths('linux', { qfleet_root_dir: '/a/../etc' }), /absolute path/);
    assert.throws(() => hostPaths('linux', { qfleet_config: '/x/"y' }), /absolute path/);
    assert.throws(() => hostPaths('freebsd', { qfleet_root_dir: '/usr/my jails' }), /must be an absolute path without spaces/);
    // A socket the agent would refuse is refused before anything is installed: 107 bytes on Linux, 103 on FreeBSD, the bind directory beside it included.
    const sock = (n: number) => `/s/${'x'.repeat(n - 3 - 31)}/qfleetd-agent-socket-name.sock`;
    assert.doesNotThrow(() => checkAgentSocket('linux', sock(107)));
    assert.throws(() => checkAgentSocket('linux', sock(108)), /^Error: the agent's socket \/s\/x+\/qfleetd-agent-socket-name\.sock is too long for a unix socket on Linux: at most 107 bytes, in a directory of at most 81$/);
    assert.doesNotThrow(() => checkAgentSocket('freebsd', sock(103)));
    assert.throws(() => checkAgentSocket('freebsd', sock(104)), /on FreeBSD: at most 103 bytes/);
    assert.throws(() => checkAgentSocket('linux', `/${'d'.repeat(81)}/q.sock`), /too long for a unix socket on Linux/);
    assert.equal(renderAgentConfig(lx, 7443), [
      '# Written by qfleet bootstrap; re-running bootstrap rewrites it.',
      'root_dir="/var/lib/qfleet/default"', 'state_dir="/var/lib/qfleet/state"', 'log_dir="/var/log/qfleet"', 'socket="/srv/a/qfleetd.sock"',
      'listen="0.0.0.0:7443"', 'tls_cert="/etc/qfleet/tls/agent.crt"', 'tls_key="/etc/qfleet/tls/agent.key"', 'tls_ca="/etc/qfleet/tls/ca.crt"', '',
    ].join('\n'));
    assert.match(renderAgentUnit(ARTIFACTS.unitAgent, '/usr/local/bin/node', lx), /^ExecStart=\/usr\/local\/bin\/node \/opt\/qf\/qfleetd\.js --config \/etc\/qfleet\/qfleetd\.conf$/m);
    const cu = renderContainersUnit(ARTIFACTS.unitContainers, '/usr/bin/node', lx);
    assert.match(cu, /^ExecStart=\/usr\/bin\/node \/opt\/qf\/qfleet\.js --socket \/srv\/a\/qfleetd\.sock --timeout 600 start -A$/m);
    assert.match(cu, /^ExecStop=\/usr\/bin\/node \/opt\/qf\/qfleet\.js --socket \/srv\/a\/qfleetd\.sock --timeout 600 stop -A$/m);
    assert.match(cu, /test -S \/srv\/a\/qfleetd\.sock/);
  });

  it('FreeBSD as a sudo user without node: the exact command lines', async () => {
    let nodeInstalled = false;
    const s = new FakeSession([
      [/^uname -s -r -m$/, { stdout: 'FreeBSD 14.1-RELEASE amd64\n' }],
      [/^id -u$/, { stdout: '1001\n' }],
      [/^sudo -n true$/, {}],
      [/^sh -c /, () => (nodeInstalled ? { stdout: '/usr/local/bin/node\nv22.11.0\n' } : { code: 1 })],
      [/pkg install/, () => ((nodeInstalled = true), {})],
      NOTHING_INSTALLED,
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.AbC123\n' }],
      [/tls-request/, { stdout: csrPem }],
      [/./, {}],
    ]);
    const [o] = await bootstrapHosts([host('web1', '192.0.2.10')], options(s));
    assert.equal(o!.status, 'ok', o!.error);
    const r = o!.result;
    assert.equal(r!.service, 'rc.d');
    const T = '/tmp/qfleet-bootstrap.AbC123';
    assert.deepEqual(shown(s.lines), [
      'uname -s -r -m',
      'id -u',
      'sudo -n true',
      `sh -c 'PATH="$PATH:/usr/local/bin:/usr/bin:/bin"; n=$(command -v node) && echo "$n" && "$n" -v'`,
      'sudo -n -- env ASSUME_ALWAYS_YES=yes pkg install -y node22',
      `sh -c 'PATH="$PATH:/usr/local/bin:/usr/bin:/bin"; n=$(command -v node) && echo "$n" && "$n" -v'`,
      'sudo -n -- /usr/local/bin/node -e PROBE',
      'mktemp -d /tmp/qfleet-bootstrap.XXXXXX',
      'sudo -n -- install -d -m 0755 /usr/local/lib/qfleet',
      'sudo -n -- install -d -m 0755 /usr/local/etc',
      'sudo -n -- install -d -m 0700 /usr/local/etc/qfleet/tls',
      `sudo -n -- install -m 0755 ${T}/qfleetd.js /usr/local/lib/qfleet/qfleetd.js.new`,
      'sudo -n -- mv -f /usr/local/lib/qfleet/qfleetd.js.new /usr/local/lib/qfleet/qfleetd.js',
      `sudo -n -- install -m 0755 ${T}/qfleet.js /usr/local/lib/qfleet/qfleet.js.new`,
      'sudo -n -- mv -f /usr/local/lib/qfleet/qfleet.js.new /usr/local/lib/qfleet/qfleet.js',
      `sudo -n -- install -m 0644 ${T}/qfleetd.conf /usr/local/etc/qfleetd.conf.new`,
      'sudo -n -- mv -f /usr/local/etc/qfleetd.conf.new /usr/local/etc/qfleetd.conf',
      `sudo -n -- install -m 0555 ${T}/rc.qfleetd /usr/local/etc/rc.d/qfleetd.new`,
      'sudo -n -- mv -f /usr/local/etc/rc.d/qfleetd.new /usr/local/etc/rc.d/qfleetd',
      `sudo -n -- install -m 0555 ${T}/rc.qfleet /usr/local/etc/rc.d/qfleet.new`,
      'sudo -n -- mv -f /usr/local/etc/rc.d/qfleet.new /usr/local/etc/rc.d/qfleet',
      'sudo -n -- install -d -m 0755 /usr/local/etc/newsyslog.conf.d',
      `sudo -n -- install -m 0644 ${T}/newsyslog.qfleetd.conf /usr/local/etc/newsyslog.conf.d/qfleetd.conf.new`,
      'sudo -n -- mv -f /usr/local/etc/newsyslog.conf.d/qfleetd.conf.new /usr/local/etc/newsyslog.conf.d/qfleetd.conf',
      `sudo -n -- install -m 0644 ${T}/qfleetd.start /usr/local/lib/qfleet/qfleetd.start.new`,
      'sudo -n -- mv -f /usr/local/lib/qfleet/qfleetd.start.new /usr/local/lib/qfleet/qfleetd.start',
      'sudo -n -- /usr/local/bin/node /usr/local/lib/qfleet/qfleetd.js tls-request --dir /usr/local/etc/qfleet/tls --name web1 --ip 192.0.2.10',
      `sudo -n -- install -m 0644 ${T}/agent.crt /usr/local/etc/qfleet/tls/agent.crt.new`,
      'sudo -n -- mv -f /usr/local/etc/qfleet/tls/agent.crt.new /usr/local/etc/qfleet/tls/agent.crt',
      `sudo -n -- install -m 0644 ${T}/ca.crt /usr/local/etc/qfleet/tls/ca.crt.new`,
      'sudo -n -- mv -f /usr/local/etc/qfleet/tls/ca.crt.new /usr/local/etc/qfleet/tls/ca.crt',
      `rm -rf -- ${T}`,
      'sudo -n -- sysrc qfleetd_enable=YES qfleetd_config=/usr/local/etc/qfleetd.conf qfleetd_script=/usr/local/lib/qfleet/qfleetd.js qfleetd_node=/usr/local/bin/node qfleetd_log=/var/log/qfleetd.log',
      'sudo -n -- sysrc qfleet_enable=YES qfleet_cli=/usr/local/lib/qfleet/qfleet.js qfleet_node=/usr/local/bin/node qfleet_socket=/var/run/qfleetd.sock',
      'sudo -n -- service qfleetd restart',
    ]);
    assert.deepEqual(s.uploads.map((u) => [u.path.slice(T.length + 1), u.mode.toString(8)]), [
      ['qfleetd.js', '644'], ['qfleet.js', '644'], ['qfleetd.conf', '644'], ['rc.qfleetd', '644'], ['rc.qfleet', '644'], ['newsyslog.qfleetd.conf', '644'], ['qfleetd.start', '644'],
      ['agent.crt', '644'], ['ca.crt', '644'],
    ]);
    assert.deepEqual(r!.done, { updated: [
      '/usr/local/lib/qfleet/qfleetd.js', '/usr/local/lib/qfleet/qfleet.js', '/usr/local/etc/qfleetd.conf', '/usr/local/etc/rc.d/qfleetd', '/usr/local/etc/rc.d/qfleet',
      '/usr/local/etc/newsyslog.conf.d/qfleetd.conf', '/usr/local/lib/qfleet/qfleetd.start',
    ], certificateReissued: 'none installed', agent: 'restarted' });
    // How the agent is started is recorded beside it, so that a change there restarts it too.
    assert.equal(s.uploads.find((u) => u.path.endsWith('qfleetd.start'))!.data, [
      "# Written by qfleet bootstrap: how this host's agent is enabled and started. Bootstrap restarts the agent when this changes.",
      'sysrc qfleetd_enable=YES qfleetd_config=/usr/local/etc/qfleetd.conf qfleetd_script=/usr/local/lib/qfleet/qfleetd.js qfleetd_node=/usr/local/bin/node qfleetd_log=/var/log/qfleetd.log',
      'sysrc qfleet_enable=YES qfleet_cli=/usr/local/lib/qfleet/qfleet.js qfleet_node=/usr/local/bin/node qfleet_socket=/var/run/qfleetd.sock',
      'service qfleetd restart',
      '',
    ].join('\n'));
    assert.match(s.uploads.find((u) => u.path.endsWith('agent.crt'))!.data, /BEGIN CERTIFICATE/);
  });

  it('Linux with systemd as root, node present: units rendered with the host paths', async () => {
    const s = new FakeSession([
      [/^uname/, { stdout: 'Linux 6.1.0-18-amd64 x86_64\n' }],
      [/^id -u$/, { stdout: '0\n' }],
      [/^sh -c /, { stdout: '/usr/bin/node\nv20.19.2\n' }],
      [/^test -d \/run\/systemd\/system$/, {}],
      NOTHING_INSTALLED,
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.x1\n' }],
      [/tls-request/, { stdout: csrPem }],
      [/./, {}],
    ]);
    const [o] = await bootstrapHosts([host('web1', 'web1.example', {}, 'root')], options(s));
    assert.equal(o!.status, 'ok', o!.error);
    const r = o!.result;
    assert.equal(r!.service, 'systemd');
    const tail = s.lines.slice(s.lines.indexOf('/usr/bin/node /usr/local/lib/qfleet/qfleetd.js tls-request --dir /etc/qfleet/tls --name web1'));
    assert.deepEqual(tail, [
      '/usr/bin/node /usr/local/lib/qfleet/qfleetd.js tls-request --dir /etc/qfleet/tls --name web1',
      'install -m 0644 /tmp/qfleet-bootstrap.x1/agent.crt /etc/qfleet/tls/agent.crt.new',
      'mv -f /etc/qfleet/tls/agent.crt.new /etc/qfleet/tls/agent.crt',
      'install -m 0644 /tmp/qfleet-bootstrap.x1/ca.crt /etc/qfleet/tls/ca.crt.new',
      'mv -f /etc/qfleet/tls/ca.crt.new /etc/qfleet/tls/ca.crt',
      'rm -rf -- /tmp/qfleet-bootstrap.x1',
      'systemctl daemon-reload',
      'systemctl enable qfleetd.service qfleet-containers.service',
      'systemctl restart qfleetd.service',
    ]);
    assert.ok(s.lines.includes('install -m 0644 /tmp/qfleet-bootstrap.x1/qfleetd.service /etc/systemd/system/qfleetd.service.new'));
    assert.ok(s.lines.includes('install -m 0644 /tmp/qfleet-bootstrap.x1/qfleet-containers.service /etc/systemd/system/qfleet-containers.service.new'));
  });

  it('Linux without systemd via doas: the supervised start', async () => {
    const s = new FakeSession([
      [/^uname/, { stdout: 'Linux 6.1.0 x86_64\n' }],
      [/^id -u$/, { stdout: '1000\n' }],
      [/^sudo -n true$/, { code: 1, stderr: 'sudo: a password is required' }],
      [/^doas -n true$/, {}],
      [/^sh -c /, { stdout: '/usr/local/bin/node\nv22.1.0\n' }],
      [/^test -d/, { code: 1 }],
      NOTHING_INSTALLED,
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.y2\n' }],
      [/tls-request/, { stdout: csrPem }],
      [/./, {}],
    ]);
    const [o] = await bootstrapHosts([host('db1', '192.0.2.20', { qfleet_install_dir: '/opt/qfleet' })], options(s));
    assert.equal(o!.status, 'ok', o!.error);
    const r = o!.result;
    assert.equal(r!.service, 'supervised');
    assert.ok(s.lines.includes('doas -n install -m 0755 /tmp/qfleet-bootstrap.y2/qfleetd-supervise /opt/qfleet/qfleetd-supervise.new'));
    assert.equal(s.lines.at(-1), 'doas -n /opt/qfleet/qfleetd-supervise restart /run/qfleetd-supervise.pid /var/log/qfleetd.log /usr/local/bin/node /opt/qfleet/qfleetd.js /etc/qfleet/qfleetd.conf');
  });

  it('Debian whose apt offers only an old nodejs: a clear error naming what to do; the other hosts go on', async () => {
    const old = new FakeSession([
      [/^uname/, { stdout: 'Linux 6.1.0 x86_64\n' }],
      [/^id -u$/, { stdout: '0\n' }],
      [/^sh -c /, { code: 1 }],
      [/^apt-cache policy nodejs$/, { stdout: 'nodejs:\n  Installed: (none)\n  Candidate: 18.19.0+dfsg-6~deb12u2\n' }],
    ]);
    const good = new FakeSession([
      [/^uname/, { stdout: 'FreeBSD 14.1-RELEASE amd64\n' }],
      [/^id -u$/, { stdout: '0\n' }],
      [/^sh -c /, { stdout: '/usr/local/bin/node\nv22.11.0\n' }],
      NOTHING_INSTALLED,
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.z3\n' }],
      [/tls-request/, { stdout: csrPem }],
      [/./, {}],
    ]);
    const rs = await bootstrapHosts([host('old', '192.0.2.30'), host('new', '192.0.2.31'), host('down', '192.0.2.32')],
      options((n) => {
        // As ssh2 reports a refused connection.
        if (n === 'down') throw Object.assign(new Error('connect ECONNREFUSED 192.0.2.32:22'), { code: 'ECONNREFUSED', level: 'client-socket' });
        return n === 'old' ? old : good;
      }));
    assert.deepEqual(rs.map((o) => [o.host.name, o.status]), [['old', 'failed'], ['new', 'ok'], ['down', 'unreachable']]);
    assert.match(rs[0]!.error!, /Node\.js 20 or newer is needed; the host has no node and apt offers nodejs 18\.19\.0\+dfsg-6~deb12u2, too old: add a newer Node\.js/);
    assert.match(rs[2]!.error!, /ECONNREFUSED/);
  });

  it('Debian without tini or a static busybox: installed with apt (namespaces, the default isolation, needs them); where apt has none, said and bootstrapped anyway', async () => {
    const isolation = /^sh -c 'for d in/;
    const script = (aptHasTini: boolean) => new FakeSession([
      [/^uname/, { stdout: 'Linux 6.1.0 x86_64\n' }],
      [/^id -u$/, { stdout: '0\n' }],
      [isolation, { code: 1 }],
      [/^sh -c /, { stdout: '/usr/bin/node\nv22.11.0\n' }],
      [/^apt-cache policy tini$/, { stdout: aptHasTini ? 'tini:\n  Installed: (none)\n  Candidate: 0.19.0-1+b3\n' : 'N: Unable to locate package tini\n' }],
      [/^test -d/, { code: 1 }],
      NOTHING_INSTALLED,
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.t1\n' }],
      [/tls-request/, { stdout: csrPem }],
      [/./, {}],
    ]);
    const withApt = script(true);
    const [a] = await bootstrapHosts([host('deb', '192.0.2.50')], options(withApt));
    assert.equal(a!.status, 'ok', a!.error);
    assert.ok(withApt.lines.includes('env DEBIAN_FRONTEND=noninteractive apt-get install -y tini busybox-static'), withApt.lines.join('\n'));
    assert.ok(a!.result!.steps.includes('installed tini and busybox-static (namespaces containers)'));
    const without = script(false);
    const [b] = await bootstrapHosts([host('other', '192.0.2.51')], options(without));
    assert.equal(b!.status, 'ok', b!.error);
    assert.ok(!without.lines.some((l) => l.includes('apt-get install')));
    assert.ok(b!.result!.steps.some((s) => /^isolation tools missing: install tini .* this host offers chroot only$/.test(s)));
  });

  it('a failing remote command names the step, the command line and its stderr; the staging dir is removed', async () => {
    const s = new FakeSession([
      [/^uname/, { stdout: 'Linux 6.1.0 x86_64\n' }],
      [/^id -u$/, { stdout: '0\n' }],
      [/^sh -c /, { stdout: '/usr/bin/node\nv20.19.2\n' }],
      [/^test -d/, { code: 1 }],
      NOTHING_INSTALLED,
      [/^mktemp /, { stdout: '/tmp/qfleet-bootstrap.q9\n' }],
      [/^install -d -m 0700/, { code: 1, stderr: 'install: cannot create directory: Read-only file system' }],
      [/./, {}],
    ]);
    const [o] = await bootstrapHosts([host('ro', '192.0.2.40')], options(s));
    assert.equal(o!.status, 'failed');
    assert.equal(o!.error, 'make directories: `install -d -m 0700 /etc/qfleet/tls` exited 1: install: cannot create directory: Read-only file system');
    assert.equal(s.lines.at(-1), 'rm -rf -- /tmp/qfleet-bootstrap.q9');
  });

  it('whether the agent runs, and how it is restarted, per service kind (a re-run that changed nothing only asks)', () => {
    const fb = hostPaths('freebsd', {});
    const lx = hostPaths('linux', {});
    const line = (c: { argv: readonly string[]; root: boolean }) => commandLine(c, 'sudo');
    assert.equal(line(serviceStatus('rc.d', fb, '/usr/local/bin/node')), 'sudo -n -- service qfleetd status');
    assert.equal(line(serviceStatus('systemd', lx, '/usr/bin/node')), 'sudo -n -- systemctl is-active --quiet qfleetd.service');
    assert.equal(line(serviceStatus('supervised', lx, '/usr/bin/node')),
      'sudo -n -- /usr/local/lib/qfleet/qfleetd-supervise status /run/qfleetd-supervise.pid /var/log/qfleetd.log /usr/bin/node /usr/local/lib/qfleet/qfleetd.js /etc/qfleet/qfleetd.conf');
    assert.deepEqual(restartService('rc.d', fb, '/usr/local/bin/node').map(line), ['sudo -n -- service qfleetd restart']);
    assert.deepEqual(restartService('systemd', lx, '/usr/bin/node').map(line), ['sudo -n -- systemctl restart qfleetd.service']);
    assert.deepEqual(enableService('supervised', lx, '/usr/bin/node'), [], 'nothing starts a supervised agent at boot');
  });

  it('refuses to start without a PKI', async () => {
    await assert.rejects(bootstrapHosts([host('a', '192.0.2.1')], options(new FakeSession([]), { pkiDir: join(dir, 'nope') })), /qfleet pki init/);
  });
});
