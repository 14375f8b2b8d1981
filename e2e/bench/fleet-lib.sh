# Shared set-up of the fleet-mode benchmarks (fleet-outage.sh, fleet-scale.sh):
# a temporary directory cleaned at exit, the exporter built, the two fixture
# hosts, the store (Debian's victoria-metrics), Alertmanager with the
# repository's configuration and a receiver that logs what it is sent, and
# vmalert with the rule files. Source after lib.sh, from the repository root.

# fleet_init NAME: tools checked, DIR made (removed at exit unless KEEP is
# set), every process started with bg killed at exit, exporter built,
# fixture hosts in $DIR/fixture-server and $DIR/fixture-workstation.
fleet_init() {
  local t
  for t in victoria-metrics vmagent vmalert prometheus-alertmanager curl python3; do
    command -v $t >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
  done
  DIR=$(mktemp -d "/tmp/panther-$1-XXXXXX")
  PIDS=()
  trap fleet_cleanup EXIT
  PY="python3 $REPO/e2e/bench/fleet.py"
  make -s build
  for t in server workstation; do fixture_host $t "$DIR/fixture-$t"; done
}
fleet_cleanup() {
  [ ${#PIDS[@]} -eq 0 ] || { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }
  [ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
bg() { nice "$@" & PIDS+=($!); }

# fleet_store: victoria-metrics on VMP (URL in VM, pid in VMPID).
fleet_store() {
  VMP=$(port)
  bg victoria-metrics -storageDataPath="$DIR/vm" -httpListenAddr=127.0.0.1:$VMP -retentionPeriod=1d \
    -loggerLevel=WARN >"$DIR/vm.log" 2>&1
  VMPID=${PIDS[-1]}
  wait_up $VMP
  VM=http://127.0.0.1:$VMP
}

# fleet_alerting RULES EVAL: Alertmanager on AMP with the repository's
# configuration, its PagerDuty and chat receivers pointed at a local receiver
# that logs each page and chat message to $DIR/notifications.log; vmalert on
# VAP (pid VAPID) evaluating RULES (a glob) every EVAL against the store, its
# alert state written back to the store (ALERTS) and restored from it, as
# deployed.
fleet_alerting() {
  AMP=$(port); RCP=$(port)
  printf 'fleetfleetfleetfleetfleetfleet00\n' >"$DIR/routing-key"
  printf 'http://127.0.0.1:%s/chat\n' "$RCP" >"$DIR/chat-url"
  sed -e "s#routing_key_file: .*#routing_key_file: $DIR/routing-key\n        url: http://127.0.0.1:$RCP/v2/enqueue#" \
    -e "s#api_url_file: .*#api_url_file: $DIR/chat-url#" \
    rules/alertmanager/alertmanager.yml >"$DIR/alertmanager.yml"
  python3 - "$RCP" >"$DIR/notifications.log" 2>/dev/null <<'PY' &
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        ev = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        t = time.strftime('%H:%M:%S', time.gmtime())
        if self.path == '/chat':
            for a in ev.get('attachments', []):
                print(f"{t} chat  {a.get('title', '')}", flush=True)
        else:
            p = ev.get('payload', {})
            print(f"{t} page  {ev.get('event_action')} {p.get('source', '')}: {p.get('summary', '')}", flush=True)
        self.send_response(202); self.end_headers(); self.wfile.write(b'{"status":"success"}')
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
  PIDS+=($!)
  bg prometheus-alertmanager --config.file="$DIR/alertmanager.yml" --storage.path="$DIR/am" \
    --web.listen-address=127.0.0.1:$AMP --cluster.listen-address= --log.level=warn >"$DIR/am.log" 2>&1
  wait_up $AMP /-/ready
  VAP=$(port)
  bg vmalert -rule="$1" -datasource.url=$VM -remoteWrite.url=$VM \
    -remoteRead.url=$VM -notifier.url=http://127.0.0.1:$AMP -evaluationInterval=$2 \
    -httpListenAddr=127.0.0.1:$VAP -loggerLevel=WARN >"$DIR/vmalert.log" 2>&1
  VAPID=${PIDS[-1]}
  wait_up $VAP
}
