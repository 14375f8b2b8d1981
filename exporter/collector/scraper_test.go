package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

var testMetric = Gauge("test", "test_value", "A value for scraper tests.", "kind")

// funcCollector adapts a function to Collector.
type funcCollector func(context.Context, chan<- prometheus.Metric) error

func (f funcCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return f(ctx, ch)
}

func newLogger(buf *bytes.Buffer) *slog.Logger {
	var mu sync.Mutex
	return slog.New(slog.NewTextHandler(lockedBuf{&mu, buf}, nil))
}

type lockedBuf struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func TestFailingCollectorDoesNotFailScrape(t *testing.T) {
	var logs bytes.Buffer
	r := NewScraper(newLogger(&logs), Options{Timeout: time.Second},
		Named{"good", funcCollector(func(_ context.Context, ch chan<- prometheus.Metric) error {
			ch <- testMetric.Const(1, "good")
			return nil
		})},
		Named{"bad", funcCollector(func(_ context.Context, ch chan<- prometheus.Metric) error {
			ch <- testMetric.Const(2, "partial") // sent before failing: kept
			return errors.New("/sys/fs/btrfs/x/allocation: garbled")
		})},
	)
	got := collectortest.GatherCollector(t, r)
	if v, ok := got.Lookup("panther_scrape_collector_success", map[string]string{"collector": "good"}); !ok || v != 1 {
		t.Errorf("good success = %v, %v", v, ok)
	}
	if v, ok := got.Lookup("panther_scrape_collector_success", map[string]string{"collector": "bad"}); !ok || v != 0 {
		t.Errorf("bad success = %v, %v", v, ok)
	}
	if _, ok := got.Lookup("panther_test_value", map[string]string{"kind": "partial"}); !ok {
		t.Error("metrics sent before the error were dropped")
	}
	if _, ok := got.Lookup("panther_scrape_collector_duration_seconds", map[string]string{"collector": "bad"}); !ok {
		t.Error("no duration for the failing collector")
	}
}

func TestErrorLoggedOncePerChange(t *testing.T) {
	var logs bytes.Buffer
	var fail atomic.Value
	fail.Store("first")
	r := NewScraper(newLogger(&logs), Options{Timeout: time.Second},
		Named{"flaky", funcCollector(func(context.Context, chan<- prometheus.Metric) error {
			if s := fail.Load().(string); s != "" {
				return errors.New(s)
			}
			return nil
		})})
	for i := 0; i < 5; i++ {
		collectortest.GatherCollector(t, r)
	}
	fail.Store("second")
	for i := 0; i < 5; i++ {
		collectortest.GatherCollector(t, r)
	}
	fail.Store("")
	for i := 0; i < 5; i++ {
		collectortest.GatherCollector(t, r)
	}
	out := logs.String()
	if n := strings.Count(out, "collector failed"); n != 2 {
		t.Errorf("logged %d failures for 2 distinct errors over 10 scrapes:\n%s", n, out)
	}
	if n := strings.Count(out, "collector recovered"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, out)
	}
}

// A collector stuck in I/O: the scrape returns at the deadline, and later
// scrapes do not start another run while it is stuck.
func TestStuckCollectorTimesOutWithoutPilingUp(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	r := NewScraper(slog.New(slog.DiscardHandler), Options{Timeout: 50 * time.Millisecond},
		Named{"stuck", funcCollector(func(context.Context, chan<- prometheus.Metric) error {
			runs.Add(1)
			<-release // ignores its context, like a read on a hung FIFO
			return nil
		})},
		Named{"fine", funcCollector(func(_ context.Context, ch chan<- prometheus.Metric) error {
			ch <- testMetric.Const(1, "fine")
			return nil
		})},
	)
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		start := time.Now()
		got := collectortest.GatherCollector(t, r)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("scrape took %s with a 50ms collector timeout", d)
		}
		if v, ok := got.Lookup("panther_scrape_collector_success", map[string]string{"collector": "stuck"}); !ok || v != 0 {
			t.Fatalf("stuck success = %v, %v", v, ok)
		}
		if _, ok := got.Lookup("panther_test_value", map[string]string{"kind": "fine"}); !ok {
			t.Fatal("the healthy collector's metrics are missing")
		}
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("stuck collector started %d times, want 1", n)
	}
	if extra := runtime.NumGoroutine() - before; extra > 5 {
		t.Errorf("%d goroutines more after 20 scrapes of a stuck collector", extra)
	}
	close(release)
	// Once released it succeeds: a scrape that arrives while the first run
	// is still returning shares that run's result (runs stays 1), a later
	// one starts a second run.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := collectortest.GatherCollector(t, r)
		if v, _ := got.Lookup("panther_scrape_collector_success", map[string]string{"collector": "stuck"}); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stuck collector did not recover after release")
		}
		runtime.Gosched()
	}
	n := runs.Load()
	if n != 1 && n != 2 {
		t.Fatalf("runs after recovery = %d, want 1 or 2", n)
	}
	// With no run in flight any more, the next scrape runs it afresh.
	got := collectortest.GatherCollector(t, r)
	if v, _ := got.Lookup("panther_scrape_collector_success", map[string]string{"collector": "stuck"}); v != 1 {
		t.Errorf("success after recovery = %v, want 1", v)
	}
	if m := runs.Load(); m != n+1 {
		t.Errorf("runs after one more scrape = %d, want %d: a finished run's result was reused", m, n+1)
	}
}

