/**
 * Constant shell scripts for Linux namespaces containers (jchroot's model with
 * util-linux tools). Drivers reference them by name and hand them their values
 * as positional arguments only; nothing here is ever built from input.
 *
 * NS_INIT_SCRIPT runs as `sh -c 'eval "$QFLEET_NS_SCRIPT"' qfleet-ns STAGE ARGS…`
 * (NS_EVAL) and calls itself for the next stage the same way: the text travels
 * in the environment, not on command lines ps shows, and is unset before the
 * init runs.
 *
 * launch (host, real root): starts stage a in its own session with its output
 *   to the container's log, writes the user namespace's id maps from outside
 *   once stage a's unshare has made it (util-linux 2.38 maps ranges only
 *   through newuidmap, which wants /etc/subuid entries for root), waits for
 *   the container's init and prints its host pid.
 * a (a private mount namespace, real root): joins the container's cgroups,
 *   makes its mounts (sharedfs read-only, a private /dev, the fstab mounts) and
 *   copies the host's static tini and busybox into a small tmpfs that survives
 *   pivot_root; then unshares the user, mount, pid, uts, ipc (and net)
 *   namespaces. Mounts made here by real root are locked read-only in the
 *   container's namespace, whose root cannot remount them.
 * c (pid 1 of the new pid namespace, no uid yet): waits until the maps are
 *   written (unshare --keep-caps kept its capabilities across exec), becomes
 *   root of the namespace with setpriv (the host's, still visible), and
 * c2 (root inside, capabilities only inside): sets the hostname, brings up lo
 *   for a network of its own, pivot_roots into the container, mounts /proc,
 *   lazily drops the host tree and execs tini as the init, with a sleep that
 *   ignores SIGTERM as its child (tini ends when its child does).
 */
export const NS_EVAL = 'eval "$QFLEET_NS_SCRIPT"';

