package datadog_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/all" // the full catalog
	"github.com/pantheros/monitoring/exporter/datadog"
)

// No two series of the catalog, age series included, share a DogStatsD name:
// panther_x_total (a counter) and a gauge panther_x would both be panther.x.
func TestCatalogNamesDistinct(t *testing.T) {
	seen := map[string]string{}
	add := func(dd, from string) {
		if prev, dup := seen[dd]; dup {
			t.Errorf("%s and %s are both sent as %s", prev, from, dd)
		}
		seen[dd] = from
	}
	for _, m := range collector.Catalog() {
		counter := m.Type == prometheus.CounterValue
		add(datadog.Name(m.Name, counter), m.Name)
		if age, ok := datadog.AgeName(m.Name); ok && !counter {
			add(datadog.Name(age, false), m.Name+" (age)")
		}
	}
	if len(seen) < 50 {
		t.Errorf("only %d names: is the catalog filled?", len(seen))
	}
}
