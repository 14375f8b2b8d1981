package hwmon

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

// BenchmarkUpdateIntelLaptop is one scrape of the Dell XPS 13 fixture:
// 7 hwmon chips, 6 thermal zones, 8 CPUs with throttle counters.
func BenchmarkUpdateIntelLaptop(b *testing.B) {
	h, err := New(collector.Config{SysPath: "testdata/intel-laptop/sys"})
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan prometheus.Metric, 1024)
	go func() {
		for range ch {
		}
	}()
	defer close(ch)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Update(context.Background(), ch); err != nil {
			b.Fatal(err)
		}
	}
}
