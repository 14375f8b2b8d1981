//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
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
