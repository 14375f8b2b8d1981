#!/usr/bin/env bash
# make stack: panther-exporter, Debian's Prometheus with rules/prometheus and
# Debian's Alertmanager with rules/alertmanager/alertmanager.yml, all on this
# machine, so a person can watch the rules work. Ctrl-C stops everything.
#
# Pages go to a local stand-in for PagerDuty that prints each event, unless
# PAGERDUTY_ROUTING_KEY_FILE names a file with a real routing key (then they
# go to PagerDuty's Events API v2, as in production); the warnings notifier's
# chat messages go to the same stand-in, unless CHAT_WEBHOOK_URL_FILE names a
# file with a real webhook URL. ROLE (server) is the exporter's role label.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/panther-exporter}
EXPORTER_ADDR=${EXPORTER_ADDR:-127.0.0.1:9567}
PROM_ADDR=${PROM_ADDR:-127.0.0.1:9090}
AM_ADDR=${AM_ADDR:-127.0.0.1:9093}
PD_ADDR=${PD_ADDR:-127.0.0.1:9094}
DIR=${STACK_DIR:-$(mktemp -d /tmp/panther-stack.XXXXXX)}
mkdir -p "$DIR"

for tool in prometheus prometheus-alertmanager promtool amtool python3; do
  command -v "$tool" >/dev/null || { echo "stack: $tool is missing (apt-get install prometheus prometheus-alertmanager python3)"; exit 1; }
done

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stack: stopped; logs and data in $DIR"
}
trap cleanup EXIT INT TERM

# Alertmanager: the example configuration; only the routing key file and,
# without a real key, the PagerDuty URL change.
am_cfg="$DIR/alertmanager.yml"
if [ -n "${PAGERDUTY_ROUTING_KEY_FILE:-}" ]; then
  sed -e "s#routing_key_file: .*#routing_key_file: ${PAGERDUTY_ROUTING_KEY_FILE}#" \
    -e "s#api_url_file: .*#api_url_file: ${CHAT_WEBHOOK_URL_FILE:-/run/secrets/alertmanager/chat-webhook-url}#" \
    rules/alertmanager/alertmanager.yml > "$am_cfg"
else
  printf 'stackstackstackstackstackstack00\n' > "$DIR/routing-key"
  # The warnings notifier's chat webhook goes to the same stand-in.
  printf 'http://%s/chat\n' "$PD_ADDR" > "$DIR/chat-webhook-url"
  sed -e "s#routing_key_file: .*#routing_key_file: $DIR/routing-key\n        url: http://$PD_ADDR/v2/enqueue#" \
    -e "s#api_url_file: .*#api_url_file: $DIR/chat-webhook-url#" \
    rules/alertmanager/alertmanager.yml > "$am_cfg"
  python3 - "$PD_ADDR" > "$DIR/pagerduty.log" 2>&1 <<'PY' &
import http.server, json, sys
host, port = sys.argv[1].rsplit(':', 1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        ev = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        if self.path == '/chat':
            for a in ev.get('attachments', []):
                print(f"chat     {a.get('title', '')}", flush=True)
            self.send_response(200); self.end_headers(); self.wfile.write(b'ok'); return
        p = ev.get('payload', {})
        print(f"{ev.get('event_action'):8} {p.get('severity', ''):8} {p.get('source', '')}: {p.get('summary', '')}", flush=True)
        body = json.dumps({"status": "success", "message": "Event processed", "dedup_key": ev.get('dedup_key')}).encode()
        self.send_response(202); self.send_header('Content-Type', 'application/json'); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((host, int(port)), H).serve_forever()
PY
  pids+=($!)
fi
amtool check-config "$am_cfg" >/dev/null

cat > "$DIR/prometheus.yml" <<YML
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
$(for f in "$PWD"/rules/prometheus/*.rules.yml; do echo "  - $f"; done)
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['$AM_ADDR']
scrape_configs:
  - job_name: panther
    static_configs:
      - targets: ['$EXPORTER_ADDR']
        labels: {instance: '$(hostname)', role: '${ROLE:-server}'}
YML
promtool check config "$DIR/prometheus.yml" >/dev/null

"$BIN" --web.listen-address="$EXPORTER_ADDR" ${EXPORTER_ARGS:-} > "$DIR/exporter.log" 2>&1 &
pids+=($!)
prometheus-alertmanager --config.file="$am_cfg" --storage.path="$DIR/am" \
  --web.listen-address="$AM_ADDR" --cluster.listen-address= > "$DIR/alertmanager.log" 2>&1 &
pids+=($!)
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prom" \
  --web.listen-address="$PROM_ADDR" > "$DIR/prometheus.log" 2>&1 &
pids+=($!)

for url in "http://$EXPORTER_ADDR/metrics" "http://$PROM_ADDR/-/ready" "http://$AM_ADDR/-/ready"; do
  for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done
  curl -sf -o /dev/null "$url" || { echo "stack: $url does not answer; logs in $DIR"; exit 1; }
done

cat <<TXT
stack: running (logs in $DIR; Ctrl-C stops it)
  panther-exporter  http://$EXPORTER_ADDR/
  Prometheus        http://$PROM_ADDR/alerts   (rules: http://$PROM_ADDR/rules)
  Alertmanager      http://$AM_ADDR/
TXT
if [ -z "${PAGERDUTY_ROUTING_KEY_FILE:-}" ]; then
  echo "  PagerDuty and chat stand-in on http://$PD_ADDR/v2/enqueue and /chat; what it receives:"
  tail -f "$DIR/pagerduty.log" &
  pids+=($!)
fi
wait "${pids[@]}"
