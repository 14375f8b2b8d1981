# Shared setup of the benchmark scripts (peers.sh, soak.sh): sourced, not
# run. The real parts the e2e tests use, re-done in bash (a script cannot
# call the Go test helpers): a private dbus-daemon with the fake systemd, a
# Podman service with runc and its own storage, loop-mounted Btrfs
# filesystems with snapshots. Everything lives under $DIR (set by the
# caller, a fresh mktemp -d); bench_cleanup undoes it.

BENCH_PIDS=() # long-lived services started here (bus, fake systemd)
SVC=          # the Podman service
LOOPS=()      # loop devices
HAVE=0        # sleeping containers started so far

log() { echo "# $(date -u +%T) $*" >&2; }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# nixpkgs_lib: a directory holding nixpkgs' lib/ for nixos/testdata/eval.nix:
# $PANTHER_NIXPKGS_LIB, or ../shared/nixpkgs-lib's tarball extracted once.
nixpkgs_lib() {
  if [ -n "${PANTHER_NIXPKGS_LIB:-}" ]; then echo "$PANTHER_NIXPKGS_LIB"; return; fi
  local tarball d
  tarball=$(ls ../shared/nixpkgs-lib/nixpkgs-lib-*.tar.gz 2>/dev/null | head -1)
  [ -n "$tarball" ] || { echo "nixpkgs_lib: no ../shared/nixpkgs-lib/nixpkgs-lib-*.tar.gz (or set PANTHER_NIXPKGS_LIB)" >&2; return 1; }
  d=/tmp/panther-nixpkgs-lib-$(basename "$tarball" .tar.gz)
  [ -f "$d/lib/default.nix" ] || { mkdir -p "$d" && tar -xzf "$tarball" -C "$d"; }
  echo "$d"
}
udp_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_up() { # wait_up PORT [PATH]
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$1${2:-/metrics}" && return; sleep 0.1; done
  echo "nothing answers on port $1" >&2; exit 1
}

# build_bench: ours (static, as released), and the bench's own tools.
build_bench() {
  make -s build
  go build -o bin/scrapebench ./e2e/bench/scrapebench
  go build -o bin/soak ./e2e/bench/soak
  go build -o bin/fakesystemd-serve ./e2e/bench/fakesystemd-serve
}

# setup_dbus: a private dbus-daemon at $BUSADDR with the fake systemd
# (fakesystemd.Workstation(300)) on it. A session-type bus that lets root
# own org.freedesktop.systemd1, with the per-connection reply limit raised:
# systemd_exporter sends hundreds of property calls at once, which its
# direct connection to a real systemd allows.
setup_dbus() {
  cat >"$DIR/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$DIR/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <limit name="max_replies_per_connection">100000</limit>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
EOF
  dbus-daemon --config-file="$DIR/bus.conf" --nofork >"$DIR/dbus.log" 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 100); do [ -S "$DIR/bus.sock" ] && break; sleep 0.1; done
  BUSADDR=unix:path=$DIR/bus.sock
  bin/fakesystemd-serve -address "$BUSADDR" -units 300 >"$DIR/fake.log" 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 100); do grep -q ready "$DIR/fake.log" && return; sleep 0.1; done
  echo "fake systemd not ready: $(cat "$DIR/fake.log")" >&2; exit 1
}

