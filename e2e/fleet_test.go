//go:build e2e

package e2e

// Fleet mode (docs/fleet.md) on real parts: Debian's victoria-metrics as
// the central store, one vmagent per host pushing to it with an on-disk
// buffer (the flags nixos/fleet.nix renders), vmalert evaluating the rule
// files of rules/prometheus against the store and notifying Debian's
// Alertmanager with the example routing, the fake PagerDuty behind it.
// Four hosts push at once:
//
//   - roam-laptop (workstation): its link to the store is cut for 45 s (a
//     scaled-down outage, for CI's wall time; docs/benchmarks.md has the
//     30-minute one) while vmagent keeps scraping, and vmagent is restarted
//     in the middle (the backlog must be on disk, not only in memory).
//     After the link is back, every scrape vmagent made is in the store,
//     counted exactly against what the exporter served; and nothing pages.
//   - down-server: its exporter dies, its agent keeps pushing up == 0:
//     ExporterDown pages (the scraped arm of the rule).
//   - gone-server: its agent goes away, nothing arrives: ExporterDown pages
//     (the pushed arm).
//   - gone-laptop: its agent goes away: nothing reaches anyone.
//
// And one host is pulled, as the monitoring host of a mixed fleet does it:
// Debian's Prometheus scrapes it and remote-writes to the store; its
// exporter dies and ExporterDown pages through the same vmalert.
//
// The rules are the repository's, with their `for:` scaled as in the alert
// e2e and the pushed arm's 2-minute silence window scaled to 10 s (1 s
// scrapes here, 15 s in production).

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// cuttableLink forwards TCP from a loopback port to target; Cut closes the
// listener and every open connection (vmagent sees connection refused, as
// from a host whose network is gone), Restore listens on the same port again.
type cuttableLink struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func startLink(t testing.TB, target string) *cuttableLink {
	l := &cuttableLink{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), target: target, conns: map[net.Conn]bool{}}
	l.Restore()
	t.Cleanup(l.Cut)
	return l
}

func (l *cuttableLink) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatalf("link %s: %v", l.addr, err)
	}
	l.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.forward(c)
		}
	}()
}

func (l *cuttableLink) forward(c net.Conn) {
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.ln == nil { // cut meanwhile
		l.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	l.conns[c], l.conns[up] = true, true
	l.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (l *cuttableLink) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for c := range l.conns {
		c.Close()
	}
	l.conns = map[net.Conn]bool{}
}

// countingScrapes sits between vmagent and an exporter and records when it
// served each successful scrape; after Fail it answers 503 (vmagent records
// up 0), so the count of successful scrapes is final.
type countingScrapes struct {
	*http.Server
	addr   string
	mu     sync.Mutex
	served []time.Time
	failed bool
}

func startCountingScrapes(t testing.TB, exporterURL string) *countingScrapes {
	u, _ := url.Parse(exporterURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	c := &countingScrapes{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		c.mu.Lock()
		failed := c.failed
		c.mu.Unlock()
		if failed {
			http.Error(w, "exporter gone", http.StatusServiceUnavailable)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		rp.ServeHTTP(rec, r)
		if rec.code == 200 {
			c.mu.Lock()
			c.served = append(c.served, at)
			c.mu.Unlock()
		}
	})}
	go c.Serve(ln)
	t.Cleanup(func() { c.Close() })
	return c
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

func (c *countingScrapes) Fail() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}

func (c *countingScrapes) Served() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.served...)
}

