package podman

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pantheros/monitoring/exporter/collector"
)

// BenchmarkScrape200 is a whole HTTP scrape (scraper, gathering, text
// encoding, gzip as Prometheus asks) of a snapshot of 200 running
// containers, to see where a scrape's CPU goes.
func BenchmarkScrape200(b *testing.B) {
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprint("gzip=", gz), func(b *testing.B) {
			p, err := New(collectorConfig(), Options{Sockets: []string{"bench=unix:///nonexistent"}})
			if err != nil {
				b.Fatal(err)
			}
			e := p.endpoints["bench"]
			snap := &Snapshot{Stats: map[string]Stats{}, ListedAt: time.Now(), StatsAt: time.Now(), Images: 1}
			for i := 0; i < 200; i++ {
				id := fmt.Sprintf("%064x", i)
				snap.Containers = append(snap.Containers, Container{ID: id, Name: fmt.Sprintf("sleep%d", i),
					Image: "localhost/busybox:e2e", State: "running", Created: 1.7e9, Started: 1.7e9})
				snap.Stats[id] = Stats{CPUSeconds: 0.04, MemUsage: 340e3, MemLimit: 25e9, PIDs: 1}
			}
			e.snap, e.st = snap, status{up: true}
			reg := collector.NewScraper(slog.New(slog.DiscardHandler), collector.Options{}, collector.Named{Name: "podman", Collector: p})
			r := prometheus.NewRegistry()
			r.MustRegister(reg)
			h := promhttp.HandlerFor(r, promhttp.HandlerOpts{})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("GET", "/metrics", nil)
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
				io.Copy(io.Discard, w.Body)
			}
		})
	}
}
