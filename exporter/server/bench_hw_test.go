package server

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
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

// BenchmarkHardwareScrape is one whole /metrics request of the hardware
// collectors over the trees e2e/bench/hardware.sh compares with
// node_exporter (the Dell XPS 13 sysfs, the server procfs), with the go and
// process collectors the binary adds: where a scrape's CPU goes, for
//
//	go test -run '^$' -bench HardwareScrape -cpuprofile cpu.prof ./exporter/server/
func BenchmarkHardwareScrape(b *testing.B) {
	tree := b.TempDir()
	for _, c := range [][2]string{
		{"../collector/hwmon/testdata/intel-laptop/sys/.", "sys"},
		{"../collector/power/testdata/intel-laptop/sys/.", "sys"},
		{"../collector/limits/testdata/server/proc/.", "proc"},
	} {
		dst := filepath.Join(tree, c[1])
		if out, err := exec.Command("mkdir", "-p", dst).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		if out, err := exec.Command("cp", "-a", c[0], dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -a %s: %v: %s", c[0], err, out)
		}
	}
	cfg := collector.Config{SysPath: filepath.Join(tree, "sys"), ProcPath: filepath.Join(tree, "proc"), Logger: slog.New(slog.DiscardHandler)}
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
	h := New(Config{Logger: cfg.Logger, Scraper: s, Exporter: own, TelemetryPath: "/metrics"})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
		io.Copy(io.Discard, w.Body)
	}
}
