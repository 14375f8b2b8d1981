package server

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/hwmon"
	_ "github.com/pantheros/monitoring/exporter/collector/limits"
	_ "github.com/pantheros/monitoring/exporter/collector/power"
	_ "github.com/pantheros/monitoring/exporter/collector/timex"
)

func BenchmarkHardwareScrape(b *testing.B) {
	tree := os.Getenv("HW_TREE")
	cfg := collector.Config{SysPath: tree + "/sys", ProcPath: tree + "/proc", Logger: slog.New(slog.DiscardHandler)}
	collector.DisableDefaults()
	for _, n := range []string{"hwmon", "power", "limits", "timex"} {
		collector.EnableExplicitly(n)
	}
	s, err := collector.Build(cfg, collector.Options{Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	own := prometheus.NewRegistry()
	own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hd := New(Config{Logger: cfg.Logger, Scraper: s, Exporter: own, TelemetryPath: "/metrics"})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		hd.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		io.Copy(io.Discard, w.Body)
	}
}
