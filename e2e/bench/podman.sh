#!/usr/bin/env bash
# Side-by-side benchmark of panther-exporter's podman collector against
# prometheus-podman-exporter on the same Podman API socket, with 0, 50 and
# 200 sleeping containers: scrape latency p50/p99 over N scrapes each (round
# robin), CPU seconds per 1000 scrapes and peak RSS (both exporters are
# restarted at every level).
#
#   PODMAN_EXPORTER_BIN=/tmp/prometheus-podman-exporter bash e2e/bench/podman.sh [N] [LEVELS]
#
# (default N=200, LEVELS="0 50 200"; run from the repo root as root). The
# peer is not in this repository: build it from its own checkout with
#   CGO_ENABLED=0 go build -mod=vendor -tags "remote containers_image_openpgp"
# Podman runs like in the e2e tests: its own storage, runc, cgroupfs,
# lowered ulimits, --network none, an image imported from busybox-static.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
LEVELS=${2:-"0 50 200"}
PEER=${PODMAN_EXPORTER_BIN:?set PODMAN_EXPORTER_BIN to a prometheus-podman-exporter binary}
[ -x "$PEER" ] || { echo "not executable: $PEER" >&2; exit 1; }
export GOFLAGS=-tags=remote,containers_image_openpgp,exclude_graphdriver_btrfs,btrfs_noversion,exclude_graphdriver_devicemapper
make -s build
go build -o bin/scrapebench ./e2e/bench/scrapebench

DIR=$(mktemp -d /tmp/panther-podman-bench-XXXXXX)
SOCK=$DIR/podman.sock
cat > "$DIR/containers.conf" <<'EOF'
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
OURS= PEERPID= SVC=
cleanup() {
  kill $OURS $PEERPID 2>/dev/null || true
  "${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1 || true
  [ -n "$SVC" ] && kill "$SVC" 2>/dev/null || true
  findmnt -rn -o TARGET | grep "^$DIR/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap "exit 130" INT TERM

mkdir -p "$DIR/img/bin" "$DIR/img/tmp"
cp "$(command -v busybox)" "$DIR/img/bin/busybox"
for a in $("$DIR/img/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$DIR/img/bin/$a"; done
tar -C "$DIR/img" -c . | "${PODMAN[@]}" import - localhost/busybox:e2e >/dev/null
"${PODMAN[@]}" system service --time=0 "unix://$SOCK" >"$DIR/service.log" 2>&1 &
SVC=$!
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_up() { for i in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$1/metrics" && return; sleep 0.1; done; echo "exporter on $1 not up" >&2; exit 1; }

echo "# $(date -u +%F) on $(nproc) cores (shared); podman $("${PODMAN[@]}" version --format '{{.Server.Version}}' 2>/dev/null); peer $("$PEER" --version 2>&1 | head -1)"
have=0
for level in $LEVELS; do
  if [ "$level" -gt "$have" ]; then
    seq $((have + 1)) "$level" | xargs -P 4 -I{} "${PODMAN[@]}" run -d --network none --name "sleep{}" localhost/busybox:e2e sleep 1000000 >/dev/null
    have=$level
  fi
  running=$("${PODMAN[@]}" ps -q | wc -l)
  P1=$(port); P2=$(port)
  ./bin/panther-exporter --web.listen-address=127.0.0.1:$P1 --log.level=warn \
    --collector.disable-defaults --collector.podman --collector.podman.socket=bench=unix://$SOCK &
  OURS=$!
  CONTAINER_HOST=unix://$SOCK "$PEER" --web.listen-address=127.0.0.1:$P2 --collector.enable-all >"$DIR/peer.log" 2>&1 &
  PEERPID=$!
  wait_up $P1; wait_up $P2
  # Let our first list and stats land (they run in the background).
  for i in $(seq 600); do
    curl -sf "http://127.0.0.1:$P1/metrics" | grep -q '^panther_podman_stats_age_seconds' && break; sleep 0.1
  done
  echo
  echo "## $level sleeping containers ($running running)"
  ./bin/scrapebench -n "$N" -warmup 5 -timeout 30s \
    panther-exporter=http://127.0.0.1:$P1/metrics@$OURS \
    prometheus-podman-exporter=http://127.0.0.1:$P2/metrics@$PEERPID
  echo "peer errors logged: $(grep -ci 'error' "$DIR/peer.log" || true)"
  kill $OURS $PEERPID; wait $OURS $PEERPID 2>/dev/null || true
  OURS= PEERPID=
done
