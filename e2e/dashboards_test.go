//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	grafana "github.com/pantheros/monitoring/dashboards/grafana"
	"github.com/pantheros/monitoring/e2e/fakesystemd"
	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/all"
	"github.com/pantheros/monitoring/internal/promqlnames"
)

// dashStack is the real stack the dashboards are checked against: which
// collectors run in the exporter, and how the test brings about each
// condition a panel may need (grafana.Condition).
type dashStack struct {
	args       []string                                 // exporter flags
	running    map[string]bool                          // collectors that run (catalog names)
	conditions map[grafana.Condition]func(t *testing.T) // bring a condition about
	marks      map[grafana.Condition]map[string]string  // labels of the series the condition makes
	order      []grafana.Condition                      // in this order
	prom       *Prometheus
}

// condition registers how to bring c about; mark are labels that the
// series it makes carry (the test's own filesystem, unit, container), so
// that series of other filesystems or containers on this machine cannot
// stand in for them.
func (s *dashStack) condition(c grafana.Condition, mark map[string]string, fn func(t *testing.T)) {
	s.conditions[c] = fn
	s.marks[c] = mark
	s.order = append(s.order, c)
}

// metricCollectors maps each metric a dashboard may use to what makes it:
// a collector, Prometheus itself, or the recording rules of ruleFiles.
func metricCollectors(t *testing.T, ruleFiles []string) map[string]string {
	m := map[string]string{"up": "prometheus", "ALERTS": "prometheus"}
	for _, c := range collector.Catalog() {
		m[c.Name] = c.Collector
	}
	for _, f := range ruleFiles {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
		if len(errs) > 0 {
			t.Fatalf("%s: %v", f, errs)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					m[r.Record] = "rules"
				}
			}
		}
	}
	return m
}

