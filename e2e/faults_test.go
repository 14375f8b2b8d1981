//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

// openFDs counts the open file descriptors of a process.
func openFDs(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// goroutines reads go_goroutines from a scrape of the exporter.
func goroutines(t testing.TB, e *Exporter) float64 {
	t.Helper()
	v, ok := e.Scrape(t).Value("go_goroutines", nil)
	if !ok {
		t.Fatal("no go_goroutines")
	}
	return v
}

// timedScrape scrapes once and fails the test if the answer took longer
// than limit or was not a 200.
func timedScrape(t testing.TB, e *Exporter, limit time.Duration) Families {
	t.Helper()
	start := time.Now()
	body, err := e.Get("/metrics")
	if d := time.Since(start); d > limit {
		t.Fatalf("scrape took %s, limit %s", d, limit)
	}
	if err != nil {
		t.Fatalf("scrape failed: %v", err)
	}
	fams, err := ParseFamilies(body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// A collector whose reads hang (a FIFO under --path.procfs) held past its
// deadline for 100 scrapes while Prometheus keeps scraping: every scrape
// answers within the timeout plus a margin, the collector is marked failed,
// no goroutine or file descriptor piles up, and it recovers by itself once
// the read returns.
func TestHungCollectorFor100Scrapes(t *testing.T) {
	beside(t) // mostly waits on a hung read, with parts of its own
	const timeout = 500 * time.Millisecond
	const margin = time.Second
	h := newHangingProc(t)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system",
		"--path.procfs="+h.Dir, fmt.Sprintf("--collector.timeout=%s", timeout))
	prom := startPrometheus(t, PromConfig{Targets: []string{e.Addr}, ScrapeInterval: time.Second})
	prom.WaitForSeries(t, 60*time.Second, `up{job="panther"} == 1`)

	// Warm up: the first scrapes start the stuck run, and Prometheus's and
	// our keep-alive connections settle.
	for i := 0; i < 20; i++ {
		timedScrape(t, e, timeout+margin)
	}
	g0, fd0 := goroutines(t, e), openFDs(t, e.Cmd.Process.Pid)
	for i := 0; i < 100; i++ {
		fams := timedScrape(t, e, timeout+margin)
		if v, ok := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "system"}); !ok || v != 0 {
			t.Fatalf("scrape %d: system success = %v (%v), want 0 while its read hangs", i, v, ok)
		}
		if _, ok := fams.Value("panther_exporter_build_info", nil); !ok {
			t.Fatalf("scrape %d lost the exporter's own metrics", i)
		}
	}
	// The landing page says why the data is missing, in words.
	if page, err := e.Get("/"); err != nil || !strings.Contains(page, `<td class="err">failing: system: deadline exceeded`) {
		t.Errorf("landing page while hung: %v\n%s", err, page)
	}
	g1, fd1 := goroutines(t, e), openFDs(t, e.Cmd.Process.Pid)
	t.Logf("after 100 scrapes of a hung collector: goroutines %v -> %v, fds %d -> %d", g0, g1, fd0, fd1)
	// A goroutine per scrape would be +100; allow a few for connections.
	if g1 > g0+5 {
		t.Errorf("goroutines grew from %v to %v", g0, g1)
	}
	if fd1 > fd0+3 {
		t.Errorf("open fds grew from %d to %d", fd0, fd1)
	}
	// Prometheus saw the failure too, and its scrapes kept succeeding.
	prom.WaitForSeries(t, 30*time.Second, `panther_scrape_collector_success{collector="system"} == 0`)
	if v, err := prom.Query(`up{job="panther"} == 0`); err != nil || len(v) != 0 {
		t.Errorf("Prometheus saw the exporter down: %v %v", v, err)
	}

	h.Release()
	eventually(t, 20*time.Second, "system collector recovers by itself", func() error {
		fams := timedScrape(t, e, timeout+margin)
		if v, _ := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "system"}); v != 1 {
			return fmt.Errorf("success = %v", v)
		}
		if v, _ := fams.Value("panther_load1", nil); v != 0.10 {
			return fmt.Errorf("load1 = %v, want the released file's 0.10", v)
		}
		return nil
	})
	prom.WaitForSeries(t, 30*time.Second, `panther_scrape_collector_success{collector="system"} == 1`)
	page, err := e.Get("/")
	if err != nil || !strings.Contains(page, `<td>system</td><td class="ok">ok</td>`) {
		t.Errorf("landing page after recovery: %v\n%s", err, page)
	}
}

