#!/usr/bin/env bash
# Cost of the journal collector while the journal grows: real journal files
# written by systemd-journal-remote from export format at a fixed rate
# (1,000 entries a second by default: 4% err, 1% kernel lines of every
# class, the rest info), followed by panther-exporter's journal collector
# (--collector.disable-defaults --collector.journal) through the real
# journalctl. Printed per run: entries written and counted, the CPU seconds
# per second and peak RSS (VmHWM) of the exporter and of its journalctl
# child, the exporter's RSS every 10 s (bounded?), and the scrape cost
# (scrapebench, 1000 scrapes of the journal collector alone).
#
#   bash e2e/bench/journal.sh [SECONDS] [RATE...]    # default 60 1000 10000
#
# A rate the writer cannot reach is written as fast as it can ("max").
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
shift || true
RATES=("${@:-1000 10000}")
# shellcheck source=lib.sh
source e2e/bench/lib.sh
DIR=$(mktemp -d /tmp/panther-journal-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
build_bench

cpu() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; } # utime+stime, USER_HZ=100
hwm() { awk '/VmHWM/{print $2/1024}' "/proc/$1/status"; }
rss() { awk '/VmRSS/{print $2/1024}' "/proc/$1/status"; }

for rate in ${RATES[*]}; do
  J="$DIR/journal-$rate"; mkdir -p "$J"
  # The writer: export format at $rate entries/s into systemd-journal-remote.
  python3 - "$rate" "$SECS" 2>"$DIR/writer-$rate.out" <<'PY' | /lib/systemd/systemd-journal-remote --output="$J/system.journal" --split-mode=none - 2>/dev/null &
import sys, time, os, uuid
rate, secs = int(sys.argv[1]), int(sys.argv[2])
boot = uuid.uuid4().hex
kernel = ["Out of memory: Killed process 1234 (stress-ng) total-vm:1048576kB, anon-rss:1000000kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:2000kB oom_score_adj:0",
          "BTRFS error (device sda1): bdev /dev/sda1 errs: wr 0, rd 0, flush 0, corrupt 1, gen 0",
          "I/O error, dev nvme0n1, sector 1953525120 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2",
          "nginx[2371]: segfault at 0 ip 000055d0c3a1b2c4 sp 00007ffd4b6f8e10 error 4 in nginx[55d0c3a00000+f7000]",
          "INFO: task btrfs-transacti:412 blocked for more than 120 seconds.",
          "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:345]",
          "mce: [Hardware Error]: Machine check events logged"]
units = ["unit%02d.service" % i for i in range(60)]
out = sys.stdout.buffer
n, t0 = 0, time.time()
end = t0 + secs
batch = max(1, rate // 50)
while time.time() < end:
    buf = []
    for _ in range(batch):
        n += 1
        now = int(time.time() * 1e6)
        head = f"__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP={now - int(t0*1e6) + 1}\n_BOOT_ID={boot}\n_HOSTNAME=bench\n"
        if n % 100 == 0:
            buf.append(head + f"_TRANSPORT=kernel\nPRIORITY=3\nSYSLOG_IDENTIFIER=kernel\nMESSAGE={kernel[(n // 100) % len(kernel)]}\n\n")
        elif n % 25 == 0:
            buf.append(head + f"_TRANSPORT=journal\nPRIORITY=3\n_SYSTEMD_UNIT={units[n % len(units)]}\nMESSAGE=request {n} failed: connection refused\n\n")
        else:
            buf.append(head + f"_TRANSPORT=journal\nPRIORITY=6\n_SYSTEMD_UNIT={units[n % len(units)]}\nMESSAGE=request {n} served in 12 ms\n\n")
    out.write("".join(buf).encode())
    out.flush()
    due = t0 + n / rate
    if due > time.time():
        time.sleep(due - time.time())
print(n, file=sys.stderr)
sys.stderr.flush()
PY
  WRITER=$!
  # journalctl refuses to follow a journal without entries: start once some are there.
  for _ in $(seq 100); do [ -s "$J/system.journal" ] && journalctl --directory="$J" -n1 -q >/dev/null 2>&1 && break; sleep 0.1; done
  PORT=$(port)
  bin/panther-exporter --web.listen-address=127.0.0.1:"$PORT" --log.level=warn --collector.disable-defaults \
    --collector.journal --collector.journal.directory="$J" --collector.journal.state-file="$DIR/state-$rate" &
  EXP=$!; PIDS+=("$EXP")
  wait_up "$PORT"
  JC=
  for _ in $(seq 100); do JC=$(pgrep -P "$EXP" -x journalctl || true); [ -n "$JC" ] && break; sleep 0.1; done
  [ -n "$JC" ] || { echo "no journalctl under the exporter" >&2; exit 1; }
  log "rate $rate/s for ${SECS}s: exporter $EXP, journalctl ${JC:-?}"
  # Entries from before the exporter's first start are history it does not count.
  before=$(journalctl --directory="$J" --output=cat --output-fields=_BOOT_ID 2>/dev/null | wc -l)
  c0=$(cpu "$EXP"); j0=$(cpu "$JC"); t0=$(date +%s.%N)
  samples=()
  while kill -0 "$WRITER" 2>/dev/null; do
    sleep 10
    kill -0 "$EXP" || { echo "exporter died" >&2; exit 1; }
    samples+=("$(rss "$EXP")")
  done
  wait "$WRITER" || true
  t1=$(date +%s.%N); c1=$(cpu "$EXP"); j1=$(cpu "$JC")
  written=$(journalctl --directory="$J" --output=cat --output-fields=_BOOT_ID 2>/dev/null | wc -l)
  # Let the reader catch up, then count what it read.
  for _ in $(seq 120); do
    read_n=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^panther_journal_read_entries_total/{print $2}')
    [ "${read_n%.*}" -ge $((written - before)) ] 2>/dev/null && break; sleep 1
  done
  echo "rate=$rate written=$written (before the exporter started: $before) read=$read_n seconds=$(echo "$t1 - $t0" | bc) rate_achieved=$(echo "$written / ($t1 - $t0)" | bc)/s"
  echo "  exporter: cpu_per_s=$(echo "scale=4; ($c1 - $c0) / ($t1 - $t0)" | bc) peak_rss_MiB=$(hwm "$EXP") rss_every_10s_MiB=${samples[*]}"
  echo "  journalctl: cpu_per_s=$(echo "scale=4; ($j1 - $j0) / ($t1 - $t0)" | bc) peak_rss_MiB=$(hwm "$JC")"
  curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^panther_(kernel_events_total|journal_entries_total\{.*unit="(other|kernel)")' | sed 's/^/  /'
  bin/scrapebench -n 1000 journal="http://127.0.0.1:$PORT/metrics?collect[]=journal@$EXP" | sed 's/^/  /'
  kill "$EXP"; wait "$EXP" 2>/dev/null || true
done
