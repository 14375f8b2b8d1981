//go:build e2e

package e2e

// The alert rules of rules/prometheus and the Alertmanager example of
// rules/alertmanager on the real stack: Debian's Prometheus evaluates the
// rule files (only their `for:` durations scaled down), Debian's
// Alertmanager routes with the example configuration (only the routing key
// file and the PagerDuty URL changed) to a fake PagerDuty Events API v2
// that checks every request as the real one does. Real faults are injected
// on real parts (an exporter killed, a collector's root broken, a corrupted
// Btrfs, a crash-looping container, a stopped Podman service, a NixOS host
// left unrebooted, a stuck maintenance timer whose job failed, served by the
// fake systemd manager of the boot tests); each must page (critical) or reach Alertmanager's
// "warnings" receiver (warning) with the right summary, then resolve once
// the fault is cleared. On the healthy stack nothing fires.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

// forScale divides every `for:` of the rules for the run: 5m becomes 5s.
const forScale = 60

// scaledRules copies rules/prometheus/*.rules.yml into dir with every
// `for:` divided by forScale (at least 1s), nothing else changed, and
// returns the copies' paths.
func scaledRules(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob("../rules/prometheus/*.rules.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	forLine := regexp.MustCompile(`(?m)^(\s+for:\s*)(\S+)\s*$`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bad error
		scaled := forLine.ReplaceAllStringFunc(string(b), func(line string) string {
			m := forLine.FindStringSubmatch(line)
			d, err := model.ParseDuration(m[2])
			if err != nil {
				bad = fmt.Errorf("%s: %q: %v", f, line, err)
				return line
			}
			s := time.Duration(d) / forScale
			if s < time.Second {
				s = time.Second
			}
			return m[1] + model.Duration(s).String()
		})
		if bad != nil {
			t.Fatal(bad)
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, []byte(scaled), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// pdEvent is a PagerDuty Events API v2 request body
// (https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty).
type pdEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     *struct {
		Summary       string         `json:"summary"`
		Source        string         `json:"source"`
		Severity      string         `json:"severity"`
		Timestamp     string         `json:"timestamp"`
		Component     string         `json:"component"`
		Group         string         `json:"group"`
		Class         string         `json:"class"`
		CustomDetails map[string]any `json:"custom_details"`
	} `json:"payload"`
	Client    string `json:"client"`
	ClientURL string `json:"client_url"`
	Images    []struct {
		Src  string `json:"src"`
		Href string `json:"href"`
		Alt  string `json:"alt"`
	} `json:"images"`
	Links []struct {
		Href string `json:"href"`
		Text string `json:"text"`
	} `json:"links"`
	Received time.Time `json:"-"`
}

// FakePagerDuty answers POST /v2/enqueue as PagerDuty's Events API v2
// does: 202 with {"status":"success","message":"Event processed",
// "dedup_key":...} for a valid event, 400 with {"status":"invalid event",
// "message":"Event object is invalid","errors":[...]} otherwise (and the
// test fails: Alertmanager must never send an invalid event).
type FakePagerDuty struct {
	*httptest.Server
	t          testing.TB
	routingKey string
	mu         sync.Mutex
	events     []pdEvent
}

func startFakePagerDuty(t testing.TB, routingKey string) *FakePagerDuty {
	f := &FakePagerDuty{t: t, routingKey: routingKey}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *FakePagerDuty) URL() string { return f.Server.URL + "/v2/enqueue" }

func (f *FakePagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	}
	if r.URL.Path != "/v2/enqueue" || r.Method != http.MethodPost {
		reply(http.StatusNotFound, map[string]any{"status": "not found"})
		f.t.Errorf("fake PagerDuty: %s %s", r.Method, r.URL.Path)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var ev pdEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var errs []string
	if err := dec.Decode(&ev); err != nil {
		errs = append(errs, "Event object is not valid JSON: "+err.Error())
	} else {
		errs = validatePD(ev, f.routingKey)
	}
	if len(errs) > 0 {
		f.t.Errorf("fake PagerDuty: invalid event %s: %v", body, errs)
		reply(http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
		return
	}
	ev.Received = time.Now()
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
	reply(http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

// validatePD checks an event the way the Events API v2 does.
func validatePD(ev pdEvent, wantKey string) []string {
	var errs []string
	if len(ev.RoutingKey) != 32 {
		errs = append(errs, fmt.Sprintf("Length of 'routing_key' is incorrect (should be 32 characters): %d", len(ev.RoutingKey)))
	} else if ev.RoutingKey != wantKey {
		errs = append(errs, "routing_key is not the integration key of the service")
	}
	switch ev.EventAction {
	case "trigger", "acknowledge", "resolve":
	default:
		errs = append(errs, fmt.Sprintf("'event_action' is invalid (must be one of: trigger, acknowledge, resolve): %q", ev.EventAction))
	}
	if ev.DedupKey == "" || len(ev.DedupKey) > 255 {
		errs = append(errs, fmt.Sprintf("'dedup_key' missing or longer than 255 characters: %q", ev.DedupKey))
	}
	if ev.EventAction == "trigger" {
		if ev.Payload == nil {
			return append(errs, "'payload' is missing")
		}
		if ev.Payload.Summary == "" || len(ev.Payload.Summary) > 1024 {
			errs = append(errs, "'payload.summary' is missing or longer than 1024 characters")
		}
		if ev.Payload.Source == "" {
			errs = append(errs, "'payload.source' is missing")
		}
		switch ev.Payload.Severity {
		case "critical", "error", "warning", "info":
		default:
			errs = append(errs, fmt.Sprintf("'payload.severity' is invalid (must be one of: critical, error, warning, info): %q", ev.Payload.Severity))
		}
		if ev.Payload.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339, ev.Payload.Timestamp); err != nil {
				errs = append(errs, "'payload.timestamp' is not ISO 8601")
			}
		}
	}
	for _, l := range ev.Links {
		if l.Href == "" {
			errs = append(errs, "'links[].href' is missing")
		}
	}
	return errs
}

// Events returns a copy of what was received.
func (f *FakePagerDuty) Events() []pdEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pdEvent(nil), f.events...)
}

// Await polls until an event with action and summary arrived and returns it.
func (f *FakePagerDuty) Await(t *testing.T, timeout time.Duration, action, summary string) pdEvent {
	t.Helper()
	var got pdEvent
	eventually(t, timeout, fmt.Sprintf("PagerDuty %s %q", action, summary), func() error {
		for _, ev := range f.Events() {
			if ev.EventAction == action && ev.Payload != nil && ev.Payload.Summary == summary {
				got = ev
				return nil
			}
		}
		return fmt.Errorf("not received; have %s", f.summary())
	})
	return got
}

func (f *FakePagerDuty) summary() string {
	var s []string
	for _, ev := range f.Events() {
		sum := ""
		if ev.Payload != nil {
			sum = ev.Payload.Summary
		}
		s = append(s, ev.EventAction+" "+sum)
	}
	return fmt.Sprintf("%q", s)
}

// FakeChat is a chat's incoming webhook in Slack's format (Slack,
// Mattermost, Rocket.Chat), where the example sends the "warnings"
// receiver's notifications. It answers 200 "ok" as Slack does and keeps each
// message's attachment titles.
type FakeChat struct {
	*httptest.Server
	t      testing.TB
	mu     sync.Mutex
	titles []string
}

func startFakeChat(t testing.TB) *FakeChat {
	c := &FakeChat{t: t}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *FakeChat) URL() string { return c.Server.URL + "/hooks/e2e" }

func (c *FakeChat) serve(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Attachments []struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"attachments"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hooks/e2e" {
		c.t.Errorf("fake chat: %s %s", r.Method, r.URL.Path)
		http.Error(w, "no such hook", http.StatusNotFound)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || len(msg.Attachments) == 0 || msg.Attachments[0].Title == "" {
		c.t.Errorf("fake chat: not a Slack-format message with a titled attachment: %v %+v", err, msg)
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, a := range msg.Attachments {
		c.titles = append(c.titles, a.Title)
	}
	c.mu.Unlock()
	io.WriteString(w, "ok")
}

// Titles returns the titles of every message received so far.
func (c *FakeChat) Titles() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.titles...)
}

