//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A bash job rewrites its file by rename while Prometheus scrapes every
// second: its values arrive, every scrape sees a whole file, and a garbled
// file next to it is reported without disturbing it.
func TestTextfileJobReachesPrometheus(t *testing.T) {
	serial(t)
	dir := t.TempDir()
	e := startExporter(t, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+dir)
	job := StartTextfileJob(t, dir, "backup", 100*time.Millisecond)
	p := startPrometheus(t, PromConfig{Targets: []string{e.Addr}})

	v := p.WaitForSeries(t, 60*time.Second, `backup_runs_total{job="panther"} > 0`)
	first := float64(v[0].Value)
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`backup_runs_total > %v`, first+5))
	// The job's other samples, as written: its success time is recent, its
	// bytes match its run count, its declared staleness is taken over.
	p.WaitForSeries(t, 30*time.Second, `time() - backup_last_success_timestamp_seconds < 60`)
	p.WaitForSeries(t, 30*time.Second, `backup_written_bytes{volume="home"} > 0`)
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`panther_textfile_stale_after_seconds{file=%q} == 3600`, job.File))
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`time() - panther_textfile_mtime_seconds{file=%q} < 30`, job.File))

	// A garbled file beside it: reported, logged once, the job untouched.
	broken := WriteTextfile(t, dir, "broken.prom", "# TYPE snapshot_age_seconds gauge\nsnapshot_age_seconds{subvolume=\"@home\" 12\n")
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`panther_textfile_scrape_error{file=%q} == 1`, broken))
	now := p.WaitForSeries(t, 30*time.Second, `backup_runs_total`)
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`backup_runs_total > %v`, float64(now[0].Value)+5))

	// Every scrape so far saw the whole file: no error, never fewer than
	// its 200 items.
	eventually(t, 60*time.Second, "20 scrapes of the job's file", func() error {
		v, err := p.Query(fmt.Sprintf(`count_over_time(panther_textfile_scrape_error{file=%q}[5m])`, job.File))
		if err != nil || len(v) != 1 || v[0].Value < 20 {
			return fmt.Errorf("%v %v", v, err)
		}
		return nil
	})
	for expr, want := range map[string]float64{
		fmt.Sprintf(`max_over_time(panther_textfile_scrape_error{file=%q}[5m])`, job.File): 0,
		`min_over_time(count(backup_item)[5m:1s])`:                                         200,
		`max_over_time(panther_scrape_collector_success{collector="textfile"}[5m]) * min_over_time(panther_scrape_collector_success{collector="textfile"}[5m])`: 1,
	} {
		v, err := p.Query(expr)
		if err != nil || len(v) != 1 || float64(v[0].Value) != want {
			t.Errorf("%s = %v (%v), want %v", expr, v, err, want)
		}
	}
	if n := strings.Count(e.Output(), "file="+broken); n != 1 {
		t.Errorf("broken.prom logged %d times, want once:\n%s", n, e.Output())
	}
}

