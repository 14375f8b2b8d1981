package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

// volatile are the families whose values move with the clock, the host or
// the test run: the exporter's own Go and process metrics, build info,
// scrape durations, and the filesystem figures (statfs of the directories under
// the fixture root, which live on the host's disk).
var volatile = []string{
	"panther_scrape_collector_duration_seconds",
	"panther_filesystem_size_bytes",
	"panther_filesystem_avail_bytes",
	"panther_filesystem_free_bytes",
	"panther_filesystem_files",
	"panther_filesystem_files_free",
	"panther_filesystem_readonly",
	"panther_textfile_mtime_seconds",
	"panther_exporter_build_info", // the Go version of the toolchain
	"panther_nix_store_filesystem_avail_bytes",
	"panther_nix_store_filesystem_size_bytes",
	"panther_nix_store_filesystem_used_bytes",
	"panther_nixos_generation_timestamp_seconds", // the profile link's mtime: when git checked it out
}

// fixtureTree lays the collectors' fixtures out as one host under a
// temporary directory: proc from the system collector, sys/fs/btrfs and
// the scrub status from the btrfs collector, /nix and /run from the nix
// collector's "agree" host, the cgroup v2 tree and vmstat of the units
// collector's NixOS host. It copies (cp -a) rather than links, as the
// nix collector resolves the store's links within the root.
func fixtureTree(t *testing.T) (proc, sys, root string) {
	t.Helper()
	dir := t.TempDir()
	proc, sys, root = filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), filepath.Join(dir, "root")
	for _, c := range []struct{ from, to string }{
		{"system/testdata/proc", proc},
		{"btrfs/testdata/sys/fs", sys},
		{"btrfs/testdata/root/var", root},
		{"nix/testdata/agree/nix", root},
		{"nix/testdata/agree/run", root},
		{"units/testdata/nixos/sys/fs", sys},
		{"units/testdata/nixos/proc/vmstat", filepath.Join(proc, "proc")},
	} {
		if err := os.MkdirAll(c.to, 0o755); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cp := exec.Command("cp", "-a", filepath.Join("../../collector", c.from), c.to+"/")
		cp.Stderr = &stderr
		if err := cp.Run(); err != nil {
			t.Fatalf("cp -a %s %s: %v: %s", c.from, c.to, err, stderr.String())
		}
	}
	return filepath.Join(proc, "proc"), sys, root
}

// TestFixtureHostGolden is the whole exporter without root or services, as
// node_exporter's end-to-end test: the collectors' flags parsed as the
// command line gives them, every default collector plus textfile built and
// served by the real handler, one scrape of /metrics compared with
// testdata/fixture-host.prom. Boot has no bus and Podman no socket here, so
// they show as failing; everything else comes from the fixtures.
func TestFixtureHostGolden(t *testing.T) {
	proc, sys, root := fixtureTree(t)
	textfiles := "../../collector/textfile/testdata/good" // relative: the file label is the same on every checkout
	absent := filepath.Join(t.TempDir(), "absent.sock")
	if _, err := kingpin.CommandLine.Parse([]string{
		"--path.procfs=" + proc, "--path.sysfs=" + sys, "--path.rootfs=" + root,
		"--collector.boot.dbus-address=unix:path=" + absent,
		"--collector.podman.socket=root=unix://" + absent,
		"--collector.textfile.directory=" + textfiles,
	}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	scraper, own, err := build(logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(logger, scraper, own, "/metrics", 40))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	var got collectortest.Result
	for _, name := range sortedKeys(fams) {
		// The exporter's own Go and process metrics, and the timex
		// collector's adjtimex figures (the kernel clock of the machine
		// running the test: there is no fixture for a system call).
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "panther_time_") {
			continue
		}
		got.Families = append(got.Families, fams[name])
	}
	got.Without(volatile...).Golden(t, "testdata/fixture-host.prom")
}

func sortedKeys(m map[string]*dto.MetricFamily) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
