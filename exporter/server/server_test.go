package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

var testValue = collector.Gauge("servertest", "servertest_value", "A value for server tests.", "from")

type updateFunc func(context.Context, chan<- prometheus.Metric) error

func (f updateFunc) Update(ctx context.Context, ch chan<- prometheus.Metric) error { return f(ctx, ch) }

// sends is a collector that sends one sample labelled with its name.
func sends(name string) collector.Named {
	return collector.Named{Name: name, Collector: updateFunc(func(_ context.Context, ch chan<- prometheus.Metric) error {
		ch <- testValue.Const(1, name)
		return nil
	})}
}

func newServer(t *testing.T, maxRequests int, cs ...collector.Named) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	exporter := prometheus.NewRegistry()
	exporter.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "servertest_exporter_up", Help: "Exporter's own metric."}))
	srv := httptest.NewServer(New(Config{
		Logger:        logger,
		Scraper:       collector.NewScraper(logger, collector.Options{Timeout: 5 * time.Second}, cs...),
		Exporter:      exporter,
		TelemetryPath: "/metrics",
		MaxRequests:   maxRequests,
		AllCollectors: []string{"alpha", "beta", "broken", "off"},
		Version:       "test",
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestFilter(t *testing.T) {
	srv := newServer(t, 0, sends("alpha"), sends("beta"))
	for _, tc := range []struct {
		query        string
		code         int
		want, absent []string
	}{
		{"", 200, []string{`servertest_value{from="alpha"} 1`, `servertest_value{from="beta"} 1`, "servertest_exporter_up 0"}, nil},
		{"?collect[]=alpha", 200, []string{`from="alpha"`, `panther_scrape_collector_success{collector="alpha"} 1`, "servertest_exporter_up"}, []string{`from="beta"`, `collector="beta"`}},
		{"?exclude[]=alpha", 200, []string{`from="beta"`}, []string{`from="alpha"`, `collector="alpha"`}},
		{"?collect[]=alpha&collect[]=beta&exclude[]=beta", 200, []string{`from="alpha"`}, []string{`from="beta"`}},
		{"?collect[]=nosuch", 400, []string{`unknown or disabled collector "nosuch"`}, []string{"servertest_value"}},
		{"?exclude[]=off", 400, []string{`unknown or disabled collector "off"`}, nil},
	} {
		code, body := fetch(t, srv.URL+"/metrics"+tc.query)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d: %s", tc.query, code, tc.code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in\n%s", tc.query, w, body)
			}
		}
		for _, a := range tc.absent {
			if strings.Contains(body, a) {
				t.Errorf("%s: unexpected %q in\n%s", tc.query, a, body)
			}
		}
	}
}

// A scrape beyond --web.max-requests in flight is answered 503 at once,
// filtered or not; once the slot is free, scrapes are served again.
func TestRequestLimit(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := collector.Named{Name: "alpha", Collector: updateFunc(func(ctx context.Context, ch chan<- prometheus.Metric) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})}
	srv := newServer(t, 1, slow, sends("beta"))
	first := make(chan int)
	go func() {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			first <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first scrape never reached the collector")
	}
	for _, q := range []string{"", "?collect[]=beta"} {
		code, body := fetch(t, srv.URL+"/metrics"+q)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "Limit of concurrent requests reached (1)") {
			t.Errorf("second scrape%s: %d %q, want 503 naming the limit", q, code, body)
		}
	}
	close(release)
	if code := <-first; code != 200 {
		t.Errorf("first scrape: %d", code)
	}
	if code, _ := fetch(t, srv.URL+"/metrics?collect[]=beta"); code != 200 {
		t.Errorf("scrape after the slot was freed: %d", code)
	}
}

// The landing page has one row per registered collector: disabled, not run
// yet, failing with its error, ok.
func TestLandingPageRows(t *testing.T) {
	broken := collector.Named{Name: "broken", Collector: updateFunc(func(context.Context, chan<- prometheus.Metric) error {
		return errors.New("cannot read /proc/x: <secret & tag>")
	})}
	srv := newServer(t, 0, sends("alpha"), sends("beta"), broken)
	if code, _ := fetch(t, srv.URL+"/metrics?exclude[]=beta"); code != 200 {
		t.Fatalf("scrape: %d", code)
	}
	code, body := fetch(t, srv.URL+"/")
	if code != 200 {
		t.Fatalf("landing page: %d", code)
	}
	for _, row := range []string{
		`<td>alpha</td><td class="ok">ok</td><td>20`,
		`<td>beta</td><td class="ok">enabled, not run yet</td><td>-</td>`,
		`<td>broken</td><td class="err">failing: broken: cannot read /proc/x: &lt;secret &amp; tag&gt;</td><td>20`,
		`<td>off</td><td class="off">disabled</td><td>-</td>`,
		`href="/metrics"`,
	} {
		if !strings.Contains(body, row) {
			t.Errorf("landing page lacks %q:\n%s", row, body)
		}
	}
	// The toolkit's landing page answers only "/".
	if code, _ := fetch(t, srv.URL+"/nosuch"); code != http.StatusNotFound {
		t.Errorf("/nosuch: %d, want 404", code)
	}
}