// AllStored checks that every scrape served is in the store as an up == 1
// sample of instance, over the whole run and over the outage from cutAt
// to restoredAt alone; it returns both counts. The count is made final
// first (Fail: later scrapes are up 0, adding nothing).
func (c *countingScrapes) AllStored(t testing.TB, storeURL, instance string, cutAt, restoredAt time.Time) (all, during int) {
	t.Helper()
	eventually(t, 30*time.Second, "a scrape served after the outage", func() error {
		if s := c.Served(); len(s) == 0 || !s[len(s)-1].After(restoredAt) {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	c.Fail()
	served := c.Served()
	// A fixed window, from before the first scrape to after the last
	// successful one.
	end := time.Now().Add(time.Second)
	window := end.Sub(served[0]) + 10*time.Second
	eventually(t, 90*time.Second, "every successful scrape of "+instance+" in the store", func() error {
		v, err := queryAt(storeURL, fmt.Sprintf(`sum_over_time(up{instance=%q}[%dms])`, instance, window.Milliseconds()), end)
		if err != nil || len(v) != 1 {
			return fmt.Errorf("%v (%v)", v, err)
		}
		if got := float64(v[0].Value); int(got) != len(served) {
			return fmt.Errorf("%v up==1 samples in the store, %d scrapes served", got, len(served))
		}
		return nil
	})
	// And those of the outage exactly: the window's edges lie halfway
	// between two scrapes, so clock jitter cannot move a sample across.
	edge := func(at time.Time) time.Time {
		for i := 1; i < len(served); i++ {
			if served[i].After(at) {
				return served[i-1].Add(served[i].Sub(served[i-1]) / 2)
			}
		}
		t.Fatalf("no scrape after %s", at)
		return at
	}
	from, to := edge(cutAt), edge(restoredAt)
	for _, s := range served {
		if s.After(from) && !s.After(to) {
			during++
		}
	}
	v, err := queryAt(storeURL, fmt.Sprintf(`sum_over_time(up{instance=%q}[%dms])`, instance, to.Sub(from).Milliseconds()), to)
	if err != nil || len(v) != 1 || int(v[0].Value) != during {
		t.Errorf("outage window %s..%s: store has %v up==1 samples of %s (%v), the exporter served %d scrapes", from.Format(time.StampMilli), to.Format(time.StampMilli), v, instance, err, during)
	}
	return len(served), during
}

// vmApp is a running VictoriaMetrics program (victoria-metrics, vmagent,
// vmalert); all of them answer /health.
type vmApp struct {
	*Process
	URL  string
	args []string
	bin  string
}

func startVMApp(t testing.TB, prog string, args ...string) *vmApp {
	t.Helper()
	bin := requireTool(t, prog)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := &vmApp{URL: "http://" + addr, bin: bin, args: append([]string{"-httpListenAddr=" + addr}, args...)}
	a.Start(t)
	return a
}

// Start (again) with the same flags, and wait until it is healthy.
func (a *vmApp) Start(t testing.TB) {
	t.Helper()
	a.Process = startProcess(t, nil, a.bin, a.args...)
	waitHealthy(t, a.Process, filepath.Base(a.bin), a.URL+"/health", 30*time.Second)
}

// metric reads one unlabelled-or-matching sample of the app's own /metrics.
func (a *vmApp) metric(name string, want map[string]string) (float64, error) {
	resp, err := http.Get(a.URL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fams, err := ParseFamilies(string(b))
	if err != nil {
		return 0, err
	}
	sum, n := 0.0, 0
	for _, m := range fams.Series(name, want) {
		sum += metricValue(m)
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("no %s in %s/metrics", name, a.URL)
	}
	return sum, nil
}

// queryAt runs an instant query on the store at time at, bypassing its
// response cache and its latency offset (nocache=1) so that backfilled
// samples count.
func queryAt(storeURL, expr string, at time.Time) (model.Vector, error) {
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}, "nocache": {"1"}}
	var v model.Vector
	err := promAPI(storeURL, "/api/v1/query", q, fmt.Sprintf("query %q", expr), &v)
	return v, err
}

// fleetRules copies the rule files with their `for:` scaled (scaledRules)
// and the pushed arm's silence window of ExporterDown scaled from 2m to 10s.
func fleetRules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range scaledRules(t, dir) {
		if filepath.Base(f) != "exporter.rules.yml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		const arm = `unless on(instance) present_over_time(up{role="server"}[2m])`
		if strings.Count(string(b), arm) != 1 {
			t.Fatalf("%s: the pushed arm %q is not there once; update this test", f, arm)
		}
		if err := os.WriteFile(f, []byte(strings.Replace(string(b), arm, `unless on(instance) present_over_time(up{role="server"}[10s])`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type pushedHost struct {
	name, role string
	exporter   *Exporter
	scrapes    *countingScrapes // roam-laptop only
	link       *cuttableLink    // roam-laptop only
	agent      *vmApp
	buffer     string // vmagent's -remoteWrite.tmpDataPath
}

func TestFleet(t *testing.T) {
	beside(t) // mostly waits (an outage, the pages), with parts of its own
	requireRoot(t)
	started := time.Now()

	store := startVMApp(t, "victoria-metrics",
		"-storageDataPath="+t.TempDir(), "-retentionPeriod=1d",
		// Recent samples are visible to vmalert after 1 s, not 30 s: the
		// scaled `for:` would mean nothing otherwise.
		"-search.latencyOffset=1s")

	pd, chat, am := startPagingPath(t)

	// vmalert with the repository's rule files, notifying the example
	// Alertmanager; alert state is written to and restored from the store,
	// as nixos/fleet.nix configures it.
	rules := fleetRules(t)
	vmalert := startVMApp(t, "vmalert",
		"-rule="+filepath.Join(rules, "*.rules.yml"),
		"-datasource.url="+store.URL, "-remoteWrite.url="+store.URL, "-remoteRead.url="+store.URL,
		"-notifier.url="+am.URL, "-evaluationInterval=1s")

	// Each host: an exporter with only the system collector, and a vmagent
	// scraping it every second with the host's instance and role labels,
	// pushing to the store. Series that follow this shared machine's load
	// and other tests' mounts are dropped, as in the roles e2e.
	hosts := map[string]*pushedHost{}
	for _, h := range []struct{ name, role string }{
		{"roam-laptop", "workstation"}, {"down-server", "server"}, {"gone-server", "server"}, {"gone-laptop", "workstation"},
	} {
		ph := &pushedHost{name: h.name, role: h.role}
		ph.exporter = startExporter(t, "--collector.disable-defaults", "--collector.system")
		target := ph.exporter.Addr
		writeURL := store.URL + "/api/v1/write"
		if h.name == "roam-laptop" {
			ph.scrapes = startCountingScrapes(t, ph.exporter.URL)
			target = ph.scrapes.addr
			ph.link = startLink(t, strings.TrimPrefix(store.URL, "http://"))
			writeURL = "http://" + ph.link.addr + "/api/v1/write"
		}
		dir := t.TempDir()
		ph.buffer = filepath.Join(dir, "buffer")
		cfg := filepath.Join(dir, "scrape.yml")
		// The scrape configuration nixos/fleet.nix writes: job panther, the
		// host's instance and role, and transport push as target labels.
		y := fmt.Sprintf("scrape_configs:\n  - job_name: panther\n    scrape_interval: 1s\n    static_configs:\n      - targets: [%q]\n        labels: {instance: %q, role: %q, transport: push}\n%s",
			target, h.name, h.role, "    metric_relabel_configs:\n"+notUnderTest)
		if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		ph.agent = startVMApp(t, "vmagent", "-promscrape.config="+cfg,
			"-remoteWrite.url="+writeURL,
			"-remoteWrite.tmpDataPath="+ph.buffer,
			"-remoteWrite.maxDiskUsagePerURL=64MB")
		hosts[h.name] = ph
	}
	roam := hosts["roam-laptop"]

	// The pulled host: Prometheus (no rule files: vmalert evaluates) with
	// remote_write to the store, as nixos/monitoring.nix configures it in
	// fleet mode.
	// A second pulled server will be retired: taken out of the scrape
	// configuration, which must page nobody.
	pulled := startExporter(t, "--collector.disable-defaults", "--collector.system")
	retired := startExporter(t, "--collector.disable-defaults", "--collector.system")
	prom := startPrometheus(t, PromConfig{Targets: []string{pulled.Addr, retired.Addr},
		ExtraScrape: fmt.Sprintf("remote_write:\n  - url: %q\n", store.URL+"/api/v1/write")})

	// Every host's data is in the store, with the labels pull gives (and
	// transport="push" on the pushed ones only).
	storeQ := &Prometheus{URL: store.URL}
	storeQ.WaitForSeries(t, 60*time.Second, `count(up{job="panther", role="server"} == 1) == 4 and count(up{job="panther", role="workstation"} == 1) == 2`)
	storeQ.WaitForSeries(t, 30*time.Second, `count(up{transport="push"}) == 4 and count(up{transport=""}) == 2`)
	storeQ.WaitForSeries(t, 30*time.Second, `panther_memory_total_bytes{job="panther", instance="roam-laptop", role="workstation"}`)

	// Watch the whole time: nothing of a workstation reaches anyone, no
	// server but the three that break pages, and nothing of the retired
	// server reaches Alertmanager.
	var mu sync.Mutex
	var violations []string
	violate := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(violations) < 20 {
			violations = append(violations, fmt.Sprintf("after %s: ", time.Since(started).Round(time.Second))+fmt.Sprintf(format, args...))
		}
	}
	workstation := func(instance string) bool { return instance == "roam-laptop" || instance == "gone-laptop" }
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(time.Second) // a sampling interval, not a wait for a condition
		defer tick.Stop()
		for {
			if ams, err := am.Alerts(); err != nil {
				violate("Alertmanager alerts: %v", err)
			} else {
				for _, a := range ams {
					if workstation(a.Labels["instance"]) || a.Labels["instance"] == retired.Addr {
						violate("Alertmanager has %v", a.Labels)
					}
				}
			}
			for _, ev := range pd.Events() {
				if ev.Payload != nil && ev.Payload.Source != "down-server" && ev.Payload.Source != "gone-server" && ev.Payload.Source != pulled.Addr {
					violate("PagerDuty got %s %q from %s", ev.EventAction, ev.Payload.Summary, ev.Payload.Source)
				}
			}
			for _, title := range chat.Titles() {
				if strings.Contains(title, "laptop") {
					violate("the chat got %q", title)
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()

	// The faults, all at once.
	cutAt := time.Now()
	roam.link.Cut()
	hosts["down-server"].exporter.KillHoldingPort(t)
	hosts["gone-server"].agent.Kill()
	hosts["gone-laptop"].agent.Kill()
	pulled.KillHoldingPort(t)
	prom.RemoveTarget(t, retired.Addr)
	t.Logf("link of roam-laptop cut; down-server's and the pulled server's exporters, gone-server's and gone-laptop's agents killed; %s retired from Prometheus' targets", retired.Addr)

	// Nothing of roam-laptop arrives while its link is cut, and its agent
	// buffers; halfway it is restarted (a reboot on the train): what it
	// buffered must survive on disk.
	eventually(t, 30*time.Second, "roam-laptop's agent buffering", func() error {
		v, err := roam.agent.metric("vmagent_remotewrite_pending_data_bytes", nil)
		if err != nil || v < 1000 {
			return fmt.Errorf("pending bytes %v (%v)", v, err)
		}
		return nil
	})
	for time.Since(cutAt) < 20*time.Second {
		time.Sleep(200 * time.Millisecond) // the outage runs on; scrapes accumulate
	}
	roam.agent.Stop()
	if fi, err := dirSize(roam.buffer); err != nil || fi < 1000 {
		t.Errorf("roam-laptop's agent stopped during the outage left %d bytes on disk (%v): the backlog is not buffered on disk", fi, err)
	}
	roam.agent.Start(t)
	for time.Since(cutAt) < 45*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	if v, err := queryAt(store.URL, `count_over_time(up{instance="roam-laptop"}[40s])`, time.Now()); err != nil || len(v) != 0 {
		t.Errorf("samples of roam-laptop arrived while its link was cut: %v (%v)", v, err)
	}
	restoredAt := time.Now()
	roam.link.Restore()
	t.Logf("link of roam-laptop restored after %s", restoredAt.Sub(cutAt).Round(time.Millisecond))

	// The three servers page: the pushed up == 0, the silence, the pulled up == 0.
	vmalertQ := &Prometheus{URL: vmalert.URL}
	for _, name := range []string{"down-server", "gone-server", pulled.Addr} {
		exp := alertExpect{alert: "ExporterDown", instance: name, critical: true,
			summary: func() string { return "panther-exporter on " + name + " is down" }}
		exp.awaitFiring(t, vmalertQ, am, pd, chat, 2*time.Minute)
	}

	// No gap: every scrape roam-laptop's exporter served is in the store,
	// those of the outage included. The count is made final by making
	// further scrapes fail (up 0); then the store must catch up exactly.
	eventually(t, 60*time.Second, "roam-laptop's backlog sent", func() error {
		v, err := roam.agent.metric("vmagent_remotewrite_pending_data_bytes", nil)
		if err != nil || v != 0 {
			return fmt.Errorf("pending bytes %v (%v)", v, err)
		}
		return nil
	})
	served, during := roam.scrapes.AllStored(t, store.URL, "roam-laptop", cutAt, restoredAt)
	if during < 30 {
		t.Errorf("only %d scrapes during a 45 s outage at 1 s: vmagent did not keep scraping", during)
	}
	t.Logf("roam-laptop: %d scrapes served in all, %d during the 45 s outage (agent restarted in it); all in the store", served, during)

	// Every rule evaluates in MetricsQL without error (a rule vmalert
	// accepts at load can still fail against the store).
	for _, m := range []string{"vmalert_alerting_rules_error", "vmalert_recording_rules_error"} {
		if v, err := vmalert.metric(m, nil); err != nil || v != 0 {
			t.Errorf("%s: %v rules failing their last evaluation (%v)", m, v, err)
		}
	}

	// The retired server sent nothing for longer than the scaled silent-host
	// arm ([10s]) and `for:` (5s) together, so the watch above covered the
	// time it would have paged in, had the arm selected pulled series.
	eventually(t, 30*time.Second, "the retired server silent in the store for 20s", func() error {
		if v, err := queryAt(store.URL, fmt.Sprintf(`present_over_time(up{instance=%q}[20s])`, retired.Addr), time.Now()); err != nil || len(v) != 0 {
			return fmt.Errorf("%v (%v)", v, err)
		}
		return nil
	})
	time.Sleep(5 * time.Second) // two more vmalert evaluations and notifications, watched

	close(done)
	<-watched
	for _, v := range violations {
		t.Error(v)
	}
	t.Logf("pages: %s; wall time %s", pd.summary(), time.Since(started).Round(time.Second))
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
