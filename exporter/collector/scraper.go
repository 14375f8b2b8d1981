package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// Named is a collector with the name it is registered under.
type Named struct {
	Name      string
	Collector Collector
}

// Options tune how the Scraper runs collectors.
type Options struct {
	// Timeout bounds how long a scrape waits for one collector.
	Timeout time.Duration
}

// The build info metric comes from client_golang's version collector.
func init() {
	Declare("exporter", "panther_exporter_build_info", prometheus.GaugeValue,
		"A metric with a constant '1' value labeled by version, revision, branch, goversion from which panther_exporter was built, and the goos and goarch for the build.",
		"branch", "goarch", "goos", "goversion", "revision", "tags", "version")
}

var (
	scrapeDuration = Gauge("exporter", "scrape_collector_duration_seconds",
		"How long the collector took (or was waited for) on this scrape.", "collector")
	scrapeSuccess = Gauge("exporter", "scrape_collector_success",
		"1 when the collector finished without error before its deadline, else 0.", "collector")
)

// ErrTimeout is returned for a collector that did not return before the
// scrape's deadline. Its run stays in flight; later scrapes wait on that run
// rather than start another.
var ErrTimeout = errors.New("deadline exceeded; run still in flight")

// Scraper runs the collectors for a scrape. It is a prometheus.Collector whose
// Collect runs every collector concurrently, each under its own deadline.
type Scraper struct {
	logger  *slog.Logger
	timeout time.Duration
	runners []*runner
}

// NewScraper wraps the given collectors.
func NewScraper(logger *slog.Logger, opts Options, cs ...Named) *Scraper {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	r := &Scraper{logger: logger, timeout: opts.Timeout}
	for _, c := range cs {
		r.runners = append(r.runners, &runner{name: c.Name, c: c.Collector, logger: logger})
	}
	sort.Slice(r.runners, func(i, j int) bool { return r.runners[i].name < r.runners[j].name })
	return r
}

// Names lists the collectors the scraper runs.
func (r *Scraper) Names() []string {
	out := make([]string, len(r.runners))
	for i, rn := range r.runners {
		out[i] = rn.name
	}
	return out
}

// Filter returns a view of the scraper limited to the collectors named in
// include (all when empty) minus those in exclude. Unknown names are an
// error, as node_exporter does for collect[].
func (r *Scraper) Filter(include, exclude []string) (*Scraper, error) {
	known := map[string]*runner{}
	for _, rn := range r.runners {
		known[rn.name] = rn
	}
	for _, n := range append(append([]string{}, include...), exclude...) {
		if _, ok := known[n]; !ok {
			return nil, fmt.Errorf("unknown or disabled collector %q", n)
		}
	}
	keep := map[string]bool{}
	if len(include) == 0 {
		for n := range known {
			keep[n] = true
		}
	}
	for _, n := range include {
		keep[n] = true
	}
	for _, n := range exclude {
		delete(keep, n)
	}
	out := &Scraper{logger: r.logger, timeout: r.timeout}
	for _, rn := range r.runners {
		if keep[rn.name] {
			out.runners = append(out.runners, rn) // shared runners: one run in flight per collector
		}
	}
	return out, nil
}

// Close ends the background work of every collector that has some to end
// (those that implement io.Closer), for a clean shutdown: the journal
// collector saves its cursor there. It returns every error.
func (r *Scraper) Close() error {
	var errs []error
	for _, rn := range r.runners {
		if c, ok := rn.c.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", rn.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Describe sends nothing: the metric set is only known at scrape time, so
// the Scraper is an unchecked collector.
func (r *Scraper) Describe(chan<- *prometheus.Desc) {}

// Collect runs every collector concurrently and sends what they gathered
// plus the scrape meta-metrics.
func (r *Scraper) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, rn := range r.runners {
		wg.Add(1)
		go func(rn *runner) {
			defer wg.Done()
			res := rn.run(r.timeout)
			for _, m := range res.metrics {
				ch <- m
			}
			success := 0.0
			if res.err == nil {
				success = 1
			}
			ch <- scrapeDuration.Const(res.waited.Seconds(), rn.name)
			ch <- scrapeSuccess.Const(success, rn.name)
		}(rn)
	}
	wg.Wait()
}

// Status is what the landing page shows of one collector.
type Status struct {
	Name      string
	LastError string    // empty when the last run succeeded
	LastRun   time.Time // zero before the first run
	Note      string    // the collector's Noter note, if any
}

// Statuses reports the state of every collector, sorted by name.
func (r *Scraper) Statuses() []Status {
	out := make([]Status, 0, len(r.runners))
	for _, rn := range r.runners {
		rn.mu.Lock()
		st := Status{Name: rn.name, LastError: rn.lastErr, LastRun: rn.lastRun}
		rn.mu.Unlock()
		if n, ok := rn.c.(Noter); ok {
			st.Note = n.Note()
		}
		out = append(out, st)
	}
	return out
}

// runner guards one collector: at most one run in flight, and scrapes that
// arrive while it runs wait on that run instead of starting another.
type runner struct {
	name   string
	c      Collector
	logger *slog.Logger

	waiters atomic.Int32 // scrapes waiting on the current run (read by tests)

	mu      sync.Mutex
	current *flight // the run in flight, nil when idle
	lastErr string  // last error logged, to log once per change
	lastRun time.Time
}

type flight struct {
	done    chan struct{}
	metrics []prometheus.Metric
	err     error
}

type result struct {
	metrics []prometheus.Metric
	err     error
	waited  time.Duration
}

func (rn *runner) run(timeout time.Duration) result {
	start := time.Now()
	rn.mu.Lock()
	f := rn.current
	if f == nil {
		f = &flight{done: make(chan struct{})}
		rn.current = f
		go rn.execute(f, timeout)
	}
	rn.mu.Unlock()

	rn.waiters.Add(1)
	defer rn.waiters.Add(-1)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-f.done:
		return result{metrics: f.metrics, err: f.err, waited: time.Since(start)}
	case <-timer.C:
		err := fmt.Errorf("%s: %w (timeout %s)", rn.name, ErrTimeout, timeout)
		rn.record(err)
		return result{err: err, waited: time.Since(start)}
	}
}

// execute runs the collector once, into a buffer so that a run that
// outlives its scrape never writes to a channel nobody reads.
func (rn *runner) execute(f *flight, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch := make(chan prometheus.Metric, 64)
	collected := make(chan []prometheus.Metric)
	go func() {
		var ms []prometheus.Metric
		for m := range ch {
			ms = append(ms, m)
		}
		collected <- ms
	}()
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = inputerr.Panic(p) // a panic value may quote what the collector read
			}
		}()
		return rn.c.Update(ctx, ch)
	}()
	close(ch)
	f.metrics = <-collected
	if err != nil {
		f.err = fmt.Errorf("%s: %w", rn.name, err)
	}
	rn.record(f.err)
	rn.mu.Lock()
	rn.current = nil
	rn.mu.Unlock()
	close(f.done)
}

// record logs an error only when it differs from the last one, and logs the
// recovery once.
func (rn *runner) record(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	rn.mu.Lock()
	changed := msg != rn.lastErr
	rn.lastErr = msg
	rn.lastRun = time.Now()
	rn.mu.Unlock()
	if !changed {
		return
	}
	if err != nil {
		rn.logger.Error("collector failed", "collector", rn.name, "err", err)
	} else {
		rn.logger.Info("collector recovered", "collector", rn.name)
	}
}
