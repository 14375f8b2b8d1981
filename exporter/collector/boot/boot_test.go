package boot

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
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
	run := func() collectortest.Result { return collectortest.Collect(t, b) }
	got := run()
	if got.Err == nil || !strings.Contains(got.Err.Error(), addr) {
		t.Fatalf("err = %v, want one naming %s", got.Err, addr)
	}
	if len(got.Families) != 0 {
		t.Fatalf("sent %v without a bus", got.Names())
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

// updateFunc adapts a function to collector.Collector.
type updateFunc func(ctx context.Context, ch chan<- prometheus.Metric) error

func (f updateFunc) Update(ctx context.Context, ch chan<- prometheus.Metric) error { return f(ctx, ch) }

// TestBootGolden pins what a scrape exports of each machine's boot
// timestamps (the fixtures of TestAnalyzeMachines, as the manager's GetAll
// returns them), default.target reached 1.5 s after userspace started.
func TestBootGolden(t *testing.T) {
	for _, fixture := range []string{"laptop", "server-252", "container", "soft-reboot", "booting"} {
		t.Run(fixture, func(t *testing.T) {
			raw, _ := ParseBootTimes(loadProps(t, fixture+".json"))
			st := &bootState{analysis: Analyze(raw)}
			st.defTgt, st.defOK = st.analysis.DefaultTargetReached(raw.Userspace + 1500000)
			b := &Boot{boot: st}
			got := collectortest.Collect(t, updateFunc(func(_ context.Context, ch chan<- prometheus.Metric) error {
				b.sendBoot(ch)
				return nil
			}))
			got.Golden(t, "testdata/"+fixture+".prom")
		})
	}
}
