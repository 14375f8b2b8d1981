#!/usr/bin/env bash
# Side-by-side benchmark of panther-exporter's system collector against
# Debian's prometheus-node-exporter with its default collectors, on this
# machine in one run: scrape latency p50/p99 over N scrapes each (round
# robin), CPU seconds per 1000 scrapes and peak RSS, with ratios.
#
#   bash e2e/bench/system.sh [N]      (default N=1000; run from the repo root)
#   BASELINE_BIN=/path/to/other/panther-exporter bash e2e/bench/system.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
make -s build
go build -o bin/scrapebench ./e2e/bench/scrapebench
NODE=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
[ -x "$NODE" ] || { echo "missing $NODE (apt-get install prometheus-node-exporter)" >&2; exit 1; }

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P1=$(port); P2=$(port)
./bin/panther-exporter --web.listen-address=127.0.0.1:$P1 --collector.disable-defaults --collector.system --log.level=warn &
OURS=$!
"$NODE" --web.listen-address=127.0.0.1:$P2 --log.level=warn &
NODEPID=$!
trap 'kill $OURS $NODEPID 2>/dev/null' EXIT
for p in $P1 $P2; do
  for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$p/metrics && break; sleep 0.1; done
done
# BASELINE_BIN: another panther-exporter build (say, main's) measured in the
# same run, so a change is judged by a ratio taken side by side.
targets=(panther-exporter=http://127.0.0.1:$P1/metrics@$OURS node_exporter=http://127.0.0.1:$P2/metrics@$NODEPID)
if [ -n "${BASELINE_BIN:-}" ]; then
  P3=$(port)
  "$BASELINE_BIN" --web.listen-address=127.0.0.1:$P3 --collector.disable-defaults --collector.system --log.level=warn &
  BASE=$!
  trap 'kill $OURS $NODEPID $BASE 2>/dev/null' EXIT
  for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$P3/metrics && break; sleep 0.1; done
  targets+=(baseline=http://127.0.0.1:$P3/metrics@$BASE)
fi
echo "# $(date -u +%F) $(nproc) cores; $("$NODE" --version 2>&1 | head -1)"
./bin/scrapebench -n "$N" "${targets[@]}"
