// Package collectortest is the one way the tests of this repository read
// what a collector sent: run Update once, gather the metrics through a
// prometheus.Registry (which rejects duplicate series and inconsistent
// families, as a scrape would), then compare the exposition text against a
// golden testdata/*.prom file or look single values up.
//
// Golden files are rewritten from what the collectors send with
//
//	go test ./exporter/collector/<name>/ -update
//
// and reviewed in the diff like any other change.
//
// It does not import package collector, so that package's own tests can use
// it too.
package collectortest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/*.prom and other generated files) from what the code produces")

// Updating reports whether the test binary runs with -update: golden files
// are then rewritten instead of compared. Other generated files of a package
// that imports collectortest follow the same flag.
func Updating() bool { return *update }

// Updater is what every collector meets (collector.Collector).
type Updater interface {
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Timeout bounds one Update run by Collect.
const Timeout = 30 * time.Second

// Result is what one collection sent, gathered into families sorted by name.
type Result struct {
	Families []*dto.MetricFamily
	Err      error // what Update returned; metrics sent before it are kept
}

// Collect runs c.Update once and gathers what it sent. A run that sends
// inconsistent families fails the test; the Update error is returned in
// Result.Err for the test to judge.
func Collect(t testing.TB, c Updater) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ch := make(chan prometheus.Metric)
	got := make(chan []prometheus.Metric)
	go func() {
		var ms []prometheus.Metric
		for m := range ch {
			ms = append(ms, m)
		}
		got <- ms
	}()
	err := c.Update(ctx, ch)
	close(ch)
	r := Gather(t, replay(<-got))
	r.Err = err
	return r
}

// Gather gathers g, failing the test on a gathering error.
func Gather(t testing.TB, g prometheus.Gatherer) Result {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return Result{Families: fams}
}

// GatherCollector registers c in a fresh prometheus.Registry and gathers it.
func GatherCollector(t testing.TB, c prometheus.Collector) Result {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	return Gather(t, reg)
}

// replay is an unchecked collector sending metrics gathered earlier.
type replay []prometheus.Metric

func (replay) Describe(chan<- *prometheus.Desc) {}
func (r replay) Collect(ch chan<- prometheus.Metric) {
	for _, m := range r {
		ch <- m
	}
}

func (r replay) Gather() ([]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r)
	return reg.Gather()
}

// Family returns the family called name, or nil.
func (r Result) Family(name string) *dto.MetricFamily {
	for _, f := range r.Families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// Has reports whether a family called name was sent.
func (r Result) Has(name string) bool { return r.Family(name) != nil }

// Names lists the families sent, sorted.
func (r Result) Names() []string {
	out := make([]string, 0, len(r.Families))
	for _, f := range r.Families {
		out = append(out, f.GetName())
	}
	return out
}

// Sample is one series of a gauge, counter or untyped family.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Series returns the series of name whose labels include want (all of them
// when want is empty).
func (r Result) Series(name string, want map[string]string) []Sample {
	f := r.Family(name)
	if f == nil {
		return nil
	}
	var out []Sample
next:
	for _, m := range f.Metric {
		s := Sample{Labels: map[string]string{}, Value: value(m)}
		for _, l := range m.Label {
			s.Labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if s.Labels[k] != v {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// Lookup returns the value of the one series of name whose labels include
// want; ok is false when there is none or more than one.
func (r Result) Lookup(name string, want map[string]string) (v float64, ok bool) {
	ss := r.Series(name, want)
	if len(ss) != 1 {
		return 0, false
	}
	return ss[0].Value, true
}

// Value is Lookup that fails the test unless exactly one series matches.
func (r Result) Value(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	ss := r.Series(name, want)
	if len(ss) != 1 {
		t.Fatalf("%s%v: %d series, want 1 (all: %v)", name, want, len(ss), r.Series(name, nil))
	}
	return ss[0].Value
}

func value(m *dto.Metric) float64 {
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

// Flat returns every sample line of the text format as
// name{label="value",...} -> value, labels sorted, empty labels left out
// (as the text format treats them); summaries and histograms give their
// _sum, _count, quantile and _bucket lines.
func (r Result) Flat() map[string]float64 {
	out := map[string]float64{}
	for _, f := range r.Families {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				if l.GetValue() != "" {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			key := func(suffix string, extra ...string) string {
				all := append(append([]string{}, ls...), extra...)
				sort.Strings(all)
				k := f.GetName() + suffix
				if len(all) > 0 {
					k += "{" + strings.Join(all, ",") + "}"
				}
				return k
			}
			switch f.GetType() {
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().Quantile {
					out[key("", fmt.Sprintf("quantile=%q", fmt.Sprint(q.GetQuantile())))] = q.GetValue()
				}
				out[key("_sum")] = m.GetSummary().GetSampleSum()
				out[key("_count")] = float64(m.GetSummary().GetSampleCount())
			case dto.MetricType_HISTOGRAM:
				for _, b := range m.GetHistogram().Bucket {
					out[key("_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
				out[key("_bucket", `le="+Inf"`)] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
			default:
				out[key("")] = value(m)
			}
		}
	}
	return out
}

// Only keeps the families named (all when names is empty).
func (r Result) Only(names ...string) Result {
	if len(names) == 0 {
		return r
	}
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
	}
	return r.filter(func(n string) bool { return keep[n] })
}

// Without drops the families named: values that move between runs (ages,
// durations, timestamps of now) have no place in a golden file.
func (r Result) Without(names ...string) Result {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	return r.filter(func(n string) bool { return !drop[n] })
}

func (r Result) filter(keep func(string) bool) Result {
	out := Result{Err: r.Err}
	for _, f := range r.Families {
		if keep(f.GetName()) {
			out.Families = append(out.Families, f)
		}
	}
	return out
}

// Text renders the families in the Prometheus text format.
func (r Result) Text() string {
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range r.Families {
		if err := enc.Encode(f); err != nil {
			panic(fmt.Sprintf("encode %s: %v", f.GetName(), err))
		}
	}
	return b.String()
}

// Golden compares the families with the golden file (a path relative to the
// test's package, by convention testdata/<name>.prom) through client_golang's
// testutil, which reports the difference. With -update it writes the file
// instead.
func (r Result) Golden(t testing.TB, file string) {
	t.Helper()
	text := r.Text()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", file)
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	// Both sides go through the text format, and testutil gives the
	// expected side's families without HELP an empty one: so does this.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	got, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("collected metrics do not parse back: %v", err)
	}
	if err := testutil.GatherAndCompare(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams := make([]*dto.MetricFamily, 0, len(got))
		for _, f := range got {
			if f.Help == nil {
				f.Help = new(string)
			}
			fams = append(fams, f)
		}
		sort.Slice(fams, func(i, j int) bool { return fams[i].GetName() < fams[j].GetName() })
		return fams, nil
	}), bytes.NewReader(want)); err != nil {
		t.Errorf("%s differs from what was collected (run with -update to accept):\n%v", file, err)
	}
}
