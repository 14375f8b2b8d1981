#!/usr/bin/env bash
# Role profiles (issue 16): what panther-exporter costs a host with the
# server's defaults and with the workstation's, measured side by side, at
# the same time, on the same real parts: a Podman service with sleeping
# containers, a loop Btrfs with snapshots, the fake systemd on a private
# dbus-daemon, DogStatsD to a local UDP receiver, and a real Prometheus
# scraping both with the scrape configuration the NixOS module renders
# (servers every 15s, workstations every 60s).
#
# The flags of each exporter are not written here: they are the argv that
# nixos/module.nix renders for `role = "server"` and `role = "workstation"`
# (through nixos/testdata/eval.nix), with only the listen address, the
# Podman socket, the bus and the DogStatsD address pointed at the bench's.
#
# Over DURATION seconds of real scrapes, from /proc/<pid>: CPU seconds per
# hour (utime+stime), resident memory (VmRSS at the end, VmHWM), and
# wake-ups per minute (voluntary + involuntary context switches summed over
# every thread of the process). Both run under `nice`, as on the shared
# development machine.
#
#   bash e2e/bench/roles.sh
#
# Run from anywhere, as root. Environment (defaults in brackets):
#   DURATION [660] seconds measured, after WARMUP [90] seconds
#   CONTAINERS [5] SNAPSHOTS [50]
#   OUT [/tmp/panther-roles.md] where the table is copied
#   EXPORTER_BIN [bin/panther-exporter, built here] another build to measure
#     with the same flags (e.g. an older commit's, for a before/after)
set -euo pipefail
cd "$(dirname "$0")/../.."
. e2e/bench/lib.sh

DURATION=${DURATION:-660}
WARMUP=${WARMUP:-90}
CONTAINERS=${CONTAINERS:-5}
SNAPSHOTS=${SNAPSHOTS:-50}
OUT=${OUT:-/tmp/panther-roles.md}
for t in podman runc dbus-daemon mkfs.btrfs btrfs busybox curl python3 prometheus nix-instantiate; do
  command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/panther-roles-XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
  [ ${#PIDS[@]} -eq 0 ] || { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }
  bench_cleanup
}
trap cleanup EXIT

build_bench
EXPORTER_BIN=${EXPORTER_BIN:-bin/panther-exporter}
setup_dbus
setup_podman
containers_to "$CONTAINERS"
make_btrfs "$SNAPSHOTS"
mount_btrfs "$SNAPSHOTS"

# A DogStatsD receiver that reads and drops (the Agent's cost is not ours).
UDP=$(udp_port)
python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $UDP))
while True: s.recv(65536)
" &
PIDS+=($!)

# eval_module EXPORTER MONITORING: nixos/testdata/eval.nix's JSON.
eval_module() {
  nix-instantiate --eval --strict --json nixos/testdata/eval.nix --arg nixpkgsLib "$(nixpkgs_lib)" \
    --arg exporter "$1" --arg monitoring "$2" --arg podman true 2>"$DIR/nix.err" ||
    { cat "$DIR/nix.err" >&2; exit 1; }
}

# role_argv ROLE: the module's argv for the role, one flag a line, without
# the binary and its listen address (the bench picks the port).
role_argv() {
  eval_module "{ enable = true; role = \"$1\"; podman.sockets.bench = \"unix://$SOCK\";
      boot.dbusAddress = \"$BUSADDR\"; datadog.address = \"127.0.0.1:$UDP\"; }" '{ enable = true; }' |
    python3 -c '
import json, sys
# ExecStart as NixOS writes it (utils.escapeSystemdExecArgs): JSON-quoted
# arguments, % and $ doubled.
line = json.load(sys.stdin)["argv"].replace("%%", "%").replace("$$", "$")
dec, i, argv = json.JSONDecoder(), 0, []
while i < len(line):
    a, i = dec.raw_decode(line, i)
    argv.append(a)
    while i < len(line) and line[i] == " ":
        i += 1
[print(a) for a in argv[1:] if not a.startswith("--web.listen-address=")]'
}

