package boot

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

func TestNewRejectsBadFlags(t *testing.T) {
	for _, o := range []Options{
		{BlameInclude: "("},
		{TimersInclude: "[", BlameTop: 20},
		{BlameTop: -1},
	} {
		if _, err := New(collector.Config{}, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := New(collector.Config{}, Options{BlameTop: 20, TimersInclude: DefaultTimersInclude}); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultTimersInclude(t *testing.T) {
	b, _ := New(collector.Config{}, Options{TimersInclude: DefaultTimersInclude})
	for name, want := range map[string]bool{
		"nix-gc.timer": true, "nix-optimise.timer": true, "btrfs-scrub-home.timer": true,
		"btrfs-scrub--.timer": true, "snapper-timeline.timer": true, "snapper-cleanup.timer": true,
		"btrbk-daily.timer": true, "zfs-snapshot-hourly.timer": true,
		"systemd-tmpfiles-clean.timer": false, "logrotate.timer": false, "nix-gc.service": false,
	} {
		if got := b.timerInc.MatchString(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// Without a bus the collector fails naming the address, sends nothing
// stale, and leaves no goroutine behind however often it is asked.
func TestUpdateWithoutBus(t *testing.T) {
	addr := "unix:path=" + t.TempDir() + "/absent.sock"
	b, err := New(collector.Config{ProcPath: t.TempDir()}, Options{DBusAddress: addr, BlameTop: 20, RefreshInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	run := func() (int, error) {
		ch := make(chan prometheus.Metric, 1000)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := b.Update(ctx, ch)
		close(ch)
		return len(ch), err
	}
	n, err := run()
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v, want one naming %s", err, addr)
	}
	if n != 0 {
		t.Fatalf("sent %d metrics without a bus", n)
	}
	base := runtime.NumGoroutine()
	for range 50 {
		run()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base {
		t.Fatalf("goroutines grew from %d to %d", base, g)
	}
}
