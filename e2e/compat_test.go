//go:build e2e

package e2e

// The optional node_exporter compatibility rules on the real stack: Debian's
// node_exporter and panther-exporter read the same /proc fixture (copied
// from a real host, exporter/collector/system/testdata/parity) and the same
// tmpfs, Debian's Prometheus scrapes both and evaluates
// rules/prometheus/optional/node-exporter-compat.rules.yml; every series the
// rules record from panther-exporter must equal node_exporter's own.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// compatRecords returns the names the compatibility rules record.
func compatRecords(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" && !seen[r.Record] {
				seen[r.Record] = true
				out = append(out, r.Record)
			}
		}
	}
	return out
}

// seriesKey is a sample's labels without the target's.
func seriesKey(m model.Metric) string {
	var parts []string
	for k, v := range m {
		switch k {
		case model.MetricNameLabel, "job", "instance":
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func TestNodeExporterCompatRules(t *testing.T) {
	serial(t)
	requireRoot(t) // the tmpfs both exporters statfs
	nodeBin := requireTool(t, "prometheus-node-exporter")
	requireTool(t, "mount")

	// The fixture, plus the mounts file node_exporter 1.5 reads.
	proc := filepath.Join(t.TempDir(), "proc")
	fixture, err := filepath.Abs("../exporter/collector/system/testdata/parity")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(proc, os.DirFS(filepath.Join(fixture, "proc"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "1", "mounts"), []byte("/dev/vda / ext4 rw,relatime 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The fixture's "/" is a tmpfs of its own: nobody writes to it, so both
	// exporters' statfs see the same figures.
	root := t.TempDir()
	runCmd(t, "mount", "-t", "tmpfs", "-o", "size=16m,nr_inodes=4096", "tmpfs", root)
	t.Cleanup(func() { runCmd(t, "umount", root) })
	textfiles := t.TempDir()
	if err := os.WriteFile(filepath.Join(textfiles, "backup.prom"), []byte("backup_last_success_timestamp_seconds 1.7e+09\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"--path.procfs=" + proc, "--path.sysfs=" + filepath.Join(fixture, "sys"), "--path.rootfs=" + root}

	ours := startExporter(t, append(paths, "--collector.disable-defaults", "--collector.system",
		"--collector.textfile.directory="+textfiles)...)
	nodeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	node := startProcess(t, nil, nodeBin, append(paths, "--web.listen-address="+nodeAddr,
		"--collector.disable-defaults", "--collector.cpu", "--collector.stat", "--collector.meminfo",
		"--collector.loadavg", "--collector.diskstats", "--collector.pressure", "--collector.filesystem",
		"--collector.netdev", "--no-collector.netdev.netlink", "--collector.time",
		"--collector.textfile", "--collector.textfile.directory="+textfiles)...)
	eventually(t, 20*time.Second, "node_exporter answers", func() error {
		if node.Exited() {
			t.Fatalf("node_exporter exited: %s", node.Output())
		}
		_, err := (&Exporter{URL: "http://" + nodeAddr}).Get("/metrics")
		return err
	})

	rules, err := filepath.Abs("../rules/prometheus/optional/node-exporter-compat.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, PromConfig{
		Targets:   []string{ours.Addr},
		RuleFiles: []string{rules},
		// Both targets carry the host's role, as startPrometheus gives ours.
		ExtraScrape: fmt.Sprintf("  - job_name: node\n    static_configs:\n      - targets: [%q]\n        labels: {role: server}\n", nodeAddr),
	})
	prom.WaitForSeries(t, 60*time.Second, `node_textfile_scrape_error{job="panther"}`)
	prom.WaitForSeries(t, 60*time.Second, `node_time_seconds{job="node"}`)

	compared := 0
	for _, name := range compatRecords(t, rules) {
		recorded, err := prom.Query(fmt.Sprintf(`%s{job="panther"}`, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(recorded) == 0 {
			t.Errorf("%s: nothing recorded from panther-exporter", name)
			continue
		}
		// node_exporter's per-CPU series, summed as the recorded ones are.
		theirs, err := prom.Query(fmt.Sprintf(`sum without (cpu) (%s{job="node"})`, name))
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]float64{}
		for _, s := range theirs {
			byKey[seriesKey(s.Metric)] = float64(s.Value)
		}
		for _, s := range recorded {
			k := seriesKey(s.Metric)
			want, ok := byKey[k]
			if !ok {
				t.Errorf("%s%s: recorded from panther-exporter, node_exporter has no such series (it has %d)", name, k, len(theirs))
				continue
			}
			got := float64(s.Value)
			// The clock is each scrape's; everything else is the
			// fixture's, equal but for the float noise of sum().
			tolerance := 1e-9 * math.Max(1, math.Abs(want))
			if name == "node_time_seconds" {
				tolerance = 30
			}
			if math.Abs(got-want) > tolerance {
				t.Errorf("%s%s = %v recorded from panther-exporter, node_exporter says %v", name, k, got, want)
			}
			compared++
		}
	}
	t.Logf("%d recorded series compared with node_exporter's", compared)
	if compared < 60 {
		t.Errorf("only %d series compared", compared)
	}
}
