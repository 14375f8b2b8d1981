#!/usr/bin/env bash
# Side by side with the peers (issue 11): one panther-exporter with every
# collector against the three exporters people run instead, together, on
# the same machine in one run:
#   - node_exporter (Debian's /usr/bin/prometheus-node-exporter, default collectors)
#   - prometheus-podman-exporter (--collector.enable-all, on the same Podman socket)
#   - systemd_exporter v0.7.0 (on the same private D-Bus with the fake systemd)
# with 0, 50 and 200 sleeping containers and 1 and 2000 Btrfs snapshots.
# For every cell all four are restarted (peak RSS is per cell), then scraped
# round robin N times each by e2e/bench/scrapebench -sum: p50/p99, CPU
# seconds per 1000 scrapes, peak RSS, and the ratios of ours to the peers
# (latency against the slowest peer, CPU and RSS against their sum).
# At the end it plots scrape latency against container count for ours and
# prometheus-podman-exporter into docs/podman-latency.png (gnuplot).
#
#   PODMAN_EXPORTER_BIN=/tmp/prometheus-podman-exporter bash e2e/bench/peers.sh
#
# Run from anywhere, as root. Environment (defaults in brackets):
#   PPE_FLAGS, SD_FLAGS    the peers' collector flags (see below)
#   N [300]                scrapes per target and cell (>= 300 for a p99)
#   CONTAINERS ["0 50 200"], SNAPSHOTS ["1 2000"]
#   PODMAN_EXPORTER_BIN    [/tmp/prometheus-podman-exporter, else ~/.cache/...]
#                          built from its own checkout, never from this repo:
#                          CGO_ENABLED=0 go build -mod=vendor -tags "remote containers_image_openpgp"
#   SYSTEMD_EXPORTER_BIN   [$(go env GOPATH)/bin/systemd_exporter]
#                          go install github.com/prometheus-community/systemd_exporter@v0.7.0
#   NODE_EXPORTER          [/usr/bin/prometheus-node-exporter]
#   PLOT                   [docs/podman-latency.png]; PLOT= skips the plot
#   OUT                    [/tmp/panther-peers.md] where the tables are copied
#   PLOT_ONLY=1            only redraw the plot from the tables in $OUT
#
# What each exporter sees: ours runs system, btrfs, podman (the bench
# socket), boot (the private bus), nix (the host's /nix); textfile and the
# Datadog sink stay off. systemd_exporter finds the bus through
# DBUS_SYSTEM_BUS_ADDRESS (go-systemd tries the system bus first). The fake
# systemd has no Socket/Mount interfaces, so systemd_exporter logs (and
# pays for) a warning for such units on every scrape, as it would against a
# systemd that lacks them. Other btrfs filesystems mounted on the host by
# other work are seen by ours and node_exporter alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. e2e/bench/lib.sh

