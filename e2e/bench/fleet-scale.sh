#!/usr/bin/env bash
# Fleet mode (issue 21), scale: N hosts, each a real panther-exporter on a
# fixture tree (no host files read) with its own `instance` and `role`,
# pushed through vmagent into one Debian victoria-metrics, with vmalert
# evaluating every rules/prometheus/*.rules.yml against it (recording rules
# and alert state written back, as deployed) and notifying Debian's
# Alertmanager (rules/alertmanager/alertmanager.yml; its receivers point at
# a local sink).
#
# AGENTS=one [default]: one vmagent scrapes all N targets (a vmagent per
# host is what the module runs, but 200 agents on 2 cores would measure the
# agents, not the store): the store sees the same stream, N hosts' series
# under their own instance/role, at the module's intervals (servers 15s,
# workstations 60s; every WS_EVERY-th host is a workstation).
# AGENTS=per-host: a vmagent per host, each with its own buffer directory,
# as the module deploys it (for a smaller N: what an agent costs).
#
# Measured over WINDOW seconds after WARMUP: the store's ingestion rate
# (vm_rows_inserted_total), active series, its CPU seconds (utime+stime of
# /proc/<pid>/stat) and memory (VmRSS, VmHWM); vmagent's and the exporters'
# CPU beside it; rule evaluation time (vmalert_iteration_duration_seconds
# per group); then every query of the fleet dashboard
# (dashboards/grafana/fleet.json: its panels' instant queries and its two
# variable queries, "All" selected) run QUERY_RUNS times each, p50/p99, and
# the same panel queries as range queries over the last hour (step 60s).
#
#   bash e2e/bench/fleet-scale.sh [HOSTS]
#
# Run from anywhere. HOSTS [200]; WARMUP [240] and WINDOW [360] seconds;
# QUERY_RUNS [50]; WS_EVERY [4]; EVAL [1m] vmalert's evaluation interval;
# SCALE [1] multiplies both scrape intervals (lengthen them when the
# machine cannot keep up, rather than lowering HOSTS);
# OUT [/tmp/panther-fleet-scale.md] where the tables are copied.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. e2e/bench/lib.sh
. e2e/bench/fleet-lib.sh

N=${1:-200}
WARMUP=${WARMUP:-240}
WINDOW=${WINDOW:-360}
QUERY_RUNS=${QUERY_RUNS:-50}
WS_EVERY=${WS_EVERY:-4}
EVAL=${EVAL:-1m}
SCALE=${SCALE:-1}
AGENTS=${AGENTS:-one}
OUT=${OUT:-/tmp/panther-fleet-scale.md}
fleet_init fleet-scale
fleet_store
fleet_alerting "$REPO/rules/prometheus/*.rules.yml" "$EVAL"