export const NS_INIT_SCRIPT = String.raw`
NS_EVAL='eval "$QFLEET_NS_SCRIPT"'
die() { echo "qfleet-ns: $*" >&2; exit 1; }
stage=$1; shift
case "$stage" in
launch)
  ROOT=$1 LOG=$4 UIDMAP=$6 GIDMAP=$7
  setsid unshare --mount --propagation private -- sh -c "$NS_EVAL" qfleet-ns a "$@" >>"$LOG" 2>&1 </dev/null &
  P=$!
  # The launcher's pid and start time (stat field 22), for the agent to find it if it dies before it writes the pidfile.
  if [ -n "$QFLEET_NS_LAUNCHER" ]; then
    # After "comm) ", field 3 comes first: shifting 19 leaves field 22 in $1 (comm may hold spaces and parentheses).
    set -- $(sed 's/.*) //' /proc/$P/stat) && shift 19 && echo "$P $1" > "$QFLEET_NS_LAUNCHER.tmp" && mv -f "$QFLEET_NS_LAUNCHER.tmp" "$QFLEET_NS_LAUNCHER" \
      || { kill -9 $P; die "cannot write $QFLEET_NS_LAUNCHER"; }
  fi
  alive() { [ "$(cut -d' ' -f3 /proc/$P/stat 2>/dev/null)" != Z ] && [ -e /proc/$P/stat ]; }
  mine=$(readlink /proc/self/ns/user)
  i=0
  while [ "$(readlink /proc/$P/ns/user 2>/dev/null)" = "$mine" ]; do
    i=$((i + 1)); [ $i -le 1000 ] || { kill -9 $P 2>/dev/null; die "no user namespace after 10 s; see $LOG"; }
    sleep 0.01
  done
  alive || die "the namespaces of $ROOT were not made; see $LOG"
  echo "$UIDMAP" | tr , '\n' > /proc/$P/uid_map || { kill -9 $P; die "cannot write the uid map $UIDMAP"; }
  echo "$GIDMAP" | tr , '\n' > /proc/$P/gid_map || { kill -9 $P; die "cannot write the gid map $GIDMAP"; }
  i=0
  while :; do
    I=; read -r I _ < /proc/$P/task/$P/children 2>/dev/null || :
    if [ -n "$I" ] && [ "$(cat /proc/$I/comm 2>/dev/null)" = tini ]; then echo "$I"; exit 0; fi
    alive || die "the init of $ROOT ended while starting; see $LOG"
    i=$((i + 1)); [ $i -le 1500 ] || { kill -9 $P 2>/dev/null; die "the init of $ROOT did not start in 15 s; see $LOG"; }
    sleep 0.01
  done ;;
a)
  set -eu
  ROOT=$1 SHAREDFS=$2 HOST=$3 NET=$5 RUID=$8 RGID=$9; shift 9
  TINI=$1 BUSYBOX=$2 SETPRIV=$3; shift 3
  # A path inside the container may have no symlink in it: nothing runs there yet to swap one in.
  at() { p="$ROOT/$1"; [ "$(realpath -e -- "$p")" = "$p" ] || die "$p is not a plain directory path"; }
  while [ $# -gt 0 ] && [ "$1" = cgroup ]; do echo $$ > "$2"; shift 2; done
  mount --no-canonicalize --bind "$ROOT" "$ROOT"
  at sharedfs
  mount --no-canonicalize --bind "$SHAREDFS" "$ROOT/sharedfs"
  mount --no-canonicalize -o remount,bind,ro,nosuid,nodev "$ROOT/sharedfs"
  at dev; at proc
  mount --no-canonicalize -t tmpfs -o mode=755,nosuid,noexec,size=1m qfleet-dev "$ROOT/dev"
  for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r nm ma mi <<EOF
$n
EOF
    mknod -m 666 "$ROOT/dev/$nm" c "$ma" "$mi"
  done
  mkdir -m 755 "$ROOT/dev/pts" "$ROOT/dev/shm" "$ROOT/dev/.qfleet"
  mount --no-canonicalize -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec qfleet-pts "$ROOT/dev/pts"
  ln -s pts/ptmx "$ROOT/dev/ptmx"
  mount --no-canonicalize -t tmpfs -o "mode=1777,nosuid,nodev,uid=$RUID,gid=$RGID" qfleet-shm "$ROOT/dev/shm"
  while [ $# -gt 0 ]; do
    case "$1" in
    bind)
      at "$3"
      mount --no-canonicalize --bind "$2" "$ROOT/$3"
      mount --no-canonicalize -o "remount,bind,$4,nosuid,nodev" "$ROOT/$3"
      shift 4 ;;
    tmpfs)
      at "$2"
      if [ "$3" = 0 ]; then size=; else size=",size=$3"; fi
      mount --no-canonicalize -t tmpfs -o "mode=755,nosuid,nodev,uid=$RUID,gid=$RGID$size" qfleet-tmpfs "$ROOT/$2"
      shift 3 ;;
    *) die "unknown mount directive $1" ;;
    esac
  done
  mount --no-canonicalize -t tmpfs -o mode=755,nosuid,nodev,size=8m qfleet-init "$ROOT/dev/.qfleet"
  cp -- "$TINI" "$ROOT/dev/.qfleet/tini"
  cp -- "$BUSYBOX" "$ROOT/dev/.qfleet/busybox"
  chmod 755 "$ROOT/dev/.qfleet/tini" "$ROOT/dev/.qfleet/busybox"
  mkdir -m 755 "$ROOT/dev/.qfleet/old"
  mount --no-canonicalize -o remount,ro,nosuid,nodev "$ROOT/dev/.qfleet"
  if [ "$NET" = none ]; then net=--net; else net=; fi
  # From here on paths are relative to the container's root, entered now as host root: once in its own user
  # namespace a process may not be let through the host's directories above the root (a 0700 one, say).
  cd "$ROOT"
  exec unshare --user --mount --pid --uts --ipc $net --keep-caps --fork --kill-child -- \
    ./dev/.qfleet/busybox sh -c "$NS_EVAL" qfleet-ns c "$ROOT" "$HOST" "$NET" "$SETPRIV" ;;
c)
  B=./dev/.qfleet/busybox
  i=0
  while [ -z "$("$B" cat /proc/self/gid_map)" ]; do
    i=$((i + 1)); [ $i -le 1000 ] || die "no id map after 10 s"
    "$B" sleep 0.01
  done
  exec "$4" --reuid=0 --regid=0 --clear-groups --inh-caps=-all -- ./dev/.qfleet/busybox sh -c "$NS_EVAL" qfleet-ns c2 "$@" ;;
c2)
  set -eu
  HOST=$2 NET=$3 B=./dev/.qfleet/busybox
  "$B" hostname "$HOST"
  if [ "$NET" = none ]; then "$B" ip link set lo up; fi
  # A mount locked by the outer namespace cannot be pivot_root's new root; a recursive bind of it can.
  "$B" mount --rbind . .
  cd -P "../$("$B" basename "$1")"
  "$B" pivot_root . dev/.qfleet/old
  cd /
  # After pivot_root, while the host's /proc is still attached below old/ (a new proc needs one fully visible).
  /dev/.qfleet/busybox mount -t proc -o nosuid,nodev,noexec proc /proc
  /dev/.qfleet/busybox umount -l /dev/.qfleet/old
  unset QFLEET_NS_SCRIPT QFLEET_NS_LAUNCHER
  exec /dev/.qfleet/tini -- /dev/.qfleet/busybox sh -c 'trap "" TERM INT HUP; exec /dev/.qfleet/busybox sleep 2147483647' ;;
*) die "unknown stage $stage" ;;
esac
`;

/** Runs `"$@"` in directory $1 inside the container (nsenter's --wd takes a host path; this changes directory after entering). */
export const CD_SCRIPT = 'cd -- "$1" || exit 1; shift; exec "$@"';
