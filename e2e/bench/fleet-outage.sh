#!/usr/bin/env bash
# Fleet mode (issue 21), no loss: hosts push through vmagent with an on-disk
# buffer into Debian's victoria-metrics; the link of two of them to the
# store is cut for MINUTES while their agents keep scraping, then restored.
# Afterwards every raw sample the store holds for each host is counted
# against what its vmagent scraped, and the alerts vmalert raised (with
# every rules/prometheus/*.rules.yml loaded, notifying Debian's Alertmanager
# with rules/alertmanager/alertmanager.yml) are listed per phase.
#
# Four hosts, each a real panther-exporter on a fixture tree (no host
# files read) scraped by its own vmagent, as the module's push mode runs it:
#   roam-server       role=server,      15s, link cut
#   roam-laptop       role=workstation, 60s, link cut
#   steady-server     role=server,      15s, never cut (control)
#   steady-laptop     role=workstation, 60s, never cut (control)
# The controls carry the same fixture data, so an alert on a roaming host
# that the control of its role lacks comes from the gap or the backfill.
# The link is a TCP forwarder (fleet_proxy.py) between the agent and the
# store: killing it cuts the agent off (as a laptop leaving the network)
# while the store, vmalert and the controls carry on.
#
#   bash e2e/bench/fleet-outage.sh [MINUTES]
#
# Run from anywhere. MINUTES [30] of outage, after WARMUP [5] minutes and
# followed by AFTER [12] minutes (backfill, alerts resolving).
# EVAL [1m] vmalert's evaluation interval (Prometheus' default).
# RULES [rules/prometheus/*.rules.yml] the rule files vmalert loads (a glob).
# OUT [/tmp/panther-fleet-outage.md] where the tables are copied.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. e2e/bench/lib.sh
. e2e/bench/fleet-lib.sh