# N exporters, each on its own port, each a target with its instance and
# role.
log "starting $N exporters"
EXPIDS=()
# N free ports at once (one python per port is slow under load).
mapfile -t FREE < <(python3 -c "
import socket
ss = [socket.socket() for _ in range($N)]
for s in ss: s.bind(('127.0.0.1', 0))
for s in ss: print(s.getsockname()[1])")
declare -A TARGETS=([server]="" [workstation]="")
declare -A HOSTPORT HOSTROLE
for i in $(seq -f %03g 1 "$N"); do
  r=server
  [ $((10#$i % WS_EVERY)) -eq 0 ] && r=workstation
  p=${FREE[$((10#$i - 1))]}
  # shellcheck disable=SC2046
  bg bin/panther-exporter --web.listen-address=127.0.0.1:$p $(fixture_exporter_args "$DIR/fixture-$r") \
    >"$DIR/exporter-$i.log" 2>&1
  EXPIDS+=(${PIDS[-1]})
  HOSTPORT[$i]=$p; HOSTROLE[$i]=$r
  TARGETS[$r]+="      - targets: [\"127.0.0.1:$p\"]
        labels: {instance: \"host-$i\", role: \"$r\", transport: push}
"
done
for i in "${!HOSTPORT[@]}"; do wait_up ${HOSTPORT[$i]}; done
S_IVL=$((15 * SCALE)); W_IVL=$((60 * SCALE))
AGPIDS=(); AGPORTS=()
agent() { # agent NAME CONFIG: a vmagent pushing to the store
  local p
  p=$(port)
  bg vmagent -promscrape.config="$2" -remoteWrite.url=$VM/api/v1/write \
    -remoteWrite.tmpDataPath="$DIR/buffer-$1" -httpListenAddr=127.0.0.1:$p -loggerLevel=WARN >"$DIR/vmagent-$1.log" 2>&1
  AGPIDS+=(${PIDS[-1]}); AGPORTS+=($p)
  wait_up $p
}
if [ "$AGENTS" = per-host ]; then
  for i in $(seq -f %03g 1 "$N"); do
    r=${HOSTROLE[$i]}
    cat >"$DIR/scrape-$i.yml" <<EOF
scrape_configs:
  - job_name: panther
    scrape_interval: $([ $r = server ] && echo $S_IVL || echo $W_IVL)s
    static_configs:
      - targets: ["127.0.0.1:${HOSTPORT[$i]}"]
        labels: {instance: "host-$i", role: "$r", transport: push}
EOF
    agent $i "$DIR/scrape-$i.yml"
  done
else
  cat >"$DIR/scrape.yml" <<EOF
scrape_configs:
  - job_name: panther
    scrape_interval: ${S_IVL}s
    static_configs:
${TARGETS[server]}
  - job_name: panther-workstations
    scrape_interval: ${W_IVL}s
    static_configs:
${TARGETS[workstation]}
EOF
  agent all "$DIR/scrape.yml"
fi
agents_metric() { local t=0 p; for p in "${AGPORTS[@]}"; do t=$((t + $($PY metric http://127.0.0.1:$p/metrics $1))); done; echo $t; }

# ticks PID...: utime+stime of the processes, in clock ticks.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
kb() { awk "/^$1/ {print \$2}" /proc/$2/status; } # kb VmRSS PID
rss_sum() { local t=0 p; for p in "$@"; do t=$((t + $(kb VmRSS $p))); done; echo $t; }

log "warm-up ${WARMUP}s"
sleep "$WARMUP"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s.%N)
ROWS0=$($PY metric $VM/metrics vm_rows_inserted_total)
VM0=$(ticks $VMPID); AG0=$(ticks "${AGPIDS[@]}"); VA0=$(ticks $VAPID); EX0=$(ticks "${EXPIDS[@]}")
SCR0=$(agents_metric vm_promscrape_scrapes_total)
FAIL0=$(agents_metric vm_promscrape_scrapes_failed_total)
IT_SUM0=$($PY by http://127.0.0.1:$VAP/metrics vmalert_iteration_duration_seconds_sum group)
IT_CNT0=$($PY by http://127.0.0.1:$VAP/metrics vmalert_iteration_duration_seconds_count group)
log "measuring ${WINDOW}s"
sleep "$WINDOW"
T1=$(date +%s.%N)
ROWS1=$($PY metric $VM/metrics vm_rows_inserted_total)
VM1=$(ticks $VMPID); AG1=$(ticks "${AGPIDS[@]}"); VA1=$(ticks $VAPID); EX1=$(ticks "${EXPIDS[@]}")
SCR1=$(agents_metric vm_promscrape_scrapes_total)
FAIL1=$(agents_metric vm_promscrape_scrapes_failed_total)
IT_SUM1=$($PY by http://127.0.0.1:$VAP/metrics vmalert_iteration_duration_seconds_sum group)
IT_CNT1=$($PY by http://127.0.0.1:$VAP/metrics vmalert_iteration_duration_seconds_count group)
RULE_ERR=$(( $($PY metric http://127.0.0.1:$VAP/metrics vmalert_alerting_rules_errors_total) + \
  $($PY metric http://127.0.0.1:$VAP/metrics vmalert_recording_rules_errors_total) ))
ACTIVE=$($PY metric $VM/metrics vm_cache_entries 'type="storage/hour_metric_ids"')
VMRSS=$(kb VmRSS $VMPID); VMHWM=$(kb VmHWM $VMPID)
AGRSS=$(rss_sum "${AGPIDS[@]}"); VARSS=$(kb VmRSS $VAPID); EXRSS=$(rss_sum "${EXPIDS[@]}")
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# The fleet dashboard's queries, "All" hosts and jobs selected (the
# variables' allValue is .*).
AT=$(date +%s)
python3 - "$AT" >"$DIR/queries.tsv" <<'PY'
import json, sys
at = int(sys.argv[1])
d = json.load(open("dashboards/grafana/fleet.json"))
sub = lambda q: q.replace("$job", ".*").replace("$instance", ".*").replace("\n", " ")
for v in d["templating"]["list"]:
    if v["type"] == "query":  # label_values(SELECTOR, LABEL)
        inner = v["query"][len("label_values("):-1]
        sel, label = inner.rsplit(",", 1)
        print(f"variable {v['name']}\tlabel:{label.strip()}\t{sub(sel.strip())}")
def walk(ps):
    for p in ps:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            yield p["title"], sub(t["expr"])
panels = list(walk(d["panels"]))
for title, q in panels:
    print(f"{title}\tinstant\t{q}")
for title, q in panels:
    print(f"{title}\trange:{at - 3600}:60\t{q}")
PY
log "dashboard queries, ${QUERY_RUNS} runs each"
$PY queries $VM "$DIR/queries.tsv" "$QUERY_RUNS" "$AT" >"$DIR/queries.jsonl"
LOAD2=$(cut -d' ' -f1-3 /proc/loadavg)

TCK=$(getconf CLK_TCK)
{
  python3 - <<PY
import json
n, w = $N, $T1 - $T0
tck = $TCK
rows = ($ROWS1 - $ROWS0) / w
ws = n // $WS_EVERY
print(f"{n} hosts ({n - ws} servers scraped every ${S_IVL}s, {ws} workstations every ${W_IVL}s), {'one vmagent scraping them all' if '$AGENTS' == 'one' else 'a vmagent per host'}, $(date -u +%F), $(nproc) CPUs shared with other engineers' work, every process under nice.")
print(f"Load average (1/5/15 min): at the start of the window $LOAD0, at its end $LOAD1, after the queries $LOAD2. Window {w:.0f}s after ${WARMUP}s of warm-up; vmalert evaluation interval $EVAL; victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics).")
print()
print("| figure | value |")
print("|---|---|")
print(f"| scrapes in the window (failed) | {$SCR1 - $SCR0:.0f} ({$FAIL1 - $FAIL0:.0f}) |")
print(f"| ingestion rate (vm_rows_inserted_total) | {rows:.0f} samples/s, {rows / n:.1f} per host |")
print(f"| active series (storage/hour_metric_ids) | {$ACTIVE:.0f} ({$ACTIVE / n:.0f} per host, recording-rule outputs included) |")
vm_cpu = ($VM1 - $VM0) / tck / w
print(f"| victoria-metrics CPU | {vm_cpu:.3f} cores ({vm_cpu * 1000 / rows * 1000:.1f} ms CPU per 1000 samples) |")
print(f"| victoria-metrics memory | RSS {$VMRSS / 1024:.0f} MiB at the end, peak {$VMHWM / 1024:.0f} MiB |")
print(f"| vmagent ({'one for all targets' if '$AGENTS' == 'one' else f'{n} agents together'}) | {($AG1 - $AG0) / tck / w:.3f} cores, RSS {$AGRSS / 1024:.0f} MiB |")
print(f"| vmalert | {($VA1 - $VA0) / tck / w:.3f} cores, RSS {$VARSS / 1024:.0f} MiB, rule evaluation errors {$RULE_ERR} |")
print(f"| {n} exporters together | {($EX1 - $EX0) / tck / w:.3f} cores, RSS {$EXRSS / 1024:.0f} MiB |")
s0, s1, c0, c1 = json.loads('$IT_SUM0'), json.loads('$IT_SUM1'), json.loads('$IT_CNT0'), json.loads('$IT_CNT1')
per = {g: (s1[g] - s0.get(g, 0)) / (c1[g] - c0.get(g, 0)) for g in s1 if c1[g] - c0.get(g, 0) > 0}
print(f"| rule evaluation, all {len(per)} groups, per evaluation round (sum of the groups' mean iteration time) | {sum(per.values()) * 1000:.0f} ms |")
slow = sorted(per.items(), key=lambda kv: -kv[1])[:3]
print(f"| slowest groups (mean iteration) | {', '.join(f'{g} {v * 1000:.0f} ms' for g, v in slow)} |")
print()
print(f"Fleet dashboard queries (dashboards/grafana/fleet.json, All selected), {$QUERY_RUNS} runs each, one after another:")
print()
print("| query | kind | p50 ms | p99 ms | max ms | results | error |")
print("|---|---|---|---|---|---|---|")
for l in open("$DIR/queries.jsonl"):
    q = json.loads(l)
    print(f"| {q['title']} | {q['kind']} | {q['p50_ms']:.1f} | {q['p99_ms']:.1f} | {q['max_ms']:.1f} | {q['results']} | {q['error'] or '-'} |")
PY
} | tee "$OUT"
