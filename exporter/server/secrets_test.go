package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/btrfs"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
	"github.com/pantheros/monitoring/exporter/collector/nix"
	"github.com/pantheros/monitoring/exporter/collector/system"
	"github.com/pantheros/monitoring/exporter/collector/textfile"
)

const marker = inputerrtest.Marker

// panicky panics with a value that quotes what it read.
type panicky struct{}

func (panicky) Update(context.Context, chan<- prometheus.Metric) error {
	panic("unexpected line " + marker)
}

// The real collectors on inputs that hold the marker where their errors
// could quote it: garbled /proc files, a garbled Btrfs sysfs file, a bad
// nixos-version, a textfile directory with a symlink to a secret and a file
// that does not parse, plus a collector that panics with the marker. Every
// collector fails, and neither the landing page, nor /metrics, nor the log
// quotes the marker.
func TestNoInputOnPageMetricsOrLog(t *testing.T) {
	tmp := t.TempDir()
	proc := copyTree(t, "../collector/system/testdata/proc", filepath.Join(tmp, "proc"))
	write(t, filepath.Join(proc, "stat"), "cpu  1 0 1 2 3 4 5 6 7 8\ncpu0 1 "+marker+" 3 4 5 6 7 8 9 10\nbtime "+marker+"\n")
	write(t, filepath.Join(proc, "loadavg"), marker+" 1")

	sys := copyTree(t, "../collector/btrfs/testdata/sys", filepath.Join(tmp, "sys"))
	commit, _ := filepath.Glob(filepath.Join(sys, "fs/btrfs/*/commit_stats"))
	if len(commit) != 1 {
		t.Fatalf("btrfs fixture: %v", commit)
	}
	write(t, commit[0], "commits "+marker+"\n")

	root := filepath.Join(tmp, "root")
	store := "/nix/store/vbx3y7l2mfjvlg4r8yls8j2dfkdrq5j3-nixos-system-panther"
	must(t, os.MkdirAll(filepath.Join(root, store), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	write(t, filepath.Join(root, store, "nixos-version"), "24.05\n"+marker+"\n")
	must(t, os.Symlink(store, filepath.Join(root, "run/current-system")))

	tf := filepath.Join(tmp, "textfile")
	must(t, os.Mkdir(tf, 0o755))
	write(t, filepath.Join(tmp, "shadow"), "root:$6$"+marker+":19000::::::\n")
	must(t, os.Symlink(filepath.Join(tmp, "shadow"), filepath.Join(tf, "leak.prom")))
	write(t, filepath.Join(tf, "bad.prom"), "job_runs "+marker+"\n")
	write(t, filepath.Join(tf, "good.prom"), "job_ok 1\n")

	logger, logs := inputerrtest.Logger()
	cfg := collector.Config{Logger: logger, ProcPath: proc, SysPath: sys, RootPath: root}
	sysC, err := system.New(cfg, system.Options{})
	must(t, err)
	btrfsC, err := btrfs.New(cfg, btrfs.Options{SubvolumeInterval: time.Hour, Subvolumes: true, ScrubStatus: true})
	must(t, err)
	nixC, err := nix.New(cfg, nix.Options{})
	must(t, err)
	tfC, err := textfile.New(cfg, textfile.Options{Directories: []string{tf}})
	must(t, err)
	scraper := collector.NewScraper(logger, collector.Options{Timeout: 10 * time.Second},
		collector.Named{Name: "system", Collector: sysC},
		collector.Named{Name: "btrfs", Collector: btrfsC},
		collector.Named{Name: "nix", Collector: nixC},
		collector.Named{Name: "textfile", Collector: tfC},
		collector.Named{Name: "panicky", Collector: panicky{}},
	)
	srv := httptest.NewServer(New(Config{
		Logger: logger, Scraper: scraper, TelemetryPath: "/metrics", MaxRequests: 4,
		AllCollectors: []string{"btrfs", "nix", "panicky", "system", "textfile"}, Version: "test",
	}))
	defer srv.Close()

	metrics := get(t, srv.URL+"/metrics")
	page := get(t, srv.URL+"/")
	for _, want := range []string{
		`panther_scrape_collector_success{collector="system"} 0`,
		`panther_scrape_collector_success{collector="btrfs"} 0`,
		`panther_scrape_collector_success{collector="nix"} 0`,
		`panther_scrape_collector_success{collector="panicky"} 0`,
		"job_ok 1",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, want := range []string{filepath.Join(proc, "stat"), commit[0], "nixos-version", "panic"} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page does not name %q:\n%s", want, page)
		}
	}
	for _, want := range []string{"file=" + filepath.Join(tf, "leak.prom"), "file=" + filepath.Join(tf, "bad.prom")} {
		if !strings.Contains(logs(), want) {
			t.Errorf("log does not name %q:\n%s", want, logs())
		}
	}
	inputerrtest.Check(t, "landing page", page)
	inputerrtest.Check(t, "/metrics", metrics)
	inputerrtest.Check(t, "log", logs())
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return string(b)
}

func copyTree(t *testing.T, src, dst string) string {
	t.Helper()
	must(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

func write(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
