import { strict as assert } from 'node:assert';
import { Command } from 'commander';
import { UsageError } from '../../controller/context.js';
import { addConfigOptions, OPTION_LIMITS, parseBytes, parseConfigOptions, sizeWord, type ConfigOptionValues } from '../../controller/container-options.js';

/** The options as `qfleet config NAME ...` parses them (commander, then parseConfigOptions). */
function parse(...argv: string[]) {
  const cmd = addConfigOptions(new Command('config').exitOverride().argument('<name>').argument('[services...]'), true).action(() => undefined);
  cmd.parse(['web1', ...argv], { from: 'user' });
  return parseConfigOptions(cmd.opts<ConfigOptionValues>());
}

function refused(argv: string[], message: RegExp) {
  assert.throws(() => parse(...argv), (e: unknown) => e instanceof UsageError && message.test(e.message), `${argv.join(' ')} should be refused with ${message}`);
}

describe('container config options (create, config)', () => {
  it('no option: no config and no mask, so the request is what it was before isolation', () => {
    assert.equal(parse(), undefined);
    assert.equal(parse('httpd', 'sshd'), undefined);
  });

  it('the mask names exactly the fields given, each once', () => {
    const c = parse('--memory', '512M', '--isolation', 'namespaces', '--user', 'www');
    assert.deepEqual(c?.mask, ['isolation', 'user', 'limits.memory_bytes']);
    assert.deepEqual(c?.config, { isolation: 'ISOLATION_NAMESPACES', user: 'www', limits: { memoryBytes: 512 * 2 ** 20 } });
    assert.deepEqual(c?.flags, ['--isolation', '--user', '--memory']);
    assert.deepEqual(parse('--pids', '256')?.mask, ['limits.pids'], 'one limit does not touch the others');
  });

  it('sizes take binary K, M, G, T; 0 and none remove a limit', () => {
    assert.equal(parseBytes('512M', '--memory', true), 536_870_912);
    assert.equal(parseBytes('1.5G', '--memory', true), 1_610_612_736);
    assert.equal(parseBytes('2t', '--memory', true), 2 * 2 ** 40);
    assert.equal(parseBytes('4096', '--memory', true), 4096);
    assert.deepEqual(parse('--memory', 'none')?.config.limits, { memoryBytes: 0 });
    assert.deepEqual(parse('--memory', '0')?.phrases, ['memory limit removed']);
    assert.deepEqual(parse('--cpus', '1.5', '--pids', 'none')?.config.limits, { cpus: 1.5, pids: 0 });
    assert.equal(sizeWord(536_870_912), '512M');
    assert.equal(sizeWord(1000), '1000');
  });

  it('bad values and values past their bound are usage errors naming the option', () => {
    refused(['--isolation', 'vm'], /^--isolation must be jail, namespaces or chroot, not "vm"\.$/);
    refused(['--network', 'bridge'], /^--network must be host or none/);
    refused(['--memory', '512MB'], /^--memory must be a size in bytes/);
    refused(['--memory', '-1'], /^--memory must be/);
    refused(['--memory', '2048T'], /at most 1024T/);
    refused(['--cpus', '1,5'], /^--cpus must be a number of CPUs from 0 to 1024/);
    refused(['--cpus', '1025'], /^--cpus must be/);
    refused(['--pids', '2.5'], /^--pids must be a whole number/);
    refused(['--pids', '4194305'], /^--pids must be/);
    refused(['--securelevel', '4'], /^--securelevel must be -1 \(the host's\) or 0 to 3/);
    refused(['--uid-map', '0:100000'], /^--uid-map must be INSIDE:OUTSIDE:COUNT/);
    refused(['--gid-map', '0:100000:0'], /^--gid-map must be INSIDE:OUTSIDE:COUNT/);
    refused(['--uid-map', '0:4294967295:1'], /^--uid-map must be/);
    refused(['--mount', '/srv'], /^--mount must be SOURCE:TARGET/);
    refused(['--mount', '/srv:/www:rwx'], /^--mount must be SOURCE:TARGET/);
    refused(['--mount', 'srv:/www'], /^--mount: the source must be an absolute path/);
    refused(['--tmpfs', '/tmp:lots'], /^--tmpfs size must be a size/);
    refused(['--tmpfs', 'tmp'], /^--tmpfs: the target must be an absolute path/);
    refused(['--env', '1X=y'], /^--env must be NAME=value/);
    refused(['--env', 'X'], /^--env must be NAME=value/);
    refused(['--env', 'X=1', '--env', 'X=2'], /^--env X is given twice\.$/);
    refused(['--env', `X=${'v'.repeat(OPTION_LIMITS.envValue + 1)}`], /^--env X: the value is longer than 4096/);
    refused(['--hostname', 'web_1'], /^--hostname must be a host name/);
    refused(['--user', 'a b'], /^--user must be a user or group name/);
    refused(['--workdir', 'srv'], /^--workdir: the directory must be an absolute path/);
    refused(['--hostname', 'a'.repeat(OPTION_LIMITS.valueChars + 1)], /^--hostname: the value is longer than/);
  });

  it('counts are bounded: 32 mounts, 64 variables, 5 map lines', () => {
    refused(Array.from({ length: 33 }, (_, i) => ['--tmpfs', `/t${i}`]).flat(), /at most 32 mounts/);
    refused(Array.from({ length: 65 }, (_, i) => ['--env', `V${i}=1`]).flat(), /at most 64 variables/);
    refused(Array.from({ length: 6 }, (_, i) => ['--uid-map', `${i * 10}:${100000 + i * 10}:10`]).flat(), /--uid-map: at most 5 lines/);
  });

  it('a bind is read-only unless :rw; binds and tmpfs keep their command-line order (a tmpfs under a bind, or over)', () => {
    const c = parse('--tmpfs', '/data:64M', '--mount', '/srv/www:/data/www', '--mount', '/srv/log:/var/log/web:rw', '--tmpfs', '/run');
    assert.deepEqual(c?.config.mounts, [
      { kind: 'KIND_TMPFS', source: '', target: '/data', readOnly: false, sizeBytes: 64 * 2 ** 20 },
      { kind: 'KIND_BIND', source: '/srv/www', target: '/data/www', readOnly: true, sizeBytes: 0 },
      { kind: 'KIND_BIND', source: '/srv/log', target: '/var/log/web', readOnly: false, sizeBytes: 0 },
      { kind: 'KIND_TMPFS', source: '', target: '/run', readOnly: false, sizeBytes: 0 },
    ]);
    assert.deepEqual(c?.mask, ['mounts']);
    assert.deepEqual(c?.phrases, ['mounts set to tmpfs:/data:64M /srv/www:/data/www:ro /srv/log:/var/log/web:rw tmpfs:/run']);
  });

  it('lists are replaced whole; --no-mounts, --no-env, --no-uid-map clear them; a clear with values is refused', () => {
    assert.deepEqual(parse('--no-mounts')?.config, { mounts: [] });
    assert.deepEqual(parse('--no-env', '--no-uid-map', '--no-gid-map')?.mask, ['uid_map', 'gid_map', 'env']);
    assert.deepEqual(parse('--env', 'A=1', '--env', 'EMPTY=')?.config.env, { A: '1', EMPTY: '' }, 'NAME= sets an empty value');
    assert.deepEqual(parse('--uid-map', '0:100000:65536')?.config.uidMap, [{ inside: 0, outside: 100000, count: 65536 }]);
    refused(['--no-mounts', '--mount', '/a:/b'], /^--no-mounts clears what --mount and --tmpfs would replace: give one or the other\.$/);
    refused(['--env', 'A=1', '--no-env'], /^--no-env clears what --env would replace/);
    refused(['--no-uid-map', '--uid-map', '0:1:1'], /^--no-uid-map clears/);
  });

  it('securelevel -1 (a value that looks like an option) is the host\'s; "" resets user and hostname to their defaults', () => {
    assert.deepEqual(parse('--securelevel', '-1')?.config, { securelevel: -1 });
    const c = parse('--user', '', '--hostname', '', '--workdir', '');
    assert.deepEqual(c?.config, { hostname: '', user: '', workdir: '' });
    assert.deepEqual(c?.phrases, ['hostname set to the name', 'user set to root', 'workdir set to /']);
  });
});