N=${N:-300}
CONTAINERS=${CONTAINERS:-"0 50 200"}
SNAPSHOTS=${SNAPSHOTS:-"1 2000"}
OUT=${OUT:-/tmp/panther-peers.md}
PLOT=${PLOT-docs/podman-latency.png}
case "$PLOT" in /*|"") ;; *) PLOT=$REPO/$PLOT ;; esac
# The peers' coverage matched to ours: podman containers, pods and images
# (ours has no volume, network or `podman info` metrics); systemd units
# without .socket and .mount, whose interfaces the fake does not serve.
PPE_FLAGS=${PPE_FLAGS:-"--collector.pod --collector.image"}
SD_FLAGS=${SD_FLAGS:-"--systemd.collector.unit-exclude=.+\\.(device|socket|mount)"}
NODE=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
SDEXP=${SYSTEMD_EXPORTER_BIN:-$(go env GOPATH)/bin/systemd_exporter}
if [ -z "${PODMAN_EXPORTER_BIN:-}" ]; then
  for c in /tmp/prometheus-podman-exporter "$HOME/.cache/prometheus-podman-exporter/prometheus-podman-exporter" \
    "$HOME/.cache/prometheus-podman-exporter"; do
    [ -f "$c" ] && [ -x "$c" ] && { PODMAN_EXPORTER_BIN=$c; break; }
  done
fi
PPE=${PODMAN_EXPORTER_BIN:?set PODMAN_EXPORTER_BIN to a prometheus-podman-exporter binary}
for b in "$NODE" "$SDEXP" "$PPE"; do [ -x "$b" ] || { echo "missing or not executable: $b" >&2; exit 1; }; done
for t in podman runc dbus-daemon mkfs.btrfs btrfs busybox curl python3; do
  command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
if [ -n "$PLOT" ] && ! command -v gnuplot >/dev/null; then
  echo "missing gnuplot (apt-get install -y gnuplot-nox), or run with PLOT=" >&2; exit 1
fi

DIR=$(mktemp -d /tmp/panther-peers-XXXXXX)
chmod 755 "$DIR"
PIDS=() # exporters of the current cell
cleanup() {
  stop_exporters
  bench_cleanup
}
trap cleanup EXIT

# --- the four exporters ------------------------------------------------------
start_exporters() {
  P_OURS=$(port); P_NODE=$(port); P_PPE=$(port); P_SD=$(port)
  bin/panther-exporter --web.listen-address=127.0.0.1:$P_OURS --log.level=warn \
    --collector.podman.socket=bench=unix://$SOCK --collector.boot.dbus-address="$BUSADDR" \
    >"$DIR/ours.log" 2>&1 &
  OURS=$!
  "$NODE" --web.listen-address=127.0.0.1:$P_NODE --log.level=warn >"$DIR/node.log" 2>&1 &
  NODEPID=$!
  CONTAINER_HOST=unix://$SOCK "$PPE" --web.listen-address=127.0.0.1:$P_PPE $PPE_FLAGS \
    >"$DIR/ppe.log" 2>&1 &
  PPEPID=$!
  DBUS_SYSTEM_BUS_ADDRESS=$BUSADDR "$SDEXP" --web.listen-address=127.0.0.1:$P_SD $SD_FLAGS \
    >"$DIR/sd.log" 2>&1 &
  SDPID=$!
  PIDS=($OURS $NODEPID $PPEPID $SDPID)
  for p in $P_OURS $P_NODE $P_PPE $P_SD; do wait_up "$p"; done
  # Our podman list and stats run in the background: wait for the first.
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$P_OURS/metrics" | grep -q '^panther_podman_stats_age_seconds' && break; sleep 0.1
  done
}
stop_exporters() {
  [ ${#PIDS[@]} -gt 0 ] || return 0
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
}

# --- one cell: C containers, S snapshots ------------------------------------
cell() {
  local c=$1 s=$2
  containers_to "$c"
  mount_btrfs "$s"
  start_exporters
  local running snaps
  running=$("${PODMAN[@]}" ps -q | wc -l)
  snaps=$(btrfs subvolume list -s "$DIR/mnt" | wc -l)
  {
    echo
    echo "### $c containers ($running running), $s snapshots ($snaps listed); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    bin/scrapebench -sum -n "$N" -warmup 10 -timeout 30s \
      panther-exporter=http://127.0.0.1:$P_OURS/metrics@$OURS \
      node_exporter=http://127.0.0.1:$P_NODE/metrics@$NODEPID \
      prometheus-podman-exporter=http://127.0.0.1:$P_PPE/metrics@$PPEPID \
      systemd_exporter=http://127.0.0.1:$P_SD/metrics@$SDPID | tee "$DIR/cell-$c-$s.md"
    echo
    for t in "panther-exporter $OURS" "node_exporter $NODEPID" "prometheus-podman-exporter $PPEPID" "systemd_exporter $SDPID"; do
      set -- $t # a process that died is a zombie (State Z) until it is waited for
      case "$(awk '/^State:/ {print $2}' "/proc/$2/status" 2>/dev/null)" in
      "" | Z) echo "WARNING: $1 exited during this cell: its row and the ratios are void" ;;
      esac
    done
    echo "series: ours $(curl -s http://127.0.0.1:$P_OURS/metrics | grep -vc '^#'), node_exporter $(curl -s http://127.0.0.1:$P_NODE/metrics | grep -vc '^#'), podman-exporter $(curl -s http://127.0.0.1:$P_PPE/metrics | grep -vc '^#'), systemd_exporter $(curl -s http://127.0.0.1:$P_SD/metrics | grep -vc '^#');" \
      "ours failing collectors: $(curl -s http://127.0.0.1:$P_OURS/metrics | awk '/^panther_scrape_collector_success/ && $2==0 {printf "%s ", $1}')-;" \
      "log lines: podman-exporter $(wc -l <"$DIR/ppe.log"), systemd_exporter $(wc -l <"$DIR/sd.log")"
    echo "systemd_exporter warnings by kind: $(grep -o 'err="[^:]*: [^"]\{0,60\}' "$DIR/sd.log" | sed 's/unit=[^ ]*//' | sort | uniq -c | sort -rn | head -3 | tr -s ' \n' ' ')"
  } | tee -a "$OUT"
  stop_exporters
}

