// Package datadog is the DogStatsD sink of panther-exporter: every interval
// it gathers the same prometheus.Gatherers that /metrics serves and sends it to a
// Datadog Agent with github.com/DataDog/datadog-go/v5. It never calls a
// collector itself: one collection, two outputs.
//
// Gauges (and untyped metrics) are sent as gauges; counters as counts of the
// delta since the last flush (a series seen for the first time and a counter
// that went down, a reset, send nothing for that flush; a count is never
// negative). Counts are integers on the wire of this client, so the
// fraction of a float counter's delta is carried to the next flush: the sum
// of the counts stays within 1 of the counter's growth. Labels become tags
// (empty values are left out, as Prometheus treats them as absent), plus
// the --datadog.tags. Names follow Name.
package datadog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Sink gathers and sends. Build it with New, run it with Run; it is also a
// prometheus.Collector of its own telemetry (panther_datadog_*).
type Sink struct {
	logger   *slog.Logger
	gatherer prometheus.Gatherer
	opts     Options
	client   *statsd.Client

	mu       sync.Mutex // one flush at a time
	counters map[string]*counterState
	capped   bool   // the cap dropped series on the last flush
	lastErr  string // last gather error logged

	flushes       atomic.Uint64
	flushErrors   atomic.Uint64
	seriesSent    atomic.Uint64
	seriesDropped atomic.Uint64
	resets        atomic.Uint64
	lastSeries    atomic.Int64
	lastFlush     atomic.Int64 // unix nanoseconds
	lastDuration  atomic.Int64 // nanoseconds
}

type counterState struct {
	last  float64 // the counter's value at the last flush
	carry float64 // fraction of the delta not sent yet
	seen  uint64  // flush number it was last seen in
}

// New connects the client (UDP and unix datagram sockets need no peer to
// start) and returns the sink. gatherer is what /metrics serves.
func New(logger *slog.Logger, gatherer prometheus.Gatherer, o Options) (*Sink, error) {
	if o.Include == nil {
		return nil, errors.New("datadog: Options.Include is nil")
	}
	copts := []statsd.Option{
		statsd.WithTags(o.Tags),
		// Each series is sent once per flush, so client-side aggregation has
		// nothing to merge; without it the datagrams keep our order.
		statsd.WithoutClientSideAggregation(),
		// One worker: one buffer to fill, so few and full datagrams.
		statsd.WithWorkersCount(1),
		// The exporter reports the host, not its own container.
		statsd.WithoutOriginDetection(),
		// Flush ends with client.Flush, so the client's own buffer flush
		// (every 100ms by default) has nothing to do but wake the process
		// ten times a second: about 3,600 context switches a minute on an
		// idle host, the most of all the exporter's idle work
		// (docs/benchmarks.md, "Role profiles"). Once an interval is enough.
		statsd.WithBufferFlushInterval(bufferFlushInterval(o.Interval)),
	}
	if o.Unbuffered {
		copts = append(copts, statsd.WithMaxMessagesPerPayload(1))
	}
	c, err := statsd.New(o.Address, copts...)
	if err != nil {
		return nil, fmt.Errorf("datadog: client for %s: %w", describeAddress(o.Address), err)
	}
	return &Sink{logger: logger, gatherer: gatherer, opts: o, client: c, counters: map[string]*counterState{}}, nil
}

// bufferFlushInterval is the client's own flush period: the sink's
// interval, or a minute when none is set (a sink flushed by hand).
func bufferFlushInterval(interval time.Duration) time.Duration {
	if interval <= 0 {
		return time.Minute
	}
	return interval
}

// Run flushes every interval until ctx is done, then closes the client.
func (s *Sink) Run(ctx context.Context) {
	s.logger.Info("DogStatsD sink started", "address", describeAddress(s.opts.Address),
		"transport", s.client.GetTransport(), "interval", s.opts.Interval)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Close()
			return
		case <-t.C:
			s.Flush()
		}
	}
}

// Close flushes what is buffered and closes the client.
func (s *Sink) Close() error { return s.client.Close() }

// series is one sample to send.
type series struct {
	name    string // DogStatsD name
	key     string // identity of the series for counter state
	tags    []string
	value   float64
	counter bool
}

// FlushResult says what one flush did (for tests and the benchmark).
type FlushResult struct {
	Series  int // series sent
	Dropped int // series over the cap
	Resets  int // counters that went down
}

