// Package samples runs a collector once in a test and returns what it sent,
// by metric name, so that tests compare values instead of text.
package samples

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pantheros/monitoring/exporter/collector"
)

// Sample is one series: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Set is every sample of one Update, by metric name.
type Set map[string][]Sample

// Collect runs c.Update once and returns its samples and its error.
func Collect(t testing.TB, c collector.Collector) (Set, error) {
	t.Helper()
	ch := make(chan prometheus.Metric, 4096)
	err := c.Update(context.Background(), ch)
	close(ch)
	out := Set{}
	for m := range ch {
		var pb dto.Metric
		if werr := m.Write(&pb); werr != nil {
			t.Fatal(werr)
		}
		s := Sample{Labels: map[string]string{}}
		for _, l := range pb.Label {
			s.Labels[l.GetName()] = l.GetValue()
		}
		switch {
		case pb.Gauge != nil:
			s.Value = pb.Gauge.GetValue()
		case pb.Counter != nil:
			s.Value = pb.Counter.GetValue()
		default:
			t.Fatalf("%s: neither gauge nor counter", m.Desc())
		}
		name := descName(m.Desc().String())
		out[name] = append(out[name], s)
	}
	return out, err
}

// descName takes fqName out of Desc.String(), which is the only way
// client_golang gives it.
func descName(d string) string {
	const key = `fqName: "`
	i := strings.Index(d, key)
	if i < 0 {
		return d
	}
	rest := d[i+len(key):]
	return rest[:strings.IndexByte(rest, '"')]
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
