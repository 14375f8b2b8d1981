#!/usr/bin/env bash
# Soak (issue 11), bounded, not in CI: panther-exporter with every
# collector on real parts (system; a loop Btrfs with snapshots; a Podman
# service with sleeping containers; boot on a private dbus-daemon with the
# fake systemd; nix on the host's /nix; textfile on a small directory) and
# the Datadog sink flushing every second to a real statsd_exporter, scraped
# N times by C concurrent scrapers as fast as the machine answers.
# e2e/bench/soak prints RSS, open fds and goroutines every EVERY scrapes
# and judges them after WARMUP scrapes: flat (drift within 5%; the spread
# max-min is shown too), no failed scrape
# (it exits 1 otherwise).
#
#   bash e2e/bench/soak.sh
#
# Run from anywhere, as root. Environment (defaults in brackets):
#   N [40000] C [4] EVERY [1000] WARMUP [20000] (20,000 judged after 20,000 of warm-up)
#   (RSS climbs for about the first minute, then holds: see docs/benchmarks.md)
#   CONTAINERS [20] SNAPSHOTS [100]
#   STATSD_EXPORTER_BIN [$(go env GOPATH)/bin/statsd_exporter]
#                       go install github.com/prometheus/statsd_exporter@v0.31.0
#   OUT [/tmp/panther-soak.md] where the tables are copied
set -euo pipefail
cd "$(dirname "$0")/../.."
. e2e/bench/lib.sh

N=${N:-40000}
C=${C:-4}
EVERY=${EVERY:-1000}
WARMUP=${WARMUP:-20000}
CONTAINERS=${CONTAINERS:-20}
SNAPSHOTS=${SNAPSHOTS:-100}
OUT=${OUT:-/tmp/panther-soak.md}
STATSD=${STATSD_EXPORTER_BIN:-$(go env GOPATH)/bin/statsd_exporter}
[ -x "$STATSD" ] || { echo "missing $STATSD (go install github.com/prometheus/statsd_exporter@v0.31.0)" >&2; exit 1; }
for t in podman runc dbus-daemon mkfs.btrfs btrfs busybox curl python3; do
  command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/panther-soak-XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
  [ ${#PIDS[@]} -eq 0 ] || { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }
  bench_cleanup
}
trap cleanup EXIT

# start_statsd: statsd_exporter as the DogStatsD receiver on a UDP port.
start_statsd() {
  UDP=$(udp_port); P_STATSD=$(port)
  "$STATSD" --web.listen-address=127.0.0.1:$P_STATSD --statsd.parse-dogstatsd-tags \
    --statsd.listen-udp=127.0.0.1:$UDP --statsd.listen-tcp= --statsd.listen-unixgram= --log.level=warn \
    >"$DIR/statsd.log" 2>&1 &
  PIDS+=($!)
  wait_up "$P_STATSD"
}

# start_ours: every collector, the Datadog sink flushing every second, the
# podman and btrfs background refreshes made frequent so that the soak
# goes through many of them.
start_ours() {
  mkdir -p "$DIR/textfile"
  printf '# HELP soak_marker A textfile sample.\n# TYPE soak_marker gauge\nsoak_marker{job="soak"} 1\n' >"$DIR/textfile/soak.prom"
  P_OURS=$(port)
  bin/panther-exporter --web.listen-address=127.0.0.1:$P_OURS --log.level=warn \
    --collector.podman.socket=bench=unix://$SOCK --collector.podman.list-interval=5s --collector.podman.stats-interval=5s \
    --collector.boot.dbus-address="$BUSADDR" --collector.btrfs.subvolume-interval=10s \
    --collector.textfile.directory="$DIR/textfile" \
    --datadog.address=127.0.0.1:$UDP --datadog.interval=1s >"$DIR/ours.log" 2>&1 &
  OURS=$!
  PIDS+=($OURS)
  wait_up "$P_OURS"
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$P_OURS/metrics" | grep -q '^panther_podman_stats_age_seconds' && break; sleep 0.1
  done
}

main() {
  : >"$OUT"
  build_bench
  setup_dbus
  setup_podman
  make_btrfs "$SNAPSHOTS"
  mount_btrfs "$SNAPSHOTS"
  containers_to "$CONTAINERS"
  start_statsd
  start_ours
  {
    echo "# soak.sh $(date -u '+%F %T UTC'); $(nproc) cores (shared with other work); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# ours $(bin/panther-exporter --version 2>&1 | head -1); $("$STATSD" --version 2>&1 | head -1)"
    echo "# N=$N scrapes, C=$C concurrent scrapers, sample every $EVERY, warm-up $WARMUP; $CONTAINERS containers, $SNAPSHOTS snapshots; Datadog flush every 1s over UDP"
    echo "# ours failing collectors at start: $(curl -s http://127.0.0.1:$P_OURS/metrics | awk '/^panther_scrape_collector_success/ && $2==0 {printf "%s ", $1}')-"
    echo
    rc=0
    bin/soak -url "http://127.0.0.1:$P_OURS/metrics" -pid "$OURS" -n "$N" -c "$C" -every "$EVERY" -warmup "$WARMUP" \
      -statsd "http://127.0.0.1:$P_STATSD/metrics" || rc=$?
    echo
    echo "statsd_exporter holds $(curl -s http://127.0.0.1:$P_STATSD/metrics | grep -c '^panther_') panther_ series;" \
      "our sink: $(curl -s http://127.0.0.1:$P_OURS/metrics | grep -E '^panther_datadog_(flushes|flush_errors|packets_sent|packets_dropped|series_dropped)_total' | tr '\n' ' ')"
    echo "ours logged $(wc -l <"$DIR/ours.log") lines; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "soak exit status: $rc"
  } | tee -a "$OUT"
  log "done; tables in $OUT"
}
main
