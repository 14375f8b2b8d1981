package podman

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkUpdate measures a scrape of one socket's snapshot of n running
// containers: what the scrape costs without Podman in the way.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{0, 50, 200} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p, err := New(collectorConfig(), Options{Sockets: []string{"bench=unix:///nonexistent"}})
			if err != nil {
				b.Fatal(err)
			}
			e := p.endpoints["bench"]
			snap := &Snapshot{Stats: map[string]Stats{}, ListedAt: time.Now(), StatsAt: time.Now(), Images: 1}
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("%064x", i)
				snap.Containers = append(snap.Containers, Container{ID: id, Name: fmt.Sprintf("sleep%d", i),
					Image: "localhost/busybox:e2e", State: "running", Created: 1.7e9, Started: 1.7e9})
				snap.Stats[id] = Stats{CPUSeconds: 0.04, MemUsage: 340e3, MemLimit: 25e9, PIDs: 1}
			}
			e.snap, e.st = snap, status{up: true}
			ch := make(chan prometheus.Metric, 100000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Update(context.Background(), ch)
				for len(ch) > 0 {
					<-ch
				}
			}
		})
	}
}