// Flush gathers once and sends. Safe for concurrent use; flushes do not overlap.
func (s *Sink) Flush() FlushResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	n := s.flushes.Add(1)

	mfs, err := s.gatherer.Gather()
	s.recordGatherError(err)

	var all []series
	for _, mf := range mfs {
		name := mf.GetName()
		if !s.opts.Include.MatchString(name) || (s.opts.Exclude != nil && s.opts.Exclude.MatchString(name)) {
			continue
		}
		all = appendFamily(all, mf, start)
	}
	var res FlushResult
	if s.opts.MaxSeries > 0 && len(all) > s.opts.MaxSeries {
		res.Dropped = len(all) - s.opts.MaxSeries
		all = all[:s.opts.MaxSeries]
	}
	s.recordCap(res.Dropped, len(all)+res.Dropped)

	for _, m := range all {
		if !m.counter {
			if math.IsNaN(m.value) || math.IsInf(m.value, 0) {
				continue // DogStatsD has no NaN
			}
			if err := s.client.Gauge(m.name, m.value, m.tags, 1); err != nil {
				s.flushErrors.Add(1)
			}
			res.Series++
			continue
		}
		st, ok := s.counters[m.key]
		if !ok {
			s.counters[m.key] = &counterState{last: m.value, seen: n}
			continue // first sight: no delta yet
		}
		st.seen = n
		if m.value < st.last || math.IsNaN(m.value) {
			st.last, st.carry = m.value, 0
			res.Resets++
			continue
		}
		d := m.value - st.last + st.carry
		st.last = m.value
		whole := math.Floor(d)
		st.carry = d - whole
		if err := s.client.Count(m.name, int64(whole), m.tags, 1); err != nil {
			s.flushErrors.Add(1)
		}
		res.Series++
	}
	// Series that went away are forgotten: memory follows what exists.
	for k, st := range s.counters {
		if st.seen != n {
			delete(s.counters, k)
		}
	}
	if err := s.client.Flush(); err != nil {
		s.flushErrors.Add(1)
	}
	s.seriesSent.Add(uint64(res.Series))
	s.seriesDropped.Add(uint64(res.Dropped))
	s.resets.Add(uint64(res.Resets))
	s.lastSeries.Store(int64(res.Series))
	s.lastDuration.Store(int64(time.Since(start)))
	s.lastFlush.Store(time.Now().UnixNano())
	return res
}

// appendFamily turns one metric family into series. Summaries and
// histograms send their _sum and _count as counters (buckets and quantiles
// are left out). A gauge named *_timestamp_seconds with a value above 0 also
// sends its age, now minus the timestamp, as *_age_seconds (see AgeName):
// Datadog queries have no time(), so "how long since the last scrub" can
// only be monitored if the sink sends it.
func appendFamily(out []series, mf *dto.MetricFamily, now time.Time) []series {
	name := mf.GetName()
	for _, m := range mf.GetMetric() {
		tags, key := tagsOf(m)
		add := func(promName string, v float64, counter bool) {
			dd := Name(promName, counter)
			out = append(out, series{name: dd, key: dd + "|" + key, tags: tags, value: v, counter: counter})
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			add(name, m.GetCounter().GetValue(), true)
		case dto.MetricType_GAUGE:
			v := m.GetGauge().GetValue()
			add(name, v, false)
			if age, ok := AgeName(name); ok && v > 0 {
				add(age, float64(now.UnixNano())/1e9-v, false)
			}
		case dto.MetricType_UNTYPED:
			add(name, m.GetUntyped().GetValue(), false)
		case dto.MetricType_SUMMARY:
			add(name+"_sum", m.GetSummary().GetSampleSum(), true)
			add(name+"_count", float64(m.GetSummary().GetSampleCount()), true)
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			add(name+"_sum", m.GetHistogram().GetSampleSum(), true)
			add(name+"_count", float64(m.GetHistogram().GetSampleCount()), true)
		}
	}
	return out
}

func tagsOf(m *dto.Metric) ([]string, string) {
	lps := m.GetLabel()
	tags := make([]string, 0, len(lps))
	for _, lp := range lps {
		if lp.GetValue() == "" {
			continue
		}
		tags = append(tags, tag(lp.GetName(), lp.GetValue()))
	}
	sort.Strings(tags) // Gather sorts labels already; keep it stable anyway
	return tags, strings.Join(tags, ",")
}

func (s *Sink) recordGatherError(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == s.lastErr {
		return
	}
	s.lastErr = msg
	if err != nil {
		s.logger.Warn("DogStatsD sink: gather returned errors; sending what was gathered", "err", err)
	}
}

// recordCap logs once when the cap starts dropping series, and once when it
// stops.
func (s *Sink) recordCap(dropped, total int) {
	switch {
	case dropped > 0 && !s.capped:
		s.capped = true
		s.logger.Warn("DogStatsD sink: series over --datadog.max-series dropped (counted in panther_datadog_series_dropped_total; logged once)",
			"max_series", s.opts.MaxSeries, "series", total, "dropped", dropped)
	case dropped == 0 && s.capped:
		s.capped = false
		s.logger.Info("DogStatsD sink: series back under --datadog.max-series", "series", total)
	}
}