declare -A PORT EPID
for role in server workstation; do
  PORT[$role]=$(port)
  mapfile -t args < <(role_argv $role)
  printf '%s\n' "${args[@]}" >"$DIR/argv-$role"
  log "$role: ${args[*]}"
  nice "$EXPORTER_BIN" --web.listen-address=127.0.0.1:${PORT[$role]} --log.level=warn "${args[@]}" \
    >"$DIR/exporter-$role.log" 2>&1 &
  EPID[$role]=$!
  PIDS+=($!)
  wait_up "${PORT[$role]}"
done

# Prometheus with the module's scrape configuration for two hosts.
P_PROM=$(port)
eval_module '{ enable = true; }' "{ enable = true; hosts = {
    server = { address = \"127.0.0.1:${PORT[server]}\"; role = \"server\"; };
    workstation = { address = \"127.0.0.1:${PORT[workstation]}\"; role = \"workstation\"; }; }; }" |
  python3 -c 'import json,sys; print(json.dumps({"global": {"scrape_interval": "15s"}, "scrape_configs": json.load(sys.stdin)["prometheus"]["scrapeConfigs"]}))' \
    >"$DIR/prometheus.yml"
nice prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prom" \
  --web.listen-address=127.0.0.1:$P_PROM >"$DIR/prometheus.log" 2>&1 &
PIDS+=($!)
wait_up "$P_PROM" /-/ready

# sample PID: utime+stime ticks, context switches of all threads, VmRSS kB, VmHWM kB.
sample() {
  local pid=$1 cpu cs=0 f
  cpu=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  for f in /proc/$pid/task/*/status; do
    cs=$((cs + $(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}' "$f" 2>/dev/null || echo 0)))
  done
  echo "$cpu $cs $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")"
}

log "warm-up ${WARMUP}s"
sleep "$WARMUP"
declare -A START
for role in server workstation; do START[$role]=$(sample "${EPID[$role]}"); done
log "measuring ${DURATION}s"
sleep "$DURATION"
TCK=$(getconf CLK_TCK)

query() { curl -sf "http://127.0.0.1:$P_PROM/api/v1/query" --data-urlencode "query=$1" |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }

{
  echo "| role | scrapes | up | DogStatsD flushes | CPU s/hour | wake-ups/min | RSS MiB (end) | peak RSS MiB |"
  echo "|---|---|---|---|---|---|---|---|"
  for role in server workstation; do
    read -r c0 s0 _ _ <<<"${START[$role]}"
    read -r c1 s1 rss hwm <<<"$(sample "${EPID[$role]}")"
    scrapes=$(query "count_over_time(up{instance=\"$role\"}[${DURATION}s])")
    upmin=$(query "min_over_time(up{instance=\"$role\"}[${DURATION}s])")
    flushes=$(curl -sf "http://127.0.0.1:${PORT[$role]}/metrics" | awk '/^panther_datadog_flushes_total/ {print $2}')
    python3 - "$role" "$c0" "$c1" "$s0" "$s1" "$rss" "$hwm" "$TCK" "$DURATION" "$scrapes" "$upmin" "$flushes" <<'EOF'
import sys
role, c0, c1, s0, s1, rss, hwm, tck, dur, scrapes, upmin, flushes = sys.argv[1:]
dur = float(dur)
cpu_h = (int(c1) - int(c0)) / int(tck) * 3600 / dur
wake = (int(s1) - int(s0)) * 60 / dur
print(f"| {role} | {scrapes} | {upmin} | {flushes} | {cpu_h:.1f} | {wake:.0f} | {int(rss)/1024:.1f} | {int(hwm)/1024:.1f} |")
EOF
  done
  echo
  echo "Measured over ${DURATION}s after ${WARMUP}s of warm-up, both at once under nice, $(nproc) CPUs, $(date -u +%F), $EXPORTER_BIN ($("$EXPORTER_BIN" --version 2>&1 | head -1))."
  echo "up: the lowest up of the window (1: no failed scrape). Flags per role:"
  for role in server workstation; do echo "- $role: \`$(tr '\n' ' ' <"$DIR/argv-$role" | sed "s|$DIR|\$DIR|g; s| $||")\`"; done
} | tee "$OUT"
