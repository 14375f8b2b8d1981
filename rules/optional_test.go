package rules

// Checks of the optional rule files (rules/prometheus/optional): the same
// offline lint as the default rules, and for the node_exporter compatibility
// rules, that each recorded series is one node_exporter really exports, with
// its labels, and that a promtool test queries it.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v2"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/internal/nodeexporter"
)

const (
	optionalGlob = "prometheus/optional/*.rules.yml"
	compatRules  = "prometheus/optional/node-exporter-compat.rules.yml"
)

// Metrics exist, rate() only over counters, ranges of four scrapes; an
// optional file may use what the default rules record.
func TestOptionalRulesLint(t *testing.T) {
	optional := loadRules(t, optionalGlob)
	all := append(loadRules(t, rulesGlob), optional...)
	var p problems
	checkMetricsExist(all, &p)
	checkFunctionsAndRanges(all, &p)
	checkHostLabels(all, &p)
	for _, msg := range p {
		if strings.Contains(msg, "prometheus/optional/") {
			t.Error(msg)
		}
	}
	for _, r := range optional {
		if r.Alert != "" {
			t.Errorf("%s: alerts belong in rules/prometheus/*.rules.yml, with a runbook and a Datadog monitor", r)
		}
	}
}

// The promtool tests of the default rules and of the optional ones.
type promqlTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		PromQL []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// Every optional rule file is loaded by a promtool test, and every series
// the compatibility file records is queried by one.
func TestOptionalRulesHavePromtoolTests(t *testing.T) {
	files, err := filepath.Glob(testsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests match %s", testsGlob)
	}
	covered := map[string]bool{}
	queried := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promqlTests
		if err := yaml.Unmarshal(b, &pt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		loadsCompat := false
		for _, rf := range pt.RuleFiles {
			p := filepath.Clean(filepath.Join(filepath.Dir(f), rf))
			covered[p] = true
			loadsCompat = loadsCompat || p == filepath.Clean(compatRules)
		}
		if !loadsCompat {
			continue
		}
		for _, tc := range pt.Tests {
			for _, q := range tc.PromQL {
				e, err := parser.NewParser(parser.Options{}).ParseExpr(q.Expr)
				if err != nil {
					t.Errorf("%s: %s: %v", f, q.Expr, err)
					continue
				}
				for _, n := range selectors(e) {
					queried[n] = true
				}
			}
		}
	}
	for _, r := range loadRules(t, optionalGlob) {
		if !covered[filepath.Clean(r.file)] {
			t.Errorf("%s: no promtool test file loads it", r.file)
		}
		if filepath.Clean(r.file) == filepath.Clean(compatRules) && !queried[r.Record] {
			t.Errorf("%s: no promql_expr_test queries it", r)
		}
	}
}

// Each recorded series has a node_exporter name and labels: Debian's
// node_exporter runs on the system collector's parity fixture (plus a
// mount and a textfile) and must export every recorded name, with every
// label the rule leaves on it (job, instance and role come from the target).
func TestCompatSeriesAreNodeExporters(t *testing.T) {
	fixture, err := filepath.Abs("../exporter/collector/system/testdata/parity")
	if err != nil {
		t.Fatal(err)
	}
	proc := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(proc, os.DirFS(filepath.Join(fixture, "proc"))); err != nil {
		t.Fatal(err)
	}
	// node_exporter 1.5 reads mounts, not mountinfo; the root is a temp dir.
	if err := os.WriteFile(filepath.Join(proc, "1", "mounts"), []byte("/dev/vda / ext4 rw,relatime 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	textfiles := t.TempDir()
	if err := os.WriteFile(filepath.Join(textfiles, "backup.prom"), []byte("backup_ok 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mfs := nodeexporter.Scrape(t,
		"--path.procfs="+proc, "--path.sysfs="+filepath.Join(fixture, "sys"), "--path.rootfs="+t.TempDir(),
		"--collector.disable-defaults", "--collector.cpu", "--collector.cpu.guest", "--collector.stat",
		"--collector.meminfo", "--collector.loadavg", "--collector.diskstats", "--collector.pressure",
		"--collector.netdev", "--no-collector.netdev.netlink", "--collector.filesystem", "--collector.time",
		"--collector.textfile", "--collector.textfile.directory="+textfiles)

	cat := catalogByName()
	target := map[string]bool{"job": true, "instance": true, "role": true}
	for _, r := range loadRules(t, compatRules) {
		mf := mfs[r.Record]
		if mf == nil || len(mf.Metric) == 0 {
			t.Errorf("%s: node_exporter exports no %s", r, r.Record)
			continue
		}
		theirs := map[string]bool{}
		for _, l := range mf.Metric[0].Label {
			theirs[l.GetName()] = true
		}
		for _, l := range keptLabels(r, cat) {
			if !theirs[l] && !target[l] {
				t.Errorf("%s: keeps label %s, which node_exporter's %s does not have", r, l, r.Record)
			}
		}
		for l := range theirs {
			if l != "cpu" && !contains(keptLabels(r, cat), l) {
				t.Errorf("%s: node_exporter's %s has label %s, the recorded series not (docs/migrating.md names only cpu)", r, r.Record, l)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// keptLabels is the labels of the panther metric a compatibility rule
// selects, less those it aggregates away with `without (...)`.
func keptLabels(r rule, cat map[string]*collector.Metric) []string {
	var out []string
	for _, n := range selectors(r.expr) {
		if m := cat[n]; m != nil {
			out = append(out, m.Labels...)
		}
	}
	dropped := map[string]bool{}
	parser.Inspect(r.expr, func(n parser.Node, _ []parser.Node) error {
		if a, ok := n.(*parser.AggregateExpr); ok && a.Without {
			for _, l := range a.Grouping {
				dropped[l] = true
			}
		}
		return nil
	})
	var kept []string
	for _, l := range out {
		if !dropped[l] {
			kept = append(kept, l)
		}
	}
	return kept
}