# setup_podman: a Podman service on $SOCK as in the e2e tests (runc,
# cgroupfs, lowered ulimits, own storage, an image imported from busybox).
setup_podman() {
  SOCK=$DIR/podman.sock
  cat >"$DIR/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
  export CONTAINERS_CONF=$DIR/containers.conf
  PODMAN=(podman --root "$DIR/root" --runroot "$DIR/runroot" --tmpdir "$DIR/tmp"
    --cgroup-manager cgroupfs --runtime runc --events-backend file)
  mkdir -p "$DIR/img/bin" "$DIR/img/tmp"
  cp "$(command -v busybox)" "$DIR/img/bin/busybox"
  for a in $("$DIR/img/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$DIR/img/bin/$a"; done
  tar -C "$DIR/img" -c . | "${PODMAN[@]}" import - localhost/busybox:e2e >/dev/null 2>&1
  "${PODMAN[@]}" system service --time=0 "unix://$SOCK" >"$DIR/service.log" 2>&1 &
  SVC=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
  HAVE=0
}

# containers_to N: start sleeping containers (--network none) until N run.
containers_to() {
  local want=$1
  [ "$want" -gt "$HAVE" ] || return 0
  log "starting containers $((HAVE + 1))..$want"
  seq $((HAVE + 1)) "$want" | xargs -P 4 -I{} "${PODMAN[@]}" run -d --network none --name "sleep{}" \
    localhost/busybox:e2e sleep 1000000 >/dev/null
  HAVE=$want
}

# umount_retry DIR: unmount, waiting while something (another exporter on
# the host scanning Btrfs filesystems) holds it busy; lazily at last.
umount_retry() {
  mountpoint -q "$1" || return 0
  for _ in $(seq 50); do umount "$1" 2>/dev/null && return; sleep 0.1; done
  umount -l "$1"
}

# make_btrfs S: a 1 GiB loop Btrfs with a subvolume "persist" holding a
# file and S read-only snapshots of it under .snapshots/persist/<n>, left
# unmounted; its loop device is in LOOP_S.
make_btrfs() {
  local s=$1 img=$DIR/btrfs-$1.img m=$DIR/mk-$1 loop
  truncate -s 1G "$img"
  mkfs.btrfs -q -L "bench$s" "$img" >/dev/null 2>&1
  loop=$(losetup --find --show "$img")
  LOOPS+=("$loop")
  mkdir -p "$m"
  mount "$loop" "$m"
  btrfs subvolume create "$m/persist" >/dev/null
  head -c 1M /dev/urandom >"$m/persist/data"
  mkdir -p "$m/.snapshots/persist"
  log "taking $s snapshots"
  seq 1 "$s" | xargs -P 4 -I{} btrfs subvolume snapshot -r "$m/persist" "$m/.snapshots/persist/{}" >/dev/null
  umount_retry "$m"
  eval "LOOP_$s=$loop"
}

# mount_btrfs S: mount the filesystem with S snapshots at $DIR/mnt (only
# one at a time).
mount_btrfs() {
  mkdir -p "$DIR/mnt"
  umount_retry "$DIR/mnt"
  local v=LOOP_$1
  mount "${!v}" "$DIR/mnt"
}

# bench_cleanup: containers, the Podman service, the bus, mounts, loops, $DIR.
bench_cleanup() {
  if [ -n "$SVC" ]; then
    "${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1 || true
    kill "$SVC" 2>/dev/null || true
    wait "$SVC" 2>/dev/null || true
  fi
  [ ${#BENCH_PIDS[@]} -eq 0 ] || kill "${BENCH_PIDS[@]}" 2>/dev/null || true
  umount "$DIR/mnt" 2>/dev/null || true
  findmnt -rn -o TARGET | grep "^$DIR/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  # conmon's `podman container cleanup` may still write into the storage,
  # and mount it again: unmount whatever is there before each try.
  for _ in 1 2 3 4 5; do
    findmnt -rn -o TARGET | grep "^$DIR/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$DIR" 2>/dev/null && return
    sleep 1
  done
  rm -rf "$DIR"
}

# fixture_host ROLE DEST: one host's fixture tree under DEST (proc, sys,
# root), laid out as exporter/cmd/panther-exporter's TestFixtureHostGolden
# does (system, btrfs, nix, units), plus the limits collector's proc files
# and the hwmon sysfs of a server, or of an Intel laptop with its battery
# (power) for a workstation. Copied (cp -a): the nix collector resolves the
# store's links within the root.
fixture_host() {
  local role=$1 d=$2 c=exporter/collector
  mkdir -p "$d/proc" "$d/sys" "$d/root"
  cp -a $c/system/testdata/proc "$d/proc/"
  cp -a $c/limits/testdata/server/proc/. "$d/proc/proc/"
  cp -a $c/units/testdata/nixos/proc/vmstat "$d/proc/proc/"
  cp -a $c/btrfs/testdata/sys/fs $c/units/testdata/nixos/sys/fs "$d/sys/"
  if [ "$role" = workstation ]; then
    cp -a $c/hwmon/testdata/intel-laptop/sys/. $c/power/testdata/intel-laptop/sys/. "$d/sys/"
  else
    cp -a $c/hwmon/testdata/server/sys/. "$d/sys/"
  fi
  cp -a $c/btrfs/testdata/root/var $c/nix/testdata/agree/nix $c/nix/testdata/agree/run "$d/root/"
}

# fixture_exporter_args DEST: the exporter's flags for a fixture host:
# its trees, and the collectors that need a live service (boot: a systemd
# bus; podman: a socket) turned off, so every collector left succeeds.
fixture_exporter_args() {
  echo "--path.procfs=$1/proc/proc --path.sysfs=$1/sys --path.rootfs=$1/root --no-collector.boot --no-collector.podman --collector.nix.gc-state-file= --log.level=warn"
}
