package collector

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric describes one metric family. Creating it with NewMetric records it
// in the catalog, from which docs/metrics.md is generated and against which
// the rules, dashboards and monitors are checked offline: a metric not in
// the catalog is not exported.
type Metric struct {
	Collector string // which collector exports it ("exporter" for the process itself)
	Name      string // full name, panther_ prefix included
	Help      string
	Type      prometheus.ValueType
	Labels    []string
	Desc      *prometheus.Desc
}

var (
	catalogMu sync.Mutex
	catalog   = map[string]*Metric{}
)

// NewMetric declares a metric family of collectorName. name is given
// without the namespace: NewMetric("btrfs", "btrfs_used_bytes", ...) is
// panther_btrfs_used_bytes. Declaring one name twice panics: names are
// global.
func NewMetric(collectorName, name string, t prometheus.ValueType, help string, labels ...string) *Metric {
	full := Namespace + "_" + name
	m := &Metric{
		Collector: collectorName,
		Name:      full,
		Help:      help,
		Type:      t,
		Labels:    labels,
		Desc:      prometheus.NewDesc(full, help, labels, nil),
	}
	catalogMu.Lock()
	defer catalogMu.Unlock()
	if _, dup := catalog[full]; dup {
		panic("metric declared twice: " + full)
	}
	catalog[full] = m
	return m
}

// Gauge declares a gauge of collectorName.
func Gauge(collectorName, name, help string, labels ...string) *Metric {
	return NewMetric(collectorName, name, prometheus.GaugeValue, help, labels...)
}

// Counter declares a counter of collectorName; name must end in _total.
func Counter(collectorName, name, help string, labels ...string) *Metric {
	if !strings.HasSuffix(name, "_total") {
		panic("counter without _total: " + name)
	}
	return NewMetric(collectorName, name, prometheus.CounterValue, help, labels...)
}

// Const builds a sample of m. Label values must match the declared labels
// in number; a mismatch is a programming error and panics.
func (m *Metric) Const(value float64, labelValues ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(m.Desc, m.Type, value, labelValues...)
}

// Catalog returns every declared metric, sorted by collector, then name.
func Catalog() []*Metric {
	catalogMu.Lock()
	defer catalogMu.Unlock()
	out := make([]*Metric, 0, len(catalog))
	for _, m := range catalog {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Collector != out[j].Collector {
			return out[i].Collector < out[j].Collector
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Declare records metrics that are built elsewhere (client_golang's own
// collectors, the DogStatsD sink's telemetry) so the catalog is complete.
// It does not create a Desc.
func Declare(collectorName, fullName string, t prometheus.ValueType, help string, labels ...string) {
	catalogMu.Lock()
	defer catalogMu.Unlock()
	if _, dup := catalog[fullName]; dup {
		panic("metric declared twice: " + fullName)
	}
	catalog[fullName] = &Metric{Collector: collectorName, Name: fullName, Help: help, Type: t, Labels: labels}
}