MINUTES=${1:-30}
WARMUP=${WARMUP:-5}
AFTER=${AFTER:-12}
EVAL=${EVAL:-1m}
RULES=${RULES:-$REPO/rules/prometheus/*.rules.yml}
OUT=${OUT:-/tmp/panther-fleet-outage.md}
fleet_init fleet-outage
fleet_store
fleet_alerting "$RULES" "$EVAL"

HOSTS=(roam-server roam-laptop steady-server steady-laptop)
declare -A ROLE=([roam-server]=server [roam-laptop]=workstation [steady-server]=server [steady-laptop]=workstation)
declare -A IVL=([server]=15 [workstation]=60) # the module's scrape intervals (s)
declare -A EP AP AGPID LINK LINKPID
start_link() { # start_link HOST: the forwarder from LINK[HOST] to the store
  python3 e2e/bench/fleet_proxy.py 127.0.0.1:${LINK[$1]} 127.0.0.1:$VMP >"$DIR/link-$1.log" 2>&1 &
  LINKPID[$1]=$!
  PIDS+=($!)
  for _ in $(seq 100); do grep -q ready "$DIR/link-$1.log" && return; sleep 0.1; done
  echo "link of $1 did not start" >&2; exit 1
}
for h in "${HOSTS[@]}"; do
  r=${ROLE[$h]}
  EP[$h]=$(port)
  # shellcheck disable=SC2046
  bg bin/panther-exporter --web.listen-address=127.0.0.1:${EP[$h]} $(fixture_exporter_args "$DIR/fixture-$r") \
    >"$DIR/exporter-$h.log" 2>&1
  wait_up ${EP[$h]}
  url=$VM
  if [[ $h == roam-* ]]; then
    LINK[$h]=$(port)
    start_link $h
    url=http://127.0.0.1:${LINK[$h]}
  fi
  cat >"$DIR/scrape-$h.yml" <<EOF
global:
  scrape_interval: ${IVL[$r]}s
scrape_configs:
  - job_name: panther
    static_configs:
      - targets: ["127.0.0.1:${EP[$h]}"]
        labels: {instance: "$h", role: "$r", transport: push}
EOF
  AP[$h]=$(port)
  bg vmagent -promscrape.config="$DIR/scrape-$h.yml" -remoteWrite.url=$url/api/v1/write \
    -remoteWrite.tmpDataPath="$DIR/buffer-$h" -httpListenAddr=127.0.0.1:${AP[$h]} \
    -loggerLevel=WARN >"$DIR/vmagent-$h.log" 2>&1
  AGPID[$h]=${PIDS[-1]}
  wait_up ${AP[$h]}
done
bg $PY watch http://127.0.0.1:$VAP "$DIR/alerts.jsonl"
WATCHPID=${PIDS[-1]}

agent() { echo http://127.0.0.1:${AP[$1]}/metrics; }
buffer() { # buffer HOST: du of its tmpDataPath, bytes of it pending, blocks in memory, all bytes pending
  echo "$(du -sb "$DIR/buffer-$1" | cut -f1) $($PY metric "$(agent $1)" vm_persistentqueue_bytes_pending)" \
    "$($PY metric "$(agent $1)" vmagent_remotewrite_pending_inmemory_blocks)" \
    "$($PY metric "$(agent $1)" vmagent_remotewrite_pending_data_bytes)"
}
# scraped HOST: samples scraped so far, with the 6 series vmagent adds to
# each scrape (up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling, scrape_series_added,
# scrape_timeout_seconds).
scraped() {
  local s n
  s=$($PY metric "$(agent $1)" vm_promscrape_scraped_samples_sum)
  n=$($PY metric "$(agent $1)" vm_promscrape_scrapes_total)
  echo $((s + 6 * n))
}
now_ms() { date +%s%3N; }
secs() { awk "BEGIN {print int($1 * 60)}"; } # minutes (decimals allowed) to seconds

log "warm-up ${WARMUP}m ($DIR)"
sleep "$(secs $WARMUP)"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A S_CUT S_RESTORE
CUT=$(now_ms)
for h in roam-server roam-laptop; do
  S_CUT[$h]=$(scraped $h)
  kill ${LINKPID[$h]}
  wait ${LINKPID[$h]} 2>/dev/null || true
done
log "link cut for ${MINUTES}m (roam-server, roam-laptop)"
echo "t_s host du_bytes on_disk_pending_bytes inmemory_blocks all_pending_bytes samples_scraped" >"$DIR/buffer.log"
end=$((CUT / 1000 + $(secs $MINUTES)))
while [ "$(date +%s)" -lt "$end" ]; do
  for h in roam-server roam-laptop; do
    echo "$(( $(date +%s) - CUT / 1000 )) $h $(buffer $h) $(( $(scraped $h) - S_CUT[$h] ))" >>"$DIR/buffer.log"
  done
  sleep $(( end - $(date +%s) < 60 ? (end - $(date +%s) > 0 ? end - $(date +%s) : 0) : 60 ))
done
declare -A BUF
for h in roam-server roam-laptop; do
  S_RESTORE[$h]=$(scraped $h)
  BUF[$h]=$(buffer $h)
  echo "$(( $(date +%s) - CUT / 1000 )) $h ${BUF[$h]} $(( S_RESTORE[$h] - S_CUT[$h] ))" >>"$DIR/buffer.log"
  start_link $h
done
RESTORE=$(now_ms)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
log "link restored; ${AFTER}m for the backlog and the alerts"
sleep "$(secs $AFTER)"

# The backlog must be gone before counting.
for h in roam-server roam-laptop; do
  for _ in $(seq 300); do
    [ "$($PY metric "$(agent $h)" vmagent_remotewrite_pending_data_bytes)" = 0 ] && break; sleep 1
  done
done

# The end of the count: each vmagent is told (a new configuration without
# targets, SIGHUP) to stop scraping, so its counters are final; then the
# store is polled (3 minutes at most) until it holds what was scraped, as
# a worker may still be waiting out its retry back-off.
declare -A SCR SMP RESULT
kill $WATCHPID # the alerts of the run end here
for h in "${HOSTS[@]}"; do
  echo "scrape_configs: []" >"$DIR/scrape-$h.yml"
  kill -HUP "${AGPID[$h]}"
done
for h in "${HOSTS[@]}"; do
  i=${IVL[${ROLE[$h]}]}
  for _ in $(seq 30); do # the counter must hold still for a whole interval
    a=$(scraped $h); sleep $((i + 2)); [ "$(scraped $h)" = "$a" ] && break
  done
  SCR[$h]=$($PY metric "$(agent $h)" vm_promscrape_scrapes_total)
  SMP[$h]=$(scraped $h)
done
for h in "${HOSTS[@]}"; do
  for _ in $(seq 36); do
    curl -sf "$VM/internal/force_flush" >/dev/null
    RESULT[$h]=$($PY count $VM $h "$(now_ms)" ${SCR[$h]} ${SMP[$h]} ${IVL[${ROLE[$h]}]} $CUT $RESTORE)
    [[ ${RESULT[$h]} == *'"missing": 0,'* ]] && break
    sleep 5
  done
done
LOAD2=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "Outage of ${MINUTES} min, $(date -u +%F), $(nproc) CPUs shared with other engineers' work, every process under nice."
  echo "Load average (1/5/15 min): before the cut $LOAD0, at restore $LOAD1, at the end $LOAD2."
  echo "Warm-up ${WARMUP} min, ${AFTER} min after restore; vmalert evaluation interval $EVAL; victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics)."
  echo
  echo "| host | role | scrape interval | link cut (min) | scrapes | samples expected | stored | missing | duplicates | up samples in outage / slots | longest gap in up (s) | recording-rule samples in outage | samples buffered | at restore: du of buffer dir (bytes) | pending on disk | blocks in memory | all pending (bytes) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for h in "${HOSTS[@]}"; do
    echo "${RESULT[$h]}" | python3 -c "
import json,sys
c=json.load(sys.stdin); roam='$h'.startswith('roam')
b = '${BUF[$h]:-- - - -}'.split()
n = ${S_RESTORE[$h]:-0} - ${S_CUT[$h]:-0}
print(f\"| $h | ${ROLE[$h]} | {c['interval_s']}s | {'$MINUTES' if roam else '0'} | {c['scrapes']} | {c['expected']} | {c['stored']} | {c['missing']} | {c['duplicates']} | {c['up_in_outage']} / {c['outage_slots']} | {c['max_gap_s']:.0f} | {c['recorded_in_outage']} | {n if roam else '-'} | {' | '.join(b)} |\")
"
  done
  echo
  echo "Buffer cost: growth of vmagent_remotewrite_pending_data_bytes per sample scraped, from the first reading with data pending to the restore (blocks a sending worker holds for its retries are not counted as pending, so the marginal growth is the figure):"
  echo
  python3 - "$DIR/buffer.log" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
for h in sorted({r[1] for r in rows}):
    r = [(int(x[5]), int(x[6])) for x in rows if x[1] == h]
    first = next((x for x in r if x[0] > 0), None)
    last = r[-1]
    if first and last[1] > first[1]:
        print(f"- {h}: {last[0] - first[0]} bytes for {last[1] - first[1]} samples: {(last[0] - first[0]) / (last[1] - first[1]):.2f} bytes/sample")
    else:
        print(f"- {h}: nothing pending to measure")
PY
  echo
  echo "Alerts vmalert raised (pending or firing) over the run; phase relative to the cut:"
  echo
  echo "| alert | instance | role | first pending | fired | still active at end | same alert on the control of its role |"
  echo "|---|---|---|---|---|---|---|"
  $PY alerts "$DIR/alerts.jsonl" $((CUT / 1000)) $((RESTORE / 1000))
  echo
  echo "Notifications Alertmanager sent (page: PagerDuty Events API; chat: the warnings webhook):"
  echo
  echo '```'
  cat "$DIR/notifications.log"
  echo '```'
  echo
  echo "Buffer during the cut: seconds after the cut, host, du -sb of -remoteWrite.tmpDataPath, vm_persistentqueue_bytes_pending (on disk), vmagent_remotewrite_pending_inmemory_blocks, vmagent_remotewrite_pending_data_bytes (memory and disk), samples scraped since the cut:"
  echo
  echo '```'
  cat "$DIR/buffer.log"
  echo '```'
} | tee "$OUT"
