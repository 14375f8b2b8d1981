package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

const metricsDoc = "../../../docs/metrics.md"

// renderMetricsDoc writes the metric reference from the catalog that every
// collector fills when its package is imported (via exporter/collector/all).
func renderMetricsDoc() string {
	var b strings.Builder
	b.WriteString("# Metrics reference\n\n")
	b.WriteString("Generated from the code by `make docs`; `go test` fails when this file is stale.\n")
	b.WriteString("Every series of a collector also carries the labels Prometheus adds (`job`, `instance`).\n")
	last := ""
	for _, m := range collector.Catalog() {
		if m.Collector != last {
			fmt.Fprintf(&b, "\n## %s\n\n| metric | type | labels | help |\n|---|---|---|---|\n", m.Collector)
			last = m.Collector
		}
		typ := map[prometheus.ValueType]string{prometheus.CounterValue: "counter", prometheus.GaugeValue: "gauge", prometheus.UntypedValue: "untyped"}[m.Type]
		labels := "-"
		if len(m.Labels) > 0 {
			labels = "`" + strings.Join(m.Labels, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.Name, typ, labels, strings.ReplaceAll(m.Help, "|", "\\|"))
	}
	return b.String()
}

func TestMetricsDoc(t *testing.T) {
	want := renderMetricsDoc()
	if collectortest.Updating() { // make docs: -update
		if err := os.WriteFile(metricsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatalf("%v (run `make docs`)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/metrics.md is stale: run `make docs` and commit it")
	}
}
