//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/boot"
)

// benchBoot runs the boot collector's Update against the fake systemd with
// a 300-unit workstation on a private dbus-daemon. refresh is the unit
// refresh interval: 0 re-reads the unit list, blame and timers on every
// Update (the cost paid once per interval), a long one measures a warm
// scrape within the interval.
func benchBoot(b *testing.B, refresh time.Duration, fullEvery int) {
	requireRoot(b)
	bus := startDBus(b)
	startFakeSystemd(b, bus, fakesystemd.Workstation(300))
	c, err := boot.New(collector.Config{ProcPath: "/proc"}, boot.Options{
		DBusAddress: bus.Address, BlameTop: 20, TimersInclude: boot.DefaultTimersInclude, RefreshInterval: refresh,
		FullRefreshEvery: fullEvery,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	update := func() int {
		ch := make(chan prometheus.Metric, 512)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Update(ctx, ch); err != nil {
			b.Fatal(err)
		}
		return len(ch)
	}
	n := update() // connect, read the boot times once
	b.ReportMetric(float64(n), "metrics/op")
	b.ResetTimer()
	for range b.N {
		update()
	}
}

// BenchmarkBootWarm300: a scrape within the refresh interval (the default 30s).
func BenchmarkBootWarm300(b *testing.B) { benchBoot(b, time.Hour, 0) }

// BenchmarkBootRefresh300: a scrape that refreshes the unit list and the
// timers, re-reading the timestamps of units whose state changed (none
// here): what most refreshes cost.
func BenchmarkBootRefresh300(b *testing.B) { benchBoot(b, 0, 1<<30) }

// BenchmarkBootFullRefresh300: a refresh that re-reads the timestamps of all
// 300 units (every 10th refresh, and the first).
func BenchmarkBootFullRefresh300(b *testing.B) { benchBoot(b, 0, 1) }