// scrapeWatch scrapes the exporter in the background every 250 ms and
// records the slowest answer and every failure, so a fault test can assert
// that every scrape answered while the faults came and went.
type scrapeWatch struct {
	mu      sync.Mutex
	n       int
	slowest time.Duration
	fails   []string
	stop    chan struct{}
	done    chan struct{}
}

func watchScrapes(t testing.TB, e *Exporter) *scrapeWatch {
	w := &scrapeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			_, err := e.Get("/metrics")
			d := time.Since(start)
			w.mu.Lock()
			w.n++
			w.slowest = max(w.slowest, d)
			if err != nil {
				w.fails = append(w.fails, err.Error())
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

func (w *scrapeWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Every fault of the stack, one after another, while Prometheus keeps
// scraping an exporter with every collector on: the Podman service killed
// and restarted, the dbus-daemon killed and restarted, a Btrfs filesystem
// unmounted and mounted again, the DogStatsD receiver stopped and started.
// Every scrape answers within the collector timeout plus a margin, the
// failing part is marked failed and recovers by itself, and no goroutine
// or file descriptor leaks.
func TestFaultsWhileScraped(t *testing.T) {
	serial(t)
	requireRoot(t)
	const timeout = 3 * time.Second
	const margin = 2 * time.Second
	fs := newBtrfs(t)
	fs.Subvolume("data")
	fs.Snapshot("data", "data-snap")
	pod := startPodmanService(t, "faults")
	podmanImage(t, pod)
	pod.Run(t, "sleeper", nil, "sleep", "100000")
	bus := startDBus(t)
	fake := startFakeSystemd(t, bus, fakesystemd.Laptop())
	dd := startStatsdReceiver(t, "udp")

	e := startExporter(t, "--collector.timeout="+timeout.String(),
		"--collector.podman.socket="+pod.Flag(), "--collector.podman.list-interval=2s",
		"--collector.podman.stats-interval=1s",
		"--collector.boot.dbus-address="+bus.Address, "--collector.boot.unit-refresh-interval=1s",
		"--datadog.address="+dd.Address, "--datadog.interval=1s")
	prom := startPrometheus(t, PromConfig{Targets: []string{e.Addr}, ScrapeInterval: time.Second})
	prom.WaitForSeries(t, 60*time.Second, `up{job="panther"} == 1`)

	success := func(collector string) float64 {
		v, _ := e.Scrape(t).Value("panther_scrape_collector_success", map[string]string{"collector": collector})
		return v
	}
	waitFor := func(what string, cond func(Families) error) {
		t.Helper()
		eventually(t, 60*time.Second, what, func() error {
			body, err := e.Get("/metrics")
			if err != nil {
				return err
			}
			f, err := ParseFamilies(body)
			if err != nil {
				return err
			}
			return cond(f)
		})
	}
	value := func(f Families, name string, labels map[string]string) (float64, error) {
		v, ok := f.Value(name, labels)
		if !ok {
			return 0, fmt.Errorf("no single %s%v", name, labels)
		}
		return v, nil
	}
	equals := func(name string, labels map[string]string, want float64) func(Families) error {
		return func(f Families) error {
			v, err := value(f, name, labels)
			if err != nil {
				return err
			}
			if v != want {
				return fmt.Errorf("%s%v = %v, want %v", name, labels, v, want)
			}
			return nil
		}
	}
	podUp := map[string]string{"socket": pod.Name}
	btrfsInfo := map[string]string{"uuid": fs.UUID}

	// The healthy stack first.
	waitFor("podman up", equals("panther_podman_up", podUp, 1))
	waitFor("boot collector ok", equals("panther_scrape_collector_success", map[string]string{"collector": "boot"}, 1))
	waitFor("btrfs filesystem seen", equals("panther_btrfs_info", btrfsInfo, 1))
	eventually(t, 60*time.Second, "DogStatsD receives", func() error {
		if _, ok := dd.Scrape(t).Value("panther_datadog_flushes", nil); !ok {
			return fmt.Errorf("nothing yet")
		}
		return nil
	})
	w := watchScrapes(t, e)
	for i := 0; i < 10; i++ { // warm-up before the baseline
		timedScrape(t, e, timeout+margin)
	}
	g0, fd0 := goroutines(t, e), openFDs(t, e.Cmd.Process.Pid)

	t.Run("podman service killed and restarted", func(t *testing.T) {
		pod.Kill()
		waitFor("podman_up 0", equals("panther_podman_up", podUp, 0))
		pod.Restart()
		waitFor("podman_up 1 again", equals("panther_podman_up", podUp, 1))
		waitFor("the container is listed again", func(f Families) error {
			if len(f.Series("panther_podman_container_info", map[string]string{"socket": pod.Name, "name": "sleeper"})) != 1 {
				return fmt.Errorf("sleeper not listed")
			}
			return nil
		})
	})
	t.Run("dbus-daemon killed and restarted", func(t *testing.T) {
		bus.Kill()
		fake.Close()
		eventually(t, 30*time.Second, "boot collector fails", func() error {
			if s := success("boot"); s != 0 {
				return fmt.Errorf("success %v", s)
			}
			return nil
		})
		bus.Restart()
		var err error
		fake, err = fakesystemd.Start(bus.Address, fakesystemd.Laptop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fake.Close() })
		eventually(t, 30*time.Second, "boot collector recovers", func() error {
			if s := success("boot"); s != 1 {
				return fmt.Errorf("success %v", s)
			}
			return nil
		})
	})
	t.Run("btrfs unmounted and mounted again", func(t *testing.T) {
		fs.Unmount()
		waitFor("the filesystem drops out, the collector still succeeds", func(f Families) error {
			if len(f.Series("panther_btrfs_info", btrfsInfo)) != 0 {
				return fmt.Errorf("still exported")
			}
			return equals("panther_scrape_collector_success", map[string]string{"collector": "btrfs"}, 1)(f)
		})
		fs.Mount()
		waitFor("the filesystem is back", equals("panther_btrfs_info", btrfsInfo, 1))
	})
	t.Run("DogStatsD receiver stopped and started", func(t *testing.T) {
		dd.Stop()
		// UDP to a closed port: the sends fail (ICMP port unreachable) or
		// vanish; either way /metrics keeps answering and flushes go on.
		f0 := e.Scrape(t)
		flushes0, _ := f0.Value("panther_datadog_flushes_total", nil)
		waitFor("flushes continue with the receiver down", func(f Families) error {
			v, _ := f.Value("panther_datadog_flushes_total", nil)
			if v < flushes0+3 {
				return fmt.Errorf("flushes %v, from %v", v, flushes0)
			}
			return nil
		})
		dd.Restart()
		eventually(t, 60*time.Second, "data flows to the restarted receiver", func() error {
			if _, ok := dd.Scrape(t).Value("panther_datadog_flushes", nil); !ok {
				return fmt.Errorf("nothing yet")
			}
			return nil
		})
	})

	w.Stop()
	w.mu.Lock()
	t.Logf("background scrapes: %d, slowest %s, failed %d", w.n, w.slowest, len(w.fails))
	if len(w.fails) > 0 {
		t.Errorf("scrapes failed during the faults: %v", w.fails)
	}
	if w.slowest > timeout+margin {
		t.Errorf("slowest scrape %s, limit %s", w.slowest, timeout+margin)
	}
	w.mu.Unlock()
	g1, fd1 := goroutines(t, e), openFDs(t, e.Cmd.Process.Pid)
	t.Logf("after the faults: goroutines %v -> %v, fds %d -> %d", g0, g1, fd0, fd1)
	if g1 > g0+10 {
		t.Errorf("goroutines grew from %v to %v", g0, g1)
	}
	if fd1 > fd0+5 {
		t.Errorf("open fds grew from %d to %d", fd0, fd1)
	}
	// Prometheus never lost the target.
	v, err := prom.Query(`min_over_time(up{job="panther"}[10m])`)
	if err != nil || len(v) != 1 || v[0].Value != 1 {
		t.Errorf("Prometheus saw the exporter down during the faults: %v %v", v, err)
	}
}
