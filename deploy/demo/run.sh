#!/usr/bin/env bash
# qfleet demo on this machine (Debian, as root): a local qfleetd, a tiny busybox base installed as
# sharedfs + template, three containers each running busybox httpd on its own port, isolated in
# their own namespaces, `qfleet list`, each service answering, and `ps` inside one seeing only its own. Re-running starts afresh; `--clean` removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMO=${QFLEET_DEMO_DIR:-/var/tmp/qfleet-demo}
SOCK=$DEMO/qfleetd.sock
PORTS=(18081 18082 18083)

if [ -t 1 ]; then B=$'\e[1m'; N=$'\e[0m'; else B=; N=; fi
say() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; }
qfleet() { node dist/controller/main.js --socket "$SOCK" "$@"; }
show() { say "qfleet $*"; qfleet "$@"; }

[ "$(id -u)" = 0 ] || { echo "qfleet demo: run as root (it mounts and chroots)" >&2; exit 2; }

clean() {
  if [ -S "$SOCK" ] && qfleet version >/dev/null 2>&1; then
    qfleet stop -A >/dev/null 2>&1 || true
    qfleet delete -A >/dev/null 2>&1 || true
  fi
  if [ -f "$DEMO/state/qfleetd.pid" ]; then
    pid=$(cat "$DEMO/state/qfleetd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if grep -q " $DEMO/" /proc/self/mountinfo; then
    echo "qfleet demo: something is still mounted under $DEMO; not removing it" >&2
    grep " $DEMO/" /proc/self/mountinfo >&2
    exit 1
  fi
  rm -rf "$DEMO"
}

if [ "${1:-}" = "--clean" ]; then clean; echo "demo removed"; exit 0; fi

echo "${B}Setting up${N} (Debian packages, npm modules, build)..."
need=()
for p in busybox-static util-linux tini; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; fi
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build >/dev/null

clean
mkdir -p "$DEMO"
: > "$DEMO/qfleetd.conf"

echo "${B}A tiny pristine base${N}: Debian's static busybox, an /etc/init.d/httpd rc script, this host's os-release."
node --input-type=module -e '
  const { makeBusyboxBase } = await import(process.argv[1]);
  await makeBusyboxBase(process.argv[2]);' "$PWD/dist/test/support/busybox-base.js" "$DEMO/base"

echo "${B}Starting qfleetd${N} on $SOCK (root-only socket), containers under $DEMO/root"
nohup node dist/agent/main.js -c "$DEMO/qfleetd.conf" --root-dir "$DEMO/root" --state-dir "$DEMO/state" \
  --log-dir "$DEMO/log" --socket "$SOCK" --log-file "$DEMO/agent.log" >/dev/null 2>"$DEMO/agent.stderr" &
for _ in $(seq 100); do qfleet version >/dev/null 2>&1 && break; sleep 0.1; done

show version
show install "$DEMO/base"
for i in 1 2 3; do
  show create "web$i"
  # Give each container its own port and page, as an operator would inside it.
  printf '%s\n' "${PORTS[$((i-1))]}" > "$DEMO/root/containers/web$i/etc/qfleet-httpd.port"
  printf '<h1>hello from web%s</h1>\n' "$i" > "$DEMO/root/containers/web$i/var/www/index.html"
  show config "web$i" httpd
done
show start -A
show list

for i in 1 2 3; do
  say "busybox wget -qO- http://127.0.0.1:${PORTS[$((i-1))]}/"
  busybox wget -qO- "http://127.0.0.1:${PORTS[$((i-1))]}/"
done

show exec web1 -- ls /sharedfs
say "qfleet exec web1 -- sh -c 'echo x > /bin/planted'    # sharedfs is read-only inside every container"
qfleet exec web1 -- sh -c 'echo x > /bin/planted' || echo "(refused, as it should be)"

echo
echo "${B}Each container is isolated${N} (namespaces: its own PID, mount, UTS, IPC and user namespaces):"
say "qfleet exec web1 -- ps     # only web1's own processes: its init, its httpd, this ps"
qfleet exec web1 -- ps
say "qfleet exec web1 -- hostname"
qfleet exec web1 -- hostname
say "qfleet exec web1 -- mount -o remount,rw /sharedfs    # root inside cannot make the shared base writable"
qfleet exec web1 -- mount -o remount,rw /sharedfs || echo "(refused, as it should be)"
say "grep -c $DEMO/root/containers /proc/self/mountinfo    # the host's mount table shows none of the containers' mounts"
grep -c "$DEMO/root/containers" /proc/self/mountinfo || true

show stop web3
show list

cat <<EOT

${B}The demo is still running.${N} Try:
  node dist/controller/main.js --socket $SOCK console web3     # shell in the stopped web3 (exit to leave)
  node dist/controller/main.js --socket $SOCK start web3
  node dist/controller/main.js --socket $SOCK --json list
Agent log: $DEMO/agent.log.   Remove everything: bash deploy/demo/run.sh --clean
EOT
