//go:build e2e

// Package e2e runs panther-exporter against the real stack: Debian's
// Prometheus and Alertmanager, a loop-mounted Btrfs, the Podman service, a
// private dbus-daemon and a DogStatsD receiver. It needs root. With CI=true
// a missing prerequisite fails the test; elsewhere it skips.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/internal/testenv"
)

// exporterBin is the binary under test: $PANTHER_EXPORTER_BIN (make e2e sets
// it) or one built here once.
var (
	exporterBin     string
	exporterBinOnce sync.Once
	exporterBinErr  error
)

// The skip-or-fail rule for missing prerequisites (fail with CI=true, skip
// elsewhere) is internal/testenv's; these are its e2e names.
var (
	require     = testenv.Require // fails (in CI) or skips when ok is false
	requireTool = testenv.Tool    // the path of a program, or fail/skip
	requireRoot = testenv.Root    // fail/skip unless root
)

func binary(t testing.TB) string {
	t.Helper()
	exporterBinOnce.Do(func() {
		if p := os.Getenv("PANTHER_EXPORTER_BIN"); p != "" {
			exporterBin = p
			return
		}
		dir, err := os.MkdirTemp("", "panther-e2e-bin")
		if err != nil {
			exporterBinErr = err
			return
		}
		exporterBin = filepath.Join(dir, "panther-exporter")
		tags, err := os.ReadFile("../exporter/build-tags")
		if err != nil {
			exporterBinErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", exporterBin, "../exporter/cmd/panther-exporter")
		cmd.Env = append(os.Environ(), "GOFLAGS=-tags="+strings.TrimSpace(string(tags)))
		if out, err := cmd.CombinedOutput(); err != nil {
			exporterBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if exporterBinErr != nil {
		t.Fatal(exporterBinErr)
	}
	return exporterBin
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Most e2e tests run one at a time, as a plain sequential `go test` runs
// them: they share the machine's loop devices, Podman and dbus setups and
// its two cores, and some compare the exporter against the host at one
// moment. The few that spend their time waiting (on Alertmanager's timers,
// an outage, a hung read) with parts of their own run beside them. Every test starts with serial(t) or
// beside(t) (TestEveryTestChoosesSerialOrBeside checks it). Both call
// t.Parallel, because go test runs a test that does not before every
// parallel one, alone; serialMu then queues the serial ones, and `make e2e`
// passes -parallel high enough that each test has its slot at once (with a
// lower -parallel the run is the same, only less overlapped).
var serialMu sync.Mutex

// serial makes t run while no other serial test runs. Its reported
// duration includes the wait for its turn, which it logs.
func serial(t *testing.T) {
	t.Parallel()
	start := time.Now()
	serialMu.Lock()
	// Registered first, so it runs last: after everything the test
	// started has been stopped and removed.
	t.Cleanup(serialMu.Unlock)
	if w := time.Since(start); w >= time.Second {
		t.Logf("waited %s for the serial tests before it", w.Round(time.Second))
	}
}

// beside makes t run beside the serial tests. Only for a test that mostly
// waits and uses only parts of its own (random ports, temp dirs, loop
// devices it sets up, Podman services on their own roots, a private
// dbus-daemon), and whose checks hold while other tests load the machine.
func beside(t *testing.T) { t.Parallel() }

// Process is a program started for a test; it is stopped at cleanup.
type Process struct {
	Cmd  *exec.Cmd
	Log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startProcess runs name with args in the background, logging to a buffer
// that is printed if the test fails. It is sent SIGTERM at cleanup.
func startProcess(t testing.TB, env []string, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	p.Cmd = exec.Command(name, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	w := lockedWriter{p.mu, p.Log}
	p.Cmd.Stdout, p.Cmd.Stderr = w, w
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s %s:\n%s", filepath.Base(name), strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Output returns what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Log.String()
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill sends SIGKILL to the process group and waits for it.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Exporter is a running panther-exporter.
type Exporter struct {
	*Process
	Addr string // host:port
	URL  string // http://host:port
}

// startExporter runs the exporter on a free loopback port with args and
// waits until /metrics answers.
func startExporter(t testing.TB, args ...string) *Exporter {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	all := append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)
	e := &Exporter{Process: startProcess(t, nil, binary(t), all...), Addr: addr, URL: "http://" + addr}
	eventually(t, 20*time.Second, "exporter answers on "+addr, func() error {
		if e.Exited() {
			t.Fatalf("exporter exited: %s", e.Output())
		}
		_, err := e.Get("/metrics")
		return err
	})
	return e
}

// KillHoldingPort kills the exporter and holds its port (holdPort) until
// the test ends: a host whose exporter is down.
func (e *Exporter) KillHoldingPort(t testing.TB) {
	t.Helper()
	e.Kill()
	holdPort(t, e.Addr)
}

// holdPort binds addr (IPv4 host:port) without listening, until release
// is called or the test ends. A connection to it is refused, as to a host
// whose exporter is down, and freePort, here or in a test running beside
// this one, is never handed the port (the kernel does not give out a
// bound port): no other exporter gets scraped in its place.
func holdPort(t testing.TB, addr string) (release func()) {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("hold %q: not an IPv4 host:port: %v", addr, err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err == nil {
		// As the exporter's own listener does: the TIME_WAIT of its closed
		// connections must not stop the bind.
		err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if err == nil {
			err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
		}
		if err != nil {
			syscall.Close(fd)
		}
	}
	if err != nil {
		// Only the guard against a reused port is lost.
		t.Logf("cannot hold %s: %v", addr, err)
		return func() {}
	}
	var once sync.Once
	release = func() { once.Do(func() { syscall.Close(fd) }) }
	t.Cleanup(release)
	return release
}

// Get fetches a path of the exporter and returns the body of a 200 answer.
func (e *Exporter) Get(path string) (string, error) {
	resp, err := http.Get(e.URL + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return string(body), nil
}

// Scrape fetches /metrics and parses it.
func (e *Exporter) Scrape(t testing.TB) Families {
	t.Helper()
	body, err := e.Get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	fams, err := ParseFamilies(body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// Families is a parsed exposition, by metric name.
type Families map[string]*dto.MetricFamily

// ParseFamilies parses the Prometheus text format.
func ParseFamilies(text string) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	return Families(fams), err
}

// Value returns the value of the series of name whose labels include want,
// and whether exactly one such series exists.
func (f Families) Value(name string, want map[string]string) (float64, bool) {
	ms := f.Series(name, want)
	if len(ms) != 1 {
		return 0, false
	}
	return metricValue(ms[0]), true
}

// Series returns the series of name whose labels include want.
func (f Families) Series(name string, want map[string]string) []*dto.Metric {
	fam, ok := f[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// Labels returns a series' labels as a map.
func Labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// MetricValue is the value of a gauge, counter or untyped sample.
func MetricValue(m *dto.Metric) float64 { return metricValue(m) }

// Prometheus is a running Debian prometheus scraping some targets.
type Prometheus struct {
	*Process
	URL string
	Dir string
}

// PromConfig is what startPrometheus writes into prometheus.yml.
type PromConfig struct {
	Targets          []string      // host:port of exporters, job "panther", role "server"
	ScrapeInterval   time.Duration // default 1s
	RuleFiles        []string      // absolute paths
	AlertmanagerAddr string        // host:port, optional
	ExtraScrape      string        // more scrape_configs entries, YAML, indented by 2
}

// startPrometheus starts Debian's prometheus on a free port with a fresh
// data directory and waits until it is ready.
func startPrometheus(t testing.TB, c PromConfig) *Prometheus {
	t.Helper()
	bin := requireTool(t, "prometheus")
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", c.ScrapeInterval, c.ScrapeInterval)
	if len(c.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range c.RuleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	if c.AlertmanagerAddr != "" {
		fmt.Fprintf(&b, "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", c.AlertmanagerAddr)
	}
	b.WriteString("scrape_configs:\n  - job_name: panther\n    static_configs:\n      - targets: [")
	for i, tg := range c.Targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", tg)
	}
	// Every target carries its role (docs/runbooks.md#alert-policy-by-role).
	b.WriteString("]\n        labels: {role: server}\n")
	b.WriteString(c.ExtraScrape)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &Prometheus{
		Process: startProcess(t, nil, bin,
			"--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--web.enable-lifecycle",
		),
		URL: "http://" + addr,
		Dir: dir,
	}
	waitReady(t, p.Process, "prometheus", p.URL, 60*time.Second)
	return p
}

// waitReady polls baseURL/-/ready (Prometheus and Alertmanager both answer
// it) until it answers 200, failing the test if the process exits.
func waitReady(t testing.TB, p *Process, name, baseURL string, timeout time.Duration) {
	t.Helper()
	waitHealthy(t, p, name, baseURL+"/-/ready", timeout)
}

// waitHealthy polls healthURL until it answers 200, failing the test if
// the process exits.
func waitHealthy(t testing.TB, p *Process, name, healthURL string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, name+" ready", func() error {
		if p.Exited() {
			t.Fatalf("%s exited: %s", name, p.Output())
		}
		resp, err := http.Get(healthURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
}

// promAPI gets a query endpoint of a Prometheus-compatible HTTP API
// (Prometheus, VictoriaMetrics, vmalert) and decodes the data of a
// successful answer into result; what refers to the query in errors.
func promAPI(base, path string, params url.Values, what string, result any) error {
	resp, err := http.Get(base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s", what, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return nil // success without a result: nothing to decode
	}
	if err := json.Unmarshal(r.Data.Result, result); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

// Query runs an instant PromQL query and returns the vector result.
func (p *Prometheus) Query(expr string) (model.Vector, error) {
	var v model.Vector
	err := promAPI(p.URL, "/api/v1/query", url.Values{"query": {expr}}, fmt.Sprintf("query %q", expr), &v)
	return v, err
}

// WaitForSeries polls until expr returns at least one sample.
func (p *Prometheus) WaitForSeries(t testing.TB, timeout time.Duration, expr string) model.Vector {
	t.Helper()
	var v model.Vector
	eventually(t, timeout, "prometheus has data for "+expr, func() error {
		var err error
		v, err = p.Query(expr)
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return fmt.Errorf("empty result")
		}
		return nil
	})
	return v
}

// RemoveTarget takes addr out of the scrape configuration startPrometheus
// wrote, as an operator retiring a host does, and reloads Prometheus
// (POST /-/reload); it returns once the target is no longer scraped.
func (p *Prometheus) RemoveTarget(t testing.TB, addr string) {
	t.Helper()
	cfgPath := filepath.Join(p.Dir, "prometheus.yml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, entry := range []string{fmt.Sprintf("%q, ", addr), fmt.Sprintf(", %q", addr), fmt.Sprintf("%q", addr)} {
		if strings.Contains(cfg, entry) {
			cfg = strings.Replace(cfg, entry, "", 1)
			break
		}
	}
	if cfg == string(b) {
		t.Fatalf("%s is not a target in %s", addr, cfgPath)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(p.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("prometheus reload: %s", resp.Status)
	}
	eventually(t, 30*time.Second, addr+" no longer a target", func() error {
		resp, err := http.Get(p.URL + "/api/v1/targets?state=active")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if strings.Contains(string(body), `"`+addr+`"`) {
			return fmt.Errorf("still scraped")
		}
		return nil
	})
}

// WaitRulesEvaluated polls until Prometheus has finished an evaluation of
// every rule group that started after since. Alert state read before that
// can be left over from an evaluation before the first scrape (absent(up)
// pending while no target has been scraped yet): a check of "no alert" must
// first wait for this, or it races the evaluation interval.
func (p *Prometheus) WaitRulesEvaluated(t testing.TB, timeout time.Duration, since time.Time) {
	t.Helper()
	eventually(t, timeout, "every rule group evaluated after "+since.Format(time.RFC3339Nano), func() error {
		resp, err := http.Get(p.URL + "/api/v1/rules")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Groups []struct {
					Name           string    `json:"name"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return err
		}
		if len(r.Data.Groups) == 0 {
			return fmt.Errorf("no rule groups loaded")
		}
		for _, g := range r.Data.Groups {
			if !g.LastEvaluation.After(since) {
				return fmt.Errorf("group %s last evaluated at %s", g.Name, g.LastEvaluation.Format(time.RFC3339Nano))
			}
		}
		return nil
	})
}

// Alerts returns the alerts Prometheus currently holds (pending or firing).
func (p *Prometheus) Alerts() ([]map[string]any, error) {
	resp, err := http.Get(p.URL + "/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []map[string]any `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	return r.Data.Alerts, nil
}

// runCmd runs a command and returns its standard output, failing the test
// on error. Only stdout is data: tools warn on stderr (a fresh nix-bin, a
// btrfs-progs newer than the kernel), and a parser fed both breaks on a
// machine that warns. stderr is shown when the command fails.
func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runOutput(nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runOutput runs a command with extra environment (nil for none) and returns
// its standard output; an error carries the command line and its stderr.
func runOutput(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
