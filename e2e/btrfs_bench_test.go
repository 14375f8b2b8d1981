//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/btrfs"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

// BenchmarkBtrfsCollector times the btrfs collector's Update on a real
// raid1 loop btrfs (quotas on) with 1, 100 and 2000 read-only snapshots of
// one subvolume. ns/op is a warm scrape: the subvolume walk already done
// and the filesystem idle, so Update reads sysfs and the cached summary.
// walk-ms is the first Update of a fresh collector, which waits for the
// background walk of all subvolumes (the cost that moves off the scrape
// path). The collector sees only this filesystem (a private --path.sysfs
// linking to its sysfs directory).
//
//	go test -tags=$(cat exporter/build-tags),e2e \
//	  -run '^$' -bench BtrfsCollector -benchtime 2000x ./e2e/
func BenchmarkBtrfsCollector(b *testing.B) {
	fs := newBtrfs(b)
	fs.Subvolume("data")
	fs.WriteFile("data/file", 1<<20)
	runCmd(b, "btrfs", "quota", "enable", fs.Mnt)
	sys := b.TempDir()
	if err := os.MkdirAll(filepath.Join(sys, "fs", "btrfs"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("/sys/fs/btrfs", fs.UUID), filepath.Join(sys, "fs", "btrfs", fs.UUID)); err != nil {
		b.Fatal(err)
	}
	cfg := collector.Config{Logger: slog.New(slog.DiscardHandler), ProcPath: "/proc", SysPath: sys, RootPath: "/"}
	have := 0
	for _, n := range []int{1, 100, 2000} {
		for ; have < n; have++ {
			fs.Snapshot("data", fmt.Sprintf(".snapshots/data/%04d", have))
		}
		fs.Sync()
		b.Run(fmt.Sprintf("snapshots=%d", n), func(b *testing.B) {
			c, err := btrfs.New(cfg, btrfs.Options{SubvolumeInterval: time.Minute, Subvolumes: true, ScrubStatus: true})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			got := collectortest.Collect(b, c)
			if got.Err != nil {
				b.Fatal(got.Err)
			}
			if v := got.Value(b, "panther_btrfs_snapshots", map[string]string{"subvolume": "data"}); v != float64(n) {
				b.Fatalf("snapshots = %v, want %d", v, n)
			}
			walk := time.Since(start)
			update(b, c) // the walk's own open may have moved the generation
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				update(b, c)
			}
			b.StopTimer()
			b.ReportMetric(float64(walk.Microseconds())/1000, "walk-ms")
		})
	}
}

// update runs one Update, discarding the metrics, as a scrape's cost
// without the encoding.
func update(b *testing.B, c *btrfs.Btrfs) {
	ch := make(chan prometheus.Metric, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := c.Update(ctx, ch)
	cancel()
	close(ch)
	<-done
	if err != nil {
		b.Fatal(err)
	}
}