# --- plot: p50/p99 against containers, ours and prometheus-podman-exporter ---
# From the tables in $OUT, the cells with the most snapshots (the heavier
# case). PLOT_ONLY=1 redraws it from an existing $OUT without measuring.
plot() {
  local s=${SNAPSHOTS##* } dat date xt
  dat=$(mktemp /tmp/panther-peers-plot-XXXXXX)
  awk -v s="$s" '
    function v(x) { gsub(/ ms| /, "", x); return x }
    /^### / { c = $2; in_s = index($0, ", " s " snapshots") > 0 }
    in_s && /^\| panther-exporter / { split($0, f, "|"); o50[c] = v(f[5]); o99[c] = v(f[6]); cs[c] = 1 }
    in_s && /^\| prometheus-podman-exporter / { split($0, f, "|"); p50[c] = v(f[5]); p99[c] = v(f[6]) }
    END { for (c in cs) print c, o50[c], o99[c], p50[c], p99[c] }' "$OUT" | sort -n >"$dat"
  echo "# containers ours_p50 ours_p99 podman-exporter_p50 podman-exporter_p99 (ms), $s snapshots"
  cat "$dat"
  date=$(sed -n 's/^# peers.sh \([0-9-]*\).*/\1/p' "$OUT" | head -1)
  xt=$(awk '{printf "%s\"%s\" %s", (n++ ? ", " : ""), $1, $1}' "$dat")
  gnuplot <<EOF
set terminal pngcairo size 900,560 font "Sans,11"
set output "$PLOT"
set title "Scrape latency against sleeping containers\n{/*0.8 $s Btrfs snapshots, $N scrapes per point, shared 2-core machine under other load, $date}"
set xlabel "sleeping containers on the Podman socket"
set ylabel "scrape latency (ms, log scale)"
set logscale y
set key bottom right box opaque
set grid
set xtics ($xt)
plot "$dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "panther-exporter, all collectors, p50", \
     "$dat" using 1:3 with linespoints lw 2 pt 5 dt 2 lc rgb "#1f77b4" title "panther-exporter, all collectors, p99", \
     "$dat" using 1:4 with linespoints lw 2 pt 7 lc rgb "#d62728" title "prometheus-podman-exporter, p50", \
     "$dat" using 1:5 with linespoints lw 2 pt 5 dt 2 lc rgb "#d62728" title "prometheus-podman-exporter, p99"
EOF
  rm -f "$dat"
  log "plot written to $PLOT"
}

main() {
  if [ -n "${PLOT_ONLY:-}" ]; then plot; return; fi
  : >"$OUT"
  build_bench
  {
    echo "# peers.sh $(date -u '+%F %T UTC'); $(nproc) cores (shared with other work); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# ours $(bin/panther-exporter --version 2>&1 | head -1)"
    echo "# $("$NODE" --version 2>&1 | head -1)"
    echo "# $("$PPE" --version 2>&1 | head -1) ($PPE)"
    echo "# $("$SDEXP" --version 2>&1 | head -1) ($SDEXP)"
    echo "# N=$N scrapes per target and cell, round robin; CONTAINERS=\"$CONTAINERS\" SNAPSHOTS=\"$SNAPSHOTS\"; PPE_FLAGS=\"$PPE_FLAGS\" SD_FLAGS=\"$SD_FLAGS\""
  } | tee -a "$OUT"
  setup_dbus
  setup_podman
  echo "# podman service $("${PODMAN[@]}" version --format '{{.Server.Version}}' 2>/dev/null)" | tee -a "$OUT"
  for s in $SNAPSHOTS; do make_btrfs "$s"; done
  for c in $CONTAINERS; do
    for s in $SNAPSHOTS; do cell "$c" "$s"; done
  done
  [ -z "$PLOT" ] || plot
  log "done; tables in $OUT"
}
main