// panelNeeds returns the collectors the queries of p read from.
func panelNeeds(t *testing.T, p grafana.Panel, owners map[string]string) []string {
	need := map[string]bool{}
	for _, q := range p.Queries {
		expr := grafana.Substitute(q.Expr, map[string]string{"job": "x", "instance": "x"}, "1m")
		names, err := promqlnames.Parse(expr)
		if err != nil {
			t.Fatalf("%s: %v", p.Title, err)
		}
		for _, name := range names {
			owner, known := owners[name]
			if !known {
				owner = "unknown metric " + name
			}
			need[owner] = true
		}
	}
	var out []string
	for c := range need {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// queryRange runs a range query over the last window, as Grafana does for a
// time series panel.
func (p *Prometheus) queryRange(expr string, window, step time.Duration) (model.Matrix, error) {
	end := time.Now()
	v := url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(end.Add(-window).Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	var m model.Matrix
	err := promAPI(p.URL, "/api/v1/query_range", v, fmt.Sprintf("query_range %q", expr), &m)
	return m, err
}

// errQuery is a query Prometheus refused: polling will not help.
type errQuery struct{ error }

// hasLabels reports whether metric carries every label of want.
func hasLabels(metric model.Metric, want map[string]string) bool {
	for k, v := range want {
		if string(metric[model.LabelName(k)]) != v {
			return false
		}
	}
	return true
}

// hasData runs expr the way its panel does (instant, or a range over the
// last minute) and says whether it returned at least one number in a
// series carrying the labels of want.
func hasData(p *Prometheus, expr string, instant bool, want map[string]string) error {
	if instant {
		v, err := p.Query(expr)
		if err != nil {
			if strings.Contains(err.Error(), "query ") {
				return errQuery{err}
			}
			return err
		}
		for _, s := range v {
			if hasLabels(s.Metric, want) && !math.IsNaN(float64(s.Value)) {
				return nil
			}
		}
		return fmt.Errorf("instant query returned %d series, none a number with labels %v", len(v), want)
	}
	m, err := p.queryRange(expr, time.Minute, 5*time.Second)
	if err != nil {
		if strings.Contains(err.Error(), "query_range ") {
			return errQuery{err}
		}
		return err
	}
	for _, s := range m {
		if !hasLabels(s.Metric, want) {
			continue
		}
		for _, v := range s.Values {
			if !math.IsNaN(float64(v.Value)) {
				return nil
			}
		}
	}
	return fmt.Errorf("range query returned %d series, none with a number and labels %v", len(m), want)
}

type dashPanel struct {
	grafana.Panel
	dash  string
	needs []string
}

// checkPanels proves that every query of the panels returns data (in a
// series with the labels of want), with the dashboard variables set to the
// scraped host.
func checkPanels(t *testing.T, p *Prometheus, vars map[string]string, panels []dashPanel, want map[string]string) {
	t.Helper()
	for _, dp := range panels {
		for i, q := range dp.Queries {
			expr := grafana.Substitute(q.Expr, vars, "15s")
			t.Run(fmt.Sprintf("%s/%s/%c", dp.dash, dp.Title, 'A'+i), func(t *testing.T) {
				eventually(t, 60*time.Second, "panel query returns data: "+expr, func() error {
					err := hasData(p, expr, q.Instant, want)
					if _, bad := err.(errQuery); bad {
						t.Fatal(err)
					}
					return err
				})
			})
		}
	}
}

// promRegexp quotes s for a =~ matcher inside a PromQL string, as Grafana
// does when it puts a variable's value into a query.
func promRegexp(s string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`)
}

// TestDashboardsShowData runs every panel query of every dashboard
// (variables set to the test host) against Debian's Prometheus scraping the
// real stack with the rules of rules/prometheus loaded: the system
// collector on this machine, a raid1 loop-mounted Btrfs, a private
// dbus-daemon with the fake systemd manager (Server seed), a Podman
// service with a running container, a NixOS-shaped rootfs, and for the
// units and Nix store panels the NixOS cgroup v2 fixture and a real Nix
// store made by nix-bin. It fails
// for every panel that shows no data. A panel that needs a condition
// (grafana.Condition) is checked twice: before the test brings the
// condition about its queries return no series of the test's own
// filesystem, unit or container, and after it they do. A panel the stack
// cannot feed is a failure too.
func TestDashboardsShowData(t *testing.T) {
	serial(t)
	requireRoot(t)
	s := &dashStack{
		args:       []string{"--collector.disable-defaults", "--collector.system"},
		running:    map[string]bool{"exporter": true, "system": true, "prometheus": true, "rules": true},
		conditions: map[grafana.Condition]func(t *testing.T){},
		marks:      map[grafana.Condition]map[string]string{},
	}

	// Btrfs: a raid1 filesystem with one subvolume holding a file.
	fs := newBtrfs(t)
	fs.Subvolume("data")
	fs.WriteFile("data/file", 1<<20)
	s.args = append(s.args, "--collector.btrfs", "--collector.btrfs.subvolume-interval=0s")
	s.running["btrfs"] = true
	ours := map[string]string{"uuid": fs.UUID}
	s.condition(grafana.BtrfsSnapshot, ours, func(t *testing.T) { fs.Snapshot("data", ".snapshots/data/1") })
	s.condition(grafana.BtrfsScrubbed, ours, func(t *testing.T) { fs.Scrub() })
	s.condition(grafana.BtrfsQuotas, ours, func(t *testing.T) {
		runCmd(t, "btrfs", "quota", "enable", fs.Mnt)
		runCmd(t, "btrfs", "quota", "rescan", "-w", fs.Mnt)
	})

	// systemd: the fake manager of a Debian server on a private bus.
	bus := startDBus(t)
	sd := startFakeSystemd(t, bus, fakesystemd.Server())
	s.args = append(s.args, "--collector.boot", "--collector.boot.dbus-address="+bus.Address,
		"--collector.boot.unit-refresh-interval=1s")
	s.running["boot"] = true
	s.condition(grafana.UnitFailed, map[string]string{"unit": "postgresql.service"}, func(t *testing.T) {
		sd.Fail("postgresql.service", "exit-code")
	})

	// Podman: one service with a running container; the conditions add a
	// container with a health check and one that exits.
	pod := startPodmanService(t, "dash")
	podmanImage(t, pod)
	pod.Run(t, "sleeper", nil, "sleep", "1000000")
	s.args = append(s.args, "--collector.podman", "--collector.podman.socket="+pod.Flag(),
		"--collector.podman.list-interval=2s", "--collector.podman.stats-interval=1s")
	s.running["podman"] = true
	s.condition(grafana.ContainerHealthcheck, map[string]string{"name": "checked"}, func(t *testing.T) {
		pod.Run(t, "checked", []string{"--health-cmd", "true", "--health-interval", "0"}, "sleep", "1000000")
		pod.MustPodman(t, "healthcheck", "run", "checked")
	})
	s.condition(grafana.ContainerExited, map[string]string{"name": "quitter"}, func(t *testing.T) {
		pod.Run(t, "quitter", nil, "sh", "-c", "exit 3")
	})

	// Alerts: an extra rule file, empty at first; the condition adds an
	// alert that fires for every scraped panther target and reloads.
	alerts := filepath.Join(t.TempDir(), "dashboard-alerts.yml")
	if err := os.WriteFile(alerts, []byte("groups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.condition(grafana.AlertFiring, map[string]string{"alertname": "PantherE2EDashboardCheck"}, func(t *testing.T) {
		rule := "groups:\n  - name: e2e-dashboards\n    rules:\n      - alert: PantherE2EDashboardCheck\n        expr: up{job=\"panther\"} == 1\n        labels:\n          severity: info\n"
		if err := os.WriteFile(alerts, []byte(rule), 0o644); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(s.prom.URL+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reload prometheus: %s", resp.Status)
		}
	})

	// Journal: real journal files with a unit's errors and kernel lines,
	// written after the cursor the collector resumes from (the restart
	// path: a first start counts only what is written after it).
	j := newJournal(t, "dash")
	j.Write(Service("seed.service", 6, "seed"))
	journalState := filepath.Join(t.TempDir(), "journal.state")
	eventually(t, 20*time.Second, "seed entry in the journal", func() error {
		out, err := exec.Command("journalctl", "--directory="+j.Dir, "--output=export", "--lines=1", "--output-fields=MESSAGE").Output()
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(out), "\n") {
			if c, ok := strings.CutPrefix(l, "__CURSOR="); ok {
				st, _ := json.Marshal(map[string]any{"version": 1, "cursor": c})
				return os.WriteFile(journalState, st, 0o600)
			}
		}
		return fmt.Errorf("no entry yet")
	})
	j.Write(Service("backup.service", 3, "rsync error: error in rsync protocol data stream (code 12)"),
		Kernel(3, "I/O error, dev sda, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0"))
	s.args = append(s.args, "--collector.journal", "--collector.journal.directory="+j.Dir,
		"--collector.journal.state-file="+journalState)
	s.running["journal"] = true

	e := startExporter(t, s.args...)

	// Nix: --path.rootfs moves every collector's view, so the nix collector
	// runs in a second exporter on a NixOS-shaped rootfs; Prometheus gives
	// its series the job and instance of the main one (plus exporter="nix"),
	// so that the host's dashboards see one host.
	root := newNixRoot(t, 2000)
	nix := startExporter(t, "--collector.disable-defaults", "--collector.nix", "--path.rootfs="+root.Dir)
	s.running["nix"] = true
	extra := fmt.Sprintf(`  - job_name: panther-nix
    static_configs:
      - targets: [%q]
        labels:
          exporter: nix
          role: server
    relabel_configs:
      - target_label: job
        replacement: panther
      - target_label: instance
        replacement: %q
`, nix.Addr, e.Addr)

	// Hardware: this machine has no hwmon, thermal zone, battery, NVMe or
	// SATA disk, so a third exporter reads the Dell XPS 13 sysfs of the
	// hwmon and power tests plus a /sys/block with an NVMe and a SATA disk,
	// and runs a smartctl stand-in that prints those disks' smartctl 7.3
	// JSON (the diskhealth fixtures); the clock and kernel limits are this
	// machine's. Same job and instance as the main exporter.
	hw := startExporter(t, hardwareArgs(t)...)
	for _, c := range []string{"hwmon", "power", "timex", "limits", "diskhealth"} {
		s.running[c] = true
	}
	extra += fmt.Sprintf(`  - job_name: panther-hardware
    static_configs:
      - targets: [%q]
        labels:
          exporter: hardware
    relabel_configs:
      - target_label: job
        replacement: panther
      - target_label: instance
        replacement: %q
`, hw.Addr, e.Addr)

	// Units and the Nix store's size and GC: a fourth exporter on a copy of
	// the NixOS cgroup v2 fixture (--path.sysfs) and a rootfs with a real
	// Nix store (nix-bin), its database and one GC run. Only the metrics
	// the other exporters do not make are kept from it.
	perf := newPerfRoot(t)
	pe := startExporter(t, "--collector.disable-defaults", "--collector.units", "--collector.nix",
		"--path.sysfs="+perf.Sys, "--path.rootfs="+perf.Root, "--collector.nix.store-interval=1s")
	s.running["units"] = true
	extra += fmt.Sprintf(`  - job_name: panther-perf
    static_configs:
      - targets: [%q]
        labels:
          exporter: perf
    relabel_configs:
      - target_label: job
        replacement: panther
      - target_label: instance
        replacement: %q
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'panther_(unit_.+|units_.+|oom_kills_total|nix_store_size_bytes|nixos_system_closure_.+|nix_gc_.+|nix_store_optimise_saved_bytes|nix_store_stats_age_seconds)'
        action: keep
`, pe.Addr, e.Addr)

	ruleFiles, err := filepath.Glob("../rules/prometheus/*.yml")
	if err != nil || len(ruleFiles) == 0 {
		t.Fatalf("no rule files under ../rules/prometheus: %v", err)
	}
	for i, f := range ruleFiles {
		if ruleFiles[i], err = filepath.Abs(f); err != nil {
			t.Fatal(err)
		}
	}
	s.prom = startPrometheus(t, PromConfig{
		Targets:     []string{e.Addr},
		RuleFiles:   append(ruleFiles, alerts),
		ExtraScrape: extra,
	})
	s.prom.WaitForSeries(t, 60*time.Second, `up{job="panther"} == 1`)
	s.prom.WaitForSeries(t, 60*time.Second, fmt.Sprintf(`up{job="panther", instance=%q, exporter="nix"} == 1`, e.Addr))
	s.prom.WaitForSeries(t, 60*time.Second, fmt.Sprintf(`up{job="panther", instance=%q, exporter="perf"} == 1`, e.Addr))
	// Rates need a few samples in their window.
	s.prom.WaitForSeries(t, 60*time.Second, `count_over_time(up{job="panther"}[1m]) >= 5`)
	vars := map[string]string{"job": "panther", "instance": promRegexp(e.Addr)}

	owners := metricCollectors(t, ruleFiles)
	byCond := map[grafana.Condition][]dashPanel{}
	var unproven []string
	for _, d := range grafana.All() {
	panels:
		for _, p := range d.Panels() {
			dp := dashPanel{Panel: p, dash: d.UID, needs: panelNeeds(t, p, owners)}
			for _, c := range dp.needs {
				if !s.running[c] {
					unproven = append(unproven, fmt.Sprintf("%s / %s (needs %s)", d.UID, p.Title, c))
					continue panels
				}
			}
			if _, ok := s.conditions[p.Needs]; p.Needs != grafana.Always && !ok {
				unproven = append(unproven, fmt.Sprintf("%s / %s (condition %s)", d.UID, p.Title, p.Needs))
				continue
			}
			byCond[p.Needs] = append(byCond[p.Needs], dp)
		}
	}

	checkPanels(t, s.prom, vars, byCond[grafana.Always], nil)
	for _, c := range s.order {
		if len(byCond[c]) == 0 {
			continue
		}
		t.Run("condition "+string(c), func(t *testing.T) {
			mark := s.marks[c]
			// Before: the condition's own series are not there yet, so the
			// panel's data below comes from bringing it about.
			for _, dp := range byCond[c] {
				for _, q := range dp.Queries {
					expr := grafana.Substitute(q.Expr, vars, "15s")
					if err := hasData(s.prom, expr, q.Instant, mark); err == nil {
						t.Errorf("%s / %s shows series with %v before %s: its condition is not what it needs", dp.dash, dp.Title, mark, c)
					} else if _, bad := err.(errQuery); bad {
						t.Fatal(err)
					}
				}
			}
			s.conditions[c](t)
			checkPanels(t, s.prom, vars, byCond[c], mark)
		})
	}
	if len(unproven) > 0 {
		t.Errorf("%d panels not proven against the real stack:\n  %s", len(unproven), strings.Join(unproven, "\n  "))
	}
}

// hardwareArgs builds the hardware exporter's sysfs tree and smartctl
// stand-in and returns its flags.
func hardwareArgs(t *testing.T) []string {
	t.Helper()
	sys := t.TempDir()
	for _, src := range []string{"../exporter/collector/hwmon/testdata/intel-laptop/sys/.", "../exporter/collector/power/testdata/intel-laptop/sys/."} {
		runCmd(t, "cp", "-a", src, sys)
	}
	for _, d := range []string{"nvme0n1", "sda"} {
		dir := filepath.Join(sys, "block", d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "removable"), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fixtures, err := filepath.Abs("../exporter/collector/diskhealth/testdata")
	if err != nil {
		t.Fatal(err)
	}
	smartctl := filepath.Join(t.TempDir(), "smartctl")
	script := fmt.Sprintf("#!/bin/sh\n# smartctl stand-in: the last argument is the device.\nfor dev; do :; done\ncase \"$dev\" in\n  /dev/nvme*) exec cat %q ;;\n  /dev/sd*) exec cat %q ;;\nesac\nexit 2\n",
		filepath.Join(fixtures, "nvme-samsung-980pro.json"), filepath.Join(fixtures, "sata-wd-red-hdd.json"))
	if err := os.WriteFile(smartctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"--collector.disable-defaults", "--path.sysfs=" + sys,
		"--collector.hwmon", "--collector.power", "--collector.timex", "--collector.limits",
		"--collector.diskhealth", "--collector.diskhealth.smartctl=" + smartctl}
}
