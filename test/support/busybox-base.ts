import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { ExecaRunner } from '../../agent/runner/execa-runner.js';

// A tiny but real Linux root filesystem for the driver's integration tests:
// Debian's statically linked busybox, applet symlinks, the host's os-release
// (so its release matches the host), and one service, a busybox httpd with an
// /etc/init.d script. Several containers made from it can each serve their own
// port (/etc/qfleet-httpd.port).

export const BUSYBOX = '/bin/busybox';

/** Applets linked in bin/ (everything the tests and the httpd script use). */
export const BUSYBOX_APPLETS: readonly string[] = [
  'sh', 'ash', 'ls', 'cat', 'echo', 'mkdir', 'rm', 'sleep', 'httpd', 'wget', 'kill', 'ps', 'test', '[',
  'setsid', 'env', 'pwd', 'id', 'touch', 'stat', 'ln', 'readlink', 'true', 'false', 'grep', 'head', 'stty',
  'hostname', 'mount', 'umount', 'mknod', 'killall', 'uname',
];

export interface BusyboxBaseOptions {
  /** Written to etc/qfleet-httpd.port; without it the script's default (8080 or $HTTPD_PORT) applies. */
  readonly httpdPort?: number;
}

/** The rc script: start/stop/status with a pidfile, bounded waits only. */
export const HTTPD_INIT_SCRIPT = `#!/bin/sh
# busybox httpd for qfleet tests: serves /var/www on the port in /etc/qfleet-httpd.port.
PORT="\${HTTPD_PORT:-8080}"
[ -r /etc/qfleet-httpd.port ] && PORT="$(cat /etc/qfleet-httpd.port)"
PIDFILE=/var/run/httpd.pid

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "$1" in
start)
  if running; then echo "httpd already running (pid $(cat "$PIDFILE"))"; exit 0; fi
  # setsid: out of the caller's process group, so nothing aimed at the caller kills the daemon.
  setsid httpd -f -p "$PORT" -h /var/www </dev/null >/dev/null 2>&1 &
  echo $! > "$PIDFILE"
  i=0
  while [ $i -lt 100 ]; do
    if wget -q -O /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then echo "httpd started on port $PORT"; exit 0; fi
    running || break
    sleep 0.1; i=$((i + 1))
  done
  echo "httpd did not come up on port $PORT" >&2
  kill "$(cat "$PIDFILE")" 2>/dev/null; rm -f "$PIDFILE"; exit 1 ;;
stop)
  if ! [ -f "$PIDFILE" ]; then echo "httpd not running"; exit 0; fi
  pid="$(cat "$PIDFILE")"
  kill "$pid" 2>/dev/null
  # Without /proc a zombie still answers kill -0, so the wait is bounded and the pidfile decides.
  i=0
  while [ $i -lt 30 ] && kill -0 "$pid" 2>/dev/null && wget -q -O /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  rm -f "$PIDFILE"
  echo "httpd stopped"; exit 0 ;;
status)
  if running; then echo "httpd is running as pid $(cat "$PIDFILE")"; exit 0; fi
  echo "httpd is not running"; exit 3 ;;
*)
  echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`;

/** Installs Debian's busybox-static if /bin/busybox is missing (CI installs it up front). */
export async function ensureBusybox(): Promise<void> {
  if (existsSync(BUSYBOX)) return;
  const runner = new ExecaRunner();
  await runner.run({ argv: ['apt-get', 'install', '-y', '-qq', 'busybox-static'], timeoutMs: 300_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' } });
  if (!existsSync(BUSYBOX)) throw new Error('busybox-static did not provide /bin/busybox');
}

/**
 * Builds the root filesystem in `dir` (created if needed). The layout exercises
 * the split: real bin/, usr/bin/, usr/lib/, usr/share/ directories, and a
 * merged-/usr style `lib -> usr/lib` symlink that must stay a symlink.
 */
export async function makeBusyboxBase(dir: string, opts: BusyboxBaseOptions = {}): Promise<string> {
  await ensureBusybox();
  for (const d of ['bin', 'etc/init.d', 'usr/bin', 'usr/lib', 'usr/share/doc/qfleet', 'usr/local/bin', 'var/www', 'var/run', 'root', 'dev']) {
    mkdirSync(`${dir}/${d}`, { recursive: true, mode: 0o755 });
  }
  mkdirSync(`${dir}/tmp`, { recursive: true });
  chmodSync(`${dir}/tmp`, 0o1777);
  chmodSync(`${dir}/root`, 0o700);
  copyFileSync(BUSYBOX, `${dir}/bin/busybox`);
  chmodSync(`${dir}/bin/busybox`, 0o755);
  for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', `${dir}/bin/${applet}`);
  symlinkSync('/bin/busybox', `${dir}/usr/bin/env`);
  symlinkSync('usr/lib', `${dir}/lib`);
  writeFileSync(`${dir}/usr/lib/README`, 'busybox is static: no libraries needed\n');
  writeFileSync(`${dir}/usr/share/doc/qfleet/README`, 'qfleet test base\n');
  // Read through any symlink on the host (Debian: etc/os-release -> ../usr/lib/os-release); a plain file here.
  writeFileSync(`${dir}/etc/os-release`, readFileSync('/etc/os-release'));
  writeFileSync(`${dir}/etc/passwd`, 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(`${dir}/etc/group`, 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n');
  writeFileSync(`${dir}/etc/hostname`, 'busybox\n');
  writeFileSync(`${dir}/var/www/index.html`, '<html><body>qfleet busybox httpd</body></html>\n');
  writeFileSync(`${dir}/etc/init.d/httpd`, HTTPD_INIT_SCRIPT, { mode: 0o755 });
  chmodSync(`${dir}/etc/init.d/httpd`, 0o755);
  if (opts.httpdPort !== undefined) writeFileSync(`${dir}/etc/qfleet-httpd.port`, `${opts.httpdPort}\n`);
  return dir;
}

/** The same base packed as a tarball (`.tar`, `.tar.gz` or `.tar.xz`, by the file name). */
export async function makeBusyboxTarball(workDir: string, file: string, opts: BusyboxBaseOptions = {}): Promise<string> {
  const tree = await makeBusyboxBase(`${workDir}/tree`, opts);
  const compress = file.endsWith('.gz') ? ['-z'] : file.endsWith('.xz') ? ['-J'] : [];
  await new ExecaRunner().run({ argv: ['tar', ...compress, '-cf', file, '-C', tree, '--numeric-owner', '.'] });
  return file;
}

/**
 * A port for a test httpd: below the kernel's ephemeral range (32768 up by
 * default, where outgoing connections of parallel tests take theirs) and not in
 * /proc/net/tcp{,6} in any state. A port taken between this pick and the
 * httpd's bind still fails loudly in the start script.
 */
export function pickTestPort(): number {
  const used = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local) used.add(parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  for (let i = 0; i < 1000; i++) {
    const port = 10000 + Math.floor(Math.random() * 22000);
    if (!used.has(port)) return port;
  }
  throw new Error('no free test port found below 32000 in 1000 tries');
}