// Await polls until a message whose title contains all of parts arrived.
func (c *FakeChat) Await(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	var got string
	eventually(t, timeout, fmt.Sprintf("chat message with %q", parts), func() error {
	next:
		for _, title := range c.Titles() {
			for _, p := range parts {
				if !strings.Contains(title, p) {
					continue next
				}
			}
			got = title
			return nil
		}
		return fmt.Errorf("not received; have %q", c.Titles())
	})
	return got
}

// Alertmanager is a running Debian prometheus-alertmanager.
type Alertmanager struct {
	*Process
	URL, Addr string
}

// startAlertmanager runs prometheus-alertmanager with the example
// configuration, changed only in its secret files (the PagerDuty routing
// key, the chat webhook's URL) and the PagerDuty URL.
// startPagingPath starts the receivers of both notifiers and a real
// Alertmanager with the repository's routing: the fake PagerDuty (its
// routing key read from a file, as OpNix/agenix deliver it) and the fake
// chat of the warnings notifier.
func startPagingPath(t *testing.T) (*FakePagerDuty, *FakeChat, *Alertmanager) {
	t.Helper()
	const routingKey = "e2e0panther0routing0key000000032"
	keyFile := filepath.Join(t.TempDir(), "pagerduty-routing-key")
	if err := os.WriteFile(keyFile, []byte(routingKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pd := startFakePagerDuty(t, routingKey)
	chat := startFakeChat(t)
	return pd, chat, startAlertmanager(t, pd, keyFile, chat)
}

func startAlertmanager(t *testing.T, pd *FakePagerDuty, keyFile string, chat *FakeChat) *Alertmanager {
	t.Helper()
	bin := requireTool(t, "prometheus-alertmanager")
	amtool := requireTool(t, "amtool")
	b, err := os.ReadFile("../rules/alertmanager/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`(?m)^(\s+)(- )?routing_key_file: .*$`)
	if n := len(keyLine.FindAllString(string(b), -1)); n != 1 {
		t.Fatalf("example has %d routing_key_file lines, want 1", n)
	}
	cfg := keyLine.ReplaceAllStringFunc(string(b), func(l string) string {
		m := keyLine.FindStringSubmatch(l)
		ind := m[1] + strings.Repeat(" ", len(m[2]))
		return m[1] + m[2] + "routing_key_file: " + keyFile + "\n" + ind + "url: " + pd.URL()
	})
	// The chat webhook's URL is a secret: the example reads it from a file.
	chatFile := filepath.Join(t.TempDir(), "chat-webhook-url")
	if err := os.WriteFile(chatFile, []byte(chat.URL()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	urlLine := regexp.MustCompile(`(?m)^(\s+)(- )?api_url_file: .*$`)
	if n := len(urlLine.FindAllString(cfg, -1)); n != 1 {
		t.Fatalf("example has %d api_url_file lines, want 1", n)
	}
	cfg = urlLine.ReplaceAllString(cfg, "${1}${2}api_url_file: "+chatFile)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, amtool, "check-config", cfgPath)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	am := &Alertmanager{Addr: addr, URL: "http://" + addr}
	am.Process = startProcess(t, nil, bin, "--config.file="+cfgPath, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	waitReady(t, am.Process, "alertmanager", am.URL, 30*time.Second)
	return am
}

// amAlert is an alert of Alertmanager's API v2.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Receivers   []struct {
		Name string `json:"name"`
	} `json:"receivers"`
	Status struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// Alerts returns the active (not resolved) alerts Alertmanager holds,
// inhibited and silenced ones included.
func (am *Alertmanager) Alerts() ([]amAlert, error) {
	resp, err := http.Get(am.URL + "/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

func (am *Alertmanager) find(alertname, instance string) (*amAlert, error) {
	alerts, err := am.Alerts()
	if err != nil {
		return nil, err
	}
	for i, a := range alerts {
		if a.Labels["alertname"] == alertname && a.Labels["instance"] == instance {
			return &alerts[i], nil
		}
	}
	return nil, nil
}

// alertTarget is an exporter as the monitoring server knows it: its
// address and its role target label.
type alertTarget struct{ Addr, Role string }

// servers gives every address the role server.
func servers(addrs ...string) []alertTarget {
	var out []alertTarget
	for _, a := range addrs {
		out = append(out, alertTarget{a, "server"})
	}
	return out
}

// rulesAndAlerting is the head of a Prometheus configuration that scrapes
// and evaluates every second, loads the rule files and notifies am.
func rulesAndAlerting(rules []string, am *Alertmanager) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n")
	for _, f := range rules {
		fmt.Fprintf(&b, "  - %q\n", f)
	}
	fmt.Fprintf(&b, "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", am.Addr)
	return b.String()
}

// startAlertPrometheus runs Debian's prometheus on the exporters with the
// scaled rules, sending to am, in a scrape job of the given name (the rules
// must not depend on it). Btrfs series of filesystems other than keepUUID
// (other tests' filesystems on this machine) are dropped at scrape time.
func startAlertPrometheus(t *testing.T, job string, targets []alertTarget, rules []string, am *Alertmanager, keepUUID string, extraRelabel ...string) *Prometheus {
	t.Helper()
	bin := requireTool(t, "prometheus")
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(rulesAndAlerting(rules, am))
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: %q\n    static_configs:\n", job)
	for _, tg := range targets {
		fmt.Fprintf(&b, "      - targets: [%q]\n        labels: {role: %q}\n", tg.Addr, tg.Role)
	}
	fmt.Fprintf(&b, `    metric_relabel_configs:
      - source_labels: [uuid]
        regex: '|%s'
        target_label: __tmp_mine
        replacement: 'yes'
      - source_labels: [__tmp_mine]
        regex: 'yes'
        action: keep
      - regex: __tmp_mine
        action: labeldrop
`, regexp.QuoteMeta(keepUUID))
	for _, r := range extraRelabel {
		b.WriteString(r)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &Prometheus{
		Process: startProcess(t, nil, bin, "--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr),
		URL: "http://" + addr, Dir: dir,
	}
	waitReady(t, p.Process, "prometheus", p.URL, 60*time.Second)
	return p
}

// restartableExporter runs the exporter on a fixed address so that it can
// be killed and started again where Prometheus scrapes it.
type restartableExporter struct {
	*Exporter
	args    []string
	release func() // of the port held while it is killed
}

func startRestartableExporter(t *testing.T, args ...string) *restartableExporter {
	e := startExporter(t, args...)
	return &restartableExporter{Exporter: e, args: args}
}

// Kill kills it and holds its port until Start (holdPort): a host whose
// exporter is down, whose address no other exporter takes meanwhile.
func (r *restartableExporter) Kill(t *testing.T) {
	t.Helper()
	r.Exporter.Kill()
	r.release = holdPort(t, r.Addr)
}

// Start starts it again on its address, as a process of test t.
func (r *restartableExporter) Start(t *testing.T) {
	t.Helper()
	if r.release != nil {
		r.release()
		r.release = nil
	}
	all := append([]string{"--web.listen-address=" + r.Addr, "--log.level=debug"}, r.args...)
	r.Exporter.Process = startProcess(t, nil, binary(t), all...)
	eventually(t, 20*time.Second, "exporter answers again on "+r.Addr, func() error {
		_, err := r.Get("/metrics")
		return err
	})
}

// promAlert returns the annotations of the alert alertname on instance that
// Prometheus holds in state "firing", or nil.
func promAlert(p *Prometheus, alertname, instance string) (map[string]any, error) {
	alerts, err := p.Alerts()
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		l, _ := a["labels"].(map[string]any)
		if l["alertname"] == alertname && l["instance"] == instance && a["state"] == "firing" {
			return a, nil
		}
	}
	return nil, nil
}

func TestAlertsEndToEnd(t *testing.T) {
	beside(t)
	requireRoot(t)
	requireTool(t, "promtool")

	// The parts with real faults to inject.
	fs := newBtrfs(t)
	if err := os.MkdirAll(fs.Path("data"), 0o755); err != nil {
		t.Fatal(err)
	}
	fs.WriteFile("data/file", 256<<10)

	nixBroken := newNixRoot(t, 200) // its collector will fail
	nixReboot := newNixRoot(t, 200) // will need a reboot for days
	nixBroken.Reboot()              // healthy: booted = current
	nixReboot.Reboot()              //
	crashSvc := startPodmanService(t, "crash")
	podmanImage(t, crashSvc)
	crashSvc.Run(t, "steady", nil, "sleep", "1000000")
	stopSvc := startPodmanService(t, "stop")
	// systemd cannot run here: the fake manager of the boot tests on a
	// private dbus-daemon, seeded as a server whose maintenance timers are
	// healthy: last run an hour ago, next due in an hour, last runs successful.
	bus := startDBus(t)
	sd := startFakeSystemd(t, bus, healthyServerSeed())

	down := startRestartableExporter(t, "--collector.disable-defaults")
	collectorX := startExporter(t, "--collector.disable-defaults", "--collector.nix", "--path.rootfs="+nixBroken.Dir)
	rebootX := startExporter(t, "--collector.disable-defaults", "--collector.nix", "--path.rootfs="+nixReboot.Dir)
	btrfsX := startExporter(t, "--collector.disable-defaults", "--collector.btrfs", "--collector.btrfs.subvolume-interval=0s")
	crashX := startExporter(t, "--collector.disable-defaults", "--collector.podman",
		"--collector.podman.socket="+crashSvc.Flag(), "--collector.podman.list-interval=1s")
	stopX := startExporter(t, "--collector.disable-defaults", "--collector.podman",
		"--collector.podman.socket="+stopSvc.Flag(), "--collector.podman.list-interval=1s")
	bootX := startBootExporter(t, bus, "--collector.boot.unit-refresh-interval=1s")
	targets := []string{down.Addr, collectorX.Addr, rebootX.Addr, btrfsX.Addr, crashX.Addr, stopX.Addr, bootX.Addr}

	// The paging path.
	pd, chat, am := startPagingPath(t)
	prom := startAlertPrometheus(t, "panther", servers(targets...), scaledRules(t, t.TempDir()), am, fs.UUID)

	// Healthy: every exporter scraped with data, every rule loaded, and
	// for 45 s (longer than Alertmanager's group_wait and the scaled `for`
	// of the fault alerts) no alert firing, nothing in Alertmanager, no
	// page, no chat message.
	for _, q := range []string{
		fmt.Sprintf(`count(up{job="panther"} == 1) == %d`, len(targets)),
		fmt.Sprintf(`panther_btrfs_device_errors_total{uuid=%q}`, fs.UUID),
		`panther_podman_up{socket="crash"} == 1`, `panther_podman_up{socket="stop"} == 1`,
		`panther_podman_container_info{name="steady"}`,
		fmt.Sprintf(`panther_nixos_reboot_required{instance=%q}`, rebootX.Addr),
		fmt.Sprintf(`panther_scrape_collector_success{instance=%q} == 1`, collectorX.Addr),
		fmt.Sprintf(`panther_systemd_timer_next_trigger_timestamp_seconds{instance=%q, unit="nix-gc.timer"}`, bootX.Addr),
		fmt.Sprintf(`panther_systemd_timer_last_result{instance=%q, unit="nix-gc.timer", result="success"}`, bootX.Addr),
	} {
		prom.WaitForSeries(t, 60*time.Second, q)
	}
	// Alert state is judged only as of an evaluation that saw all of the
	// above: the first evaluation can run before the first scrape and leave
	// ExporterAbsent pending until the next one.
	prom.WaitRulesEvaluated(t, 30*time.Second, time.Now())
	quiet := watchQuiet(prom, am, pd, chat)
	time.Sleep(45 * time.Second) // the window the watcher samples
	if v := quiet.Stop(t); len(v) != 0 {
		t.Fatalf("healthy stack:\n%s", strings.Join(v, "\n"))
	}
	t.Logf("healthy stack: no alert firing, nothing in Alertmanager, no page, no chat message for 45 s on %d exporters", len(targets))

	// Faults: all injected at once, each on its own exporter (its own
	// instance, so its own Alertmanager group), then all cleared at once. A
	// resolve reaches PagerDuty at the group's next group_interval (5m in
	// the example), hence the resolve timeout.
	const fireTimeout, resolveTimeout = 2 * time.Minute, 7 * time.Minute
	nixProfile := nixBroken.Path("nix/var/nix/profiles/system")
	nixTarget, err := os.Readlink(nixProfile)
	if err != nil {
		t.Fatal(err)
	}
	var corruptDev string // the loop device btrfs-progs counts the corruption on
	faults := []*alertFault{
		{
			name:   "exporter killed",
			inject: func(t *testing.T) { down.Kill(t) },
			clear:  func(t *testing.T) { down.Start(t) },
			expect: []alertExpect{{alert: "ExporterDown", instance: down.Addr, critical: true,
				summary: func() string { return "panther-exporter on " + down.Addr + " is down" }}},
		},
		{
			name: "collector root broken",
			inject: func(t *testing.T) { // a dangling system profile: the nix collector cannot resolve it
				os.Remove(nixProfile)
				if err := os.Symlink("system-99-link", nixProfile); err != nil {
					t.Fatal(err)
				}
			},
			clear: func(t *testing.T) {
				os.Remove(nixProfile)
				if err := os.Symlink(nixTarget, nixProfile); err != nil {
					t.Fatal(err)
				}
			},
			expect: []alertExpect{{alert: "CollectorFailing", instance: collectorX.Addr,
				summary: func() string { return "Collector nix fails on " + collectorX.Addr }}},
		},
		{
			name: "NixOS generation four days old, never booted",
			inject: func(t *testing.T) {
				booted := nixReboot.Path("run/booted-system")
				os.Remove(booted)
				if err := os.Symlink(nixReboot.Booted, booted); err != nil {
					t.Fatal(err)
				}
				old := time.Now().Add(-4 * 24 * time.Hour).Format("200601021504.05")
				runCmd(t, "touch", "-h", "-t", old, nixReboot.Path("nix/var/nix/profiles/system-2-link"))
			},
			clear: func(t *testing.T) { nixReboot.Reboot() },
			expect: []alertExpect{{alert: "NixosRebootRequired", instance: rebootX.Addr,
				summary: func() string { return rebootX.Addr + " has needed a reboot for days" }}},
		},
		{
			name: "corrupted Btrfs",
			inject: func(t *testing.T) {
				fs.Corrupt("data/file")
				fs.Scrub()
				for d, s := range btrfsDeviceStats(t, fs.Mnt) {
					if s["corruption"] > 0 {
						corruptDev = d
					}
				}
				if corruptDev == "" {
					t.Fatalf("btrfs device stats shows no corruption after dd and scrub")
				}
			},
			clear: func(t *testing.T) {
				// The scrub repaired it from the raid1 copy; acknowledge by
				// resetting the counters and scrub again to a clean result.
				runCmd(t, "btrfs", "device", "stats", "-z", fs.Mnt)
				fs.Scrub()
			},
			expect: []alertExpect{
				{alert: "BtrfsDeviceErrorsGrowing", instance: btrfsX.Addr, critical: true,
					summary: func() string { return "Btrfs corruption errors growing on " + corruptDev + " of " + btrfsX.Addr }},
				{alert: "BtrfsScrubErrors", instance: btrfsX.Addr,
					summary: func() string { return "Btrfs scrub found errors on " + btrfsX.Addr }},
			},
		},
		{
			name: "crash-looping container",
			inject: func(t *testing.T) {
				crashSvc.Run(t, "crashy", []string{"--restart=always"}, "sh", "-c", "sleep 1; exit 1")
			},
			clear: func(t *testing.T) { crashSvc.Remove(t, "crashy") },
			expect: []alertExpect{{alert: "PodmanContainerCrashLooping", instance: crashX.Addr, critical: true,
				summary: func() string { return "Container crashy on " + crashX.Addr + " is crash-looping" }}},
		},
		{
			name: "maintenance timer stuck and its job failed",
			inject: func(t *testing.T) {
				sd.UpdateUnit("nix-gc.timer", func(u *fakesystemd.Unit) { u.NextElapseRealtime = usecAt(time.Now().Add(-2 * time.Hour)) })
				sd.Fail("nix-gc.service", "exit-code")
			},
			clear: func(t *testing.T) {
				sd.UpdateUnit("nix-gc.timer", func(u *fakesystemd.Unit) {
					u.LastTriggerUSec, u.NextElapseRealtime = usecAt(time.Now()), usecAt(time.Now().Add(24*time.Hour))
				})
				sd.UpdateUnit("nix-gc.service", func(u *fakesystemd.Unit) {
					u.ActiveState, u.SubState, u.Result = "inactive", "dead", "success"
				})
			},
			expect: []alertExpect{
				{alert: "MaintenanceTimerNotRun", instance: bootX.Addr,
					summary: func() string { return "Timer nix-gc.timer on " + bootX.Addr + " has not run when it should" }},
				{alert: "MaintenanceJobFailed", instance: bootX.Addr,
					summary: func() string { return "The last run of nix-gc.service on " + bootX.Addr + " failed" }},
				{alert: "SystemdUnitFailed", instance: bootX.Addr,
					summary: func() string { return "Unit nix-gc.service failed on " + bootX.Addr }},
			},
		},
		{
			name:   "Podman service stopped",
			inject: func(t *testing.T) { stopSvc.Kill() },
			clear:  func(t *testing.T) { stopSvc.Restart() },
			expect: []alertExpect{{alert: "PodmanServiceDown", instance: stopX.Addr, critical: true,
				summary: func() string { return "Podman service stop on " + stopX.Addr + " is down" }}},
		},
	}
	for _, f := range faults {
		f.inject(t)
	}
	for _, f := range faults {
		t.Run("fires/"+f.name, func(t *testing.T) {
			for i := range f.expect {
				f.expect[i].awaitFiring(t, prom, am, pd, chat, fireTimeout)
			}
		})
	}
	// While ExporterDown fires, any other alert of that host is inhibited.
	t.Run("fires/exporter killed inhibits the host", func(t *testing.T) {
		probe := fmt.Sprintf(`[{"labels":{"alertname":"InhibitionProbe","instance":%q,"severity":"warning"},"annotations":{"summary":"probe"}}]`, down.Addr)
		resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", strings.NewReader(probe))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		eventually(t, 30*time.Second, "probe inhibited", func() error {
			a, err := am.find("InhibitionProbe", down.Addr)
			if err != nil || a == nil {
				return fmt.Errorf("probe not found (%v)", err)
			}
			if a.Status.State != "suppressed" || len(a.Status.InhibitedBy) == 0 {
				return fmt.Errorf("probe state %q inhibitedBy %v", a.Status.State, a.Status.InhibitedBy)
			}
			return nil
		})
	})
	for _, f := range faults {
		f.clear(t)
	}
	for _, f := range faults {
		t.Run("resolves/"+f.name, func(t *testing.T) {
			for i := range f.expect {
				f.expect[i].awaitResolved(t, am, pd, resolveTimeout)
			}
		})
	}
	// Every page was a valid event (the fake fails the test otherwise), and
	// only critical alerts paged.
	for _, ev := range pd.Events() {
		if ev.EventAction == "trigger" && ev.Payload.Severity != "critical" {
			t.Errorf("a %s alert paged: %q", ev.Payload.Severity, ev.Payload.Summary)
		}
	}
}

// usecAt is a time in systemd's microseconds since the epoch.
func usecAt(t time.Time) uint64 { return uint64(t.UnixMicro()) }

// healthyServerSeed is the fake systemd of a server whose maintenance
// timers are healthy: last run an hour ago, next due in an hour, last runs
// successful.
func healthyServerSeed() fakesystemd.Seed {
	seed := fakesystemd.Server()
	for i := range seed.Units {
		u := &seed.Units[i]
		if u.TimerUnit != "" {
			u.LastTriggerUSec, u.NextElapseRealtime, u.NextElapseMonotonic = usecAt(time.Now().Add(-time.Hour)), usecAt(time.Now().Add(time.Hour)), 0
		}
		if strings.HasSuffix(u.Name, ".service") && u.Result != "" {
			u.Result = "success"
		}
	}
	return seed
}

// alertFault is a real fault, what it must raise, and how to clear it.
type alertFault struct {
	name          string
	inject, clear func(t *testing.T)
	expect        []alertExpect
}

// alertExpect is one alert a fault raises. Critical ones (of a server) must
// page through PagerDuty; warnings must reach Alertmanager's "warnings"
// receiver, and through it the chat, and never PagerDuty.
type alertExpect struct {
	alert, instance string
	critical        bool
	summary         func() string // known once the fault is injected
	trigger         pdEvent
}

func (e *alertExpect) awaitFiring(t *testing.T, prom *Prometheus, am *Alertmanager, pd *FakePagerDuty, chat *FakeChat, timeout time.Duration) {
	t.Helper()
	want := e.summary()
	var summary string
	eventually(t, timeout, e.alert+" firing in Prometheus", func() error {
		a, err := promAlert(prom, e.alert, e.instance)
		if err != nil || a == nil {
			return fmt.Errorf("not firing (%v)", err)
		}
		ann, _ := a["annotations"].(map[string]any)
		summary, _ = ann["summary"].(string)
		return nil
	})
	if summary != want {
		t.Errorf("%s summary = %q, want %q", e.alert, summary, want)
	}
	if !e.critical {
		var got *amAlert
		eventually(t, timeout, e.alert+" in Alertmanager", func() error {
			a, err := am.find(e.alert, e.instance)
			if err != nil || a == nil {
				return fmt.Errorf("not there (%v)", err)
			}
			got = a
			return nil
		})
		if got.Annotations["summary"] != want || got.Labels["severity"] != "warning" ||
			len(got.Receivers) != 1 || got.Receivers[0].Name != "warnings" {
			t.Errorf("%s in Alertmanager: summary %q severity %q receivers %+v, want %q warning to [warnings]",
				e.alert, got.Annotations["summary"], got.Labels["severity"], got.Receivers, want)
		}
		// The warnings receiver reaches a person: the chat gets it.
		title := chat.Await(t, timeout, "[warning] "+e.alert+" on "+e.instance)
		t.Logf("warning in Alertmanager (receiver warnings), in the chat as %q: %s", title, want)
		return
	}
	e.trigger = pd.Await(t, timeout, "trigger", want)
	if e.trigger.Payload.Severity != "critical" || e.trigger.Payload.Source != e.instance {
		t.Errorf("%s trigger: severity %q source %q, want critical %q", e.alert, e.trigger.Payload.Severity, e.trigger.Payload.Source, e.instance)
	}
	if l := e.trigger.Links; len(l) != 1 || !strings.HasSuffix(l[0].Href, "docs/runbooks.md#"+strings.ToLower(e.alert)) {
		t.Errorf("%s trigger: links %+v, want its runbook", e.alert, e.trigger.Links)
	}
	t.Logf("paged: %s (dedup_key %s)", want, e.trigger.DedupKey)
}

func (e *alertExpect) awaitResolved(t *testing.T, am *Alertmanager, pd *FakePagerDuty, timeout time.Duration) {
	t.Helper()
	want := e.summary()
	if !e.critical {
		eventually(t, timeout, e.alert+" resolved in Alertmanager", func() error {
			a, err := am.find(e.alert, e.instance)
			if err != nil || a != nil {
				return fmt.Errorf("still active (%v)", err)
			}
			return nil
		})
		for _, ev := range pd.Events() {
			if ev.Payload != nil && ev.Payload.Summary == want {
				t.Errorf("warning %s reached PagerDuty", e.alert)
			}
		}
		t.Logf("warning resolved: %s", want)
		return
	}
	if e.trigger.DedupKey == "" {
		t.Fatalf("%s never paged", e.alert)
	}
	res := pd.Await(t, timeout, "resolve", want)
	if res.DedupKey != e.trigger.DedupKey {
		t.Errorf("%s: resolve dedup_key %q, trigger's %q", e.alert, res.DedupKey, e.trigger.DedupKey)
	}
	t.Logf("page resolved %s after the trigger: %s", res.Received.Sub(e.trigger.Received).Round(time.Second), want)
}
