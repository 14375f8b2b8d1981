#!/usr/bin/env bash
# Side-by-side cost per scrape of panther-exporter's hardware collectors
# (hwmon, power, timex, limits) against Debian's prometheus-node-exporter
# with the same parts (hwmon, thermal_zone, powersupplyclass, timex,
# filefd, conntrack, netstat), both reading the same fixture trees through
# --path.sysfs/--path.procfs: the Dell XPS 13 sysfs of the hwmon and power
# tests and the server procfs of the limits tests. One run, round robin,
# N scrapes each; ratios to node_exporter's.
#
#   bash e2e/bench/hardware.sh [N]      (default N=1000; run from the repo root)
#   BEFORE=path/to/older/panther-exporter bash e2e/bench/hardware.sh [N]
#     also scrapes an older build with the same flags, in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
make -s build
go build -o bin/scrapebench ./e2e/bench/scrapebench
NODE=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
[ -x "$NODE" ] || { echo "missing $NODE (apt-get install prometheus-node-exporter)" >&2; exit 1; }

TREE=$(mktemp -d)
mkdir -p "$TREE/sys" "$TREE/proc"
cp -a exporter/collector/hwmon/testdata/intel-laptop/sys/. "$TREE/sys/"
cp -a exporter/collector/power/testdata/intel-laptop/sys/. "$TREE/sys/"
cp -a exporter/collector/limits/testdata/server/proc/. "$TREE/proc/"
# node_exporter's netstat also reads /proc/net/snmp6: give it this host's, so it does its whole job.
cp /proc/net/snmp6 "$TREE/proc/net/snmp6"
# and its conntrack collector /proc/net/stat/nf_conntrack (per-CPU statistics panther-exporter does not read).
mkdir -p "$TREE/proc/net/stat" && cp /proc/net/stat/nf_conntrack "$TREE/proc/net/stat/nf_conntrack"

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P1=$(port); P2=$(port)
./bin/panther-exporter --web.listen-address=127.0.0.1:$P1 --log.level=warn \
  --path.sysfs="$TREE/sys" --path.procfs="$TREE/proc" --collector.disable-defaults \
  --collector.hwmon --collector.power --collector.timex --collector.limits &
OURS=$!
"$NODE" --web.listen-address=127.0.0.1:$P2 --log.level=warn \
  --path.sysfs="$TREE/sys" --path.procfs="$TREE/proc" --collector.disable-defaults \
  --collector.hwmon --collector.thermal_zone --collector.powersupplyclass --collector.timex \
  --collector.filefd --collector.conntrack --collector.netstat &
NODEPID=$!
BEFOREPID= P3=
if [ -n "${BEFORE:-}" ]; then
  P3=$(port)
  "$BEFORE" --web.listen-address=127.0.0.1:$P3 --log.level=warn \
    --path.sysfs="$TREE/sys" --path.procfs="$TREE/proc" --collector.disable-defaults \
    --collector.hwmon --collector.power --collector.timex --collector.limits &
  BEFOREPID=$!
fi
trap 'kill $OURS $NODEPID $BEFOREPID 2>/dev/null; rm -rf "$TREE"' EXIT
for p in $P1 $P2 $P3; do
  for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$p/metrics && break; sleep 0.1; done
done
# What each serves from the trees (both must read them, not the host).
echo "# panther-exporter: $(curl -s http://127.0.0.1:$P1/metrics | grep -c '^panther_\(hwmon\|thermal\|cpu_thermal\|power\|battery\|time\|filefd\|conntrack\|tcp\)') series;" \
  "node_exporter: $(curl -s http://127.0.0.1:$P2/metrics | grep -c '^node_\(hwmon\|thermal\|power_supply\|timex\|filefd\|nf_conntrack\|netstat\)') series;" \
  "node_exporter collectors failing: $(curl -s http://127.0.0.1:$P2/metrics | grep "^node_scrape_collector_success.* 0$" | tr "\n" " ")"
echo "# $(date -u +%F) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $("$NODE" --version 2>&1 | head -1)"
./bin/scrapebench -n "$N" \
  panther-exporter=http://127.0.0.1:$P1/metrics@$OURS \
  node_exporter=http://127.0.0.1:$P2/metrics@$NODEPID \
  ${BEFORE:+panther-exporter-before=http://127.0.0.1:$P3/metrics@$BEFOREPID}
