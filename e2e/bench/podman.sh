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
. e2e/bench/lib.sh
build_bench

DIR=$(mktemp -d /tmp/panther-podman-bench-XXXXXX)
OURS= PEERPID=
cleanup() {
  kill $OURS $PEERPID 2>/dev/null || true
  bench_cleanup
}
trap cleanup EXIT
trap "exit 130" INT TERM
setup_podman

echo "# $(date -u +%F) on $(nproc) cores (shared); podman $("${PODMAN[@]}" version --format '{{.Server.Version}}' 2>/dev/null); peer $("$PEER" --version 2>&1 | head -1)"
for level in $LEVELS; do
  containers_to "$level"
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
