// Package samples is a view of what a collector sent, by metric name, with
// value checks (Want, Absent) for tests that compare values instead of
// text. The collection itself is collectortest's, the one way this
// repository runs a collector in a test.
package samples

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

// Sample is one series: its labels and value.
type Sample = collectortest.Sample

// Set is every sample of one Update, by metric name.
type Set map[string][]Sample

// Collect runs c.Update once through collectortest and returns its samples
// and its error. Families other than gauges and counters fail the test.
func Collect(t testing.TB, c collector.Collector) (Set, error) {
	t.Helper()
	got := collectortest.Collect(t, c)
	out := Set{}
	for _, f := range got.Families {
		if f.GetType() != dto.MetricType_GAUGE && f.GetType() != dto.MetricType_COUNTER {
			t.Fatalf("%s: neither gauge nor counter", f.GetName())
		}
		out[f.GetName()] = got.Series(f.GetName(), nil)
	}
	return out, got.Err
}

// Get returns the value of name with exactly these labels (a subset match:
// every given label must agree), and whether exactly one series matched.
func (s Set) Get(name string, labels ...string) (float64, bool) {
	var found []float64
	for _, smp := range s[name] {
		if matches(smp.Labels, labels) {
			found = append(found, smp.Value)
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

func matches(have map[string]string, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if have[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// Want checks that name{labels} is value; labels are key, value pairs.
func (s Set) Want(t testing.TB, value float64, name string, labels ...string) {
	t.Helper()
	got, ok := s.Get(name, labels...)
	if !ok {
		t.Errorf("%s%v: %d matching series, want 1 (have %s)", name, labels, s.count(name, labels), s.Series(name))
		return
	}
	if got != value {
		t.Errorf("%s%v = %v, want %v", name, labels, got, value)
	}
}

// Absent checks that no series of name matches labels.
func (s Set) Absent(t testing.TB, name string, labels ...string) {
	t.Helper()
	if n := s.count(name, labels); n > 0 {
		t.Errorf("%s%v: %d series, want none", name, labels, n)
	}
}

func (s Set) count(name string, labels []string) int {
	n := 0
	for _, smp := range s[name] {
		if matches(smp.Labels, labels) {
			n++
		}
	}
	return n
}

// Series lists name's series as text, sorted, for failure messages.
func (s Set) Series(name string) string {
	var out []string
	for _, smp := range s[name] {
		var ls []string
		for k, v := range smp.Labels {
			ls = append(ls, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(ls)
		out = append(out, fmt.Sprintf("{%s} %v", strings.Join(ls, ","), smp.Value))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