func TestPanickingCollectorIsAFailureNotACrash(t *testing.T) {
	r := NewScraper(slog.New(slog.DiscardHandler), Options{Timeout: time.Second},
		Named{"panicky", funcCollector(func(context.Context, chan<- prometheus.Metric) error {
			var m map[string]int
			//lint:ignore SA5000 a runtime panic on purpose: the scraper must survive it
			m["x"] = 1
			return nil
		})})
	got := collectortest.GatherCollector(t, r)
	if v, ok := got.Lookup("panther_scrape_collector_success", map[string]string{"collector": "panicky"}); !ok || v != 0 {
		t.Errorf("success = %v, %v", v, ok)
	}
	if s := r.Statuses()[0].LastError; !strings.Contains(s, "panic") {
		t.Errorf("status error %q does not say panic", s)
	}
}

func TestFilter(t *testing.T) {
	nop := funcCollector(func(context.Context, chan<- prometheus.Metric) error { return nil })
	r := NewScraper(slog.New(slog.DiscardHandler), Options{}, Named{"a", nop}, Named{"b", nop}, Named{"c", nop})
	for _, c := range []struct {
		include, exclude []string
		want             string
		wantErr          bool
	}{
		{nil, nil, "a,b,c", false},
		{[]string{"b"}, nil, "b", false},
		{nil, []string{"b"}, "a,c", false},
		{[]string{"a", "b"}, []string{"b"}, "a", false},
		{[]string{"zz"}, nil, "", true},
		{nil, []string{"zz"}, "", true},
	} {
		f, err := r.Filter(c.include, c.exclude)
		if c.wantErr {
			if err == nil {
				t.Errorf("Filter(%v,%v): no error", c.include, c.exclude)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f.Names(), ","); got != c.want {
			t.Errorf("Filter(%v,%v) = %s, want %s", c.include, c.exclude, got, c.want)
		}
	}
}

// Concurrent scrapes share one run of a collector instead of each starting one.
func TestConcurrentScrapesShareARun(t *testing.T) {
	var runs atomic.Int32
	gate := make(chan struct{})
	r := NewScraper(slog.New(slog.DiscardHandler), Options{Timeout: 5 * time.Second},
		Named{"slow", funcCollector(func(_ context.Context, ch chan<- prometheus.Metric) error {
			runs.Add(1)
			<-gate
			ch <- testMetric.Const(1, "slow")
			return nil
		})})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); collectortest.GatherCollector(t, r) }()
	}
	// Release the run only once every scrape waits on it.
	deadline := time.Now().Add(5 * time.Second)
	for r.runners[0].waiters.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d scrapes waiting", r.runners[0].waiters.Load())
		}
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("10 concurrent scrapes started %d runs, want 1", n)
	}
}

// TestBuildPassesConfigWhole fills every field of Config and checks that a
// factory gets each one, so a field added later is not dropped by Build.
func TestBuildPassesConfigWhole(t *testing.T) {
	var want Config
	v := reflect.ValueOf(&want).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("/set/" + v.Type().Field(i).Name)
		case reflect.Pointer:
			if f.Type() != reflect.TypeOf(want.Logger) {
				t.Fatalf("Config.%s: teach this test to fill a %s", v.Type().Field(i).Name, f.Type())
			}
		default:
			t.Fatalf("Config.%s: teach this test to fill a %s", v.Type().Field(i).Name, f.Kind())
		}
	}
	var logs bytes.Buffer
	want.Logger = newLogger(&logs)
	var got Config
	Register("configwhole", true, func(cfg Config) (Collector, error) {
		got = cfg
		return funcCollector(func(context.Context, chan<- prometheus.Metric) error { return nil }), nil
	})
	EnableExplicitly("configwhole") // flag defaults apply only when flags are parsed
	if _, err := Build(want, Options{}); err != nil {
		t.Fatal(err)
	}
	got.Logger.Info("hello")
	if !strings.Contains(logs.String(), "collector=configwhole") {
		t.Errorf("factory's logger does not name the collector: %q", logs.String())
	}
	got.Logger, want.Logger = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("factory got %+v, want %+v", got, want)
	}
}