// A file older than the job allows makes TextfileStale pending in
// Prometheus, with the rule file of rules/prometheus.
func TestTextfileStaleAlert(t *testing.T) {
	serial(t)
	dir := t.TempDir()
	rules, err := filepath.Abs("../rules/prometheus/textfile.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+dir)
	old := WriteTextfile(t, dir, "deploy.prom", "deploy_generation 41\n")
	runCmd(t, "touch", "-d", "2 days ago", old)
	declared := WriteTextfile(t, dir, "backup.prom", "backup_runs_total 3\ntextfile_stale_after_seconds 3600\n")
	runCmd(t, "touch", "-d", "2 hours ago", declared)
	fresh := WriteTextfile(t, dir, "snapshot.prom", "snapshot_runs_total 9\n")
	p := startPrometheus(t, PromConfig{Targets: []string{e.Addr}, RuleFiles: []string{rules}})
	eventually(t, 60*time.Second, "TextfileStale pending for the two stale files", func() error {
		alerts, err := p.Alerts()
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, a := range alerts {
			ls, _ := a["labels"].(map[string]any)
			if ls["alertname"] == "TextfileStale" {
				got[fmt.Sprint(ls["file"])] = fmt.Sprint(a["state"])
			}
		}
		if got[old] != "pending" || got[declared] != "pending" || got[fresh] != "" || len(got) != 2 {
			return fmt.Errorf("alerts by file: %v", got)
		}
		return nil
	})
}

// Giving a directory alone turns the collector on.
func TestTextfileDirectoryEnables(t *testing.T) {
	serial(t)
	dir := t.TempDir()
	f := WriteTextfile(t, dir, "deploy.prom", "deploy_generation 41\n")
	for _, args := range [][]string{
		{"--collector.textfile.directory=" + dir},
		{"--collector.disable-defaults", "--collector.textfile.directory=" + dir},
	} {
		e := startExporter(t, args...)
		fams := e.Scrape(t)
		if v, ok := fams.Value("deploy_generation", nil); !ok || v != 41 {
			t.Errorf("%v: deploy_generation = %v (%v)", args, v, ok)
		}
		if v, ok := fams.Value("panther_textfile_scrape_error", map[string]string{"file": f}); !ok || v != 0 {
			t.Errorf("%v: scrape_error = %v (%v)", args, v, ok)
		}
		e.Stop()
	}
	// --no-collector.textfile wins over a directory, in either order.
	for _, args := range [][]string{
		{"--no-collector.textfile", "--collector.textfile.directory=" + dir},
		{"--collector.textfile.directory=" + dir, "--no-collector.textfile"},
	} {
		e := startExporter(t, args...)
		if _, ok := e.Scrape(t).Value("deploy_generation", nil); ok {
			t.Errorf("%v: textfile collector ran", args)
		}
		e.Stop()
	}
}

// Bad files in the textfile directory, as someone who can write it (any
// batch job) could leave them, beside two good files: a symlink to a
// root-only file holding a marker secret, a FIFO, a 1 GiB sparse file and a
// device node. Every scrape completes with the collector successful and the
// good files exported; each bad file is refused and logged once by name;
// the marker is nowhere in the log, the landing page or /metrics.
func TestTextfileBadFiles(t *testing.T) {
	serial(t)
	requireRoot(t)
	const marker = "Kq7wSeCrEtZ9x" // inputerrtest.Marker
	dir, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$"+marker+":19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := WriteTextfile(t, dir, "backup.prom", "# TYPE backup_runs_total counter\nbackup_runs_total 12\n")
	good2 := WriteTextfile(t, dir, "deploy.prom", "deploy_generation 41\n")
	bad := map[string]string{} // path -> what the log says
	add := func(name, why string, make func(string) error) {
		p := filepath.Join(dir, name)
		if err := make(p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bad[p] = why
	}
	add("leak.prom", "a symlink", func(p string) error { return os.Symlink(secret, p) })
	add("fifo.prom", "a FIFO", func(p string) error { return syscall.Mkfifo(p, 0o644) })
	add("huge.prom", "larger than the limit", func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(1 << 30) // sparse: 1 GiB that takes no disk
	})
	add("dev.prom", "a device", func(p string) error {
		return syscall.Mknod(p, syscall.S_IFCHR|0o644, int(1<<8|5)) // char 1:5, like /dev/zero: a read would never end
	})

	e := startExporter(t, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+dir)
	var metrics string
	for i := 0; i < 3; i++ {
		body, err := e.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics = body
		fams, err := ParseFamilies(body)
		if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		if v, ok := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "textfile"}); !ok || v != 1 {
			t.Errorf("scrape %d: textfile collector success %v (%v)", i, v, ok)
		}
		if v, ok := fams.Value("backup_runs_total", nil); !ok || v != 12 {
			t.Errorf("scrape %d: backup_runs_total %v (%v)", i, v, ok)
		}
		if v, ok := fams.Value("deploy_generation", nil); !ok || v != 41 {
			t.Errorf("scrape %d: deploy_generation %v (%v)", i, v, ok)
		}
		for _, p := range []string{good, good2} {
			if v, ok := fams.Value("panther_textfile_scrape_error", map[string]string{"file": p}); !ok || v != 0 {
				t.Errorf("scrape %d: %s scrape_error %v (%v)", i, p, v, ok)
			}
		}
		for p := range bad {
			if v, ok := fams.Value("panther_textfile_scrape_error", map[string]string{"file": p}); !ok || v != 1 {
				t.Errorf("scrape %d: %s scrape_error %v (%v), want 1", i, p, v, ok)
			}
		}
	}
	page, err := e.Get("/")
	if err != nil {
		t.Fatal(err)
	}
	log := e.Output()
	for p, why := range bad {
		if n := strings.Count(log, "file="+p+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", p, n, log)
		}
		if !strings.Contains(log, why) {
			t.Errorf("log does not say %q:\n%s", why, log)
		}
	}
	for what, text := range map[string]string{"log": log, "landing page": page, "/metrics": metrics} {
		if strings.Contains(text, marker) || strings.Contains(text, marker[:6]) {
			t.Errorf("%s quotes the secret file:\n%s", what, text)
		}
	}
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.Cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				t.Logf("exporter peak RSS with a 1 GiB file in the directory: %s", strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")))
			}
		}
	}
}
