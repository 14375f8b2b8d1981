package textfile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

// gather runs the collector once through collectortest (a real
// prometheus.Registry checks the families are consistent) and returns the
// sample lines of the text format: name{labels} -> value.
func gather(t testing.TB, c collector.Collector) map[string]float64 {
	t.Helper()
	got := collectortest.Collect(t, c)
	if got.Err != nil {
		t.Fatalf("Update: %v", got.Err)
	}
	return got.Flat()
}

// fromFile is what expfmt itself reads from a fixture, flattened the same
// way: the expected samples.
func fromFile(t testing.TB, path string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var list []*dto.MetricFamily
	for n, f := range fams {
		if n != StaleAfterName {
			list = append(list, f)
		}
	}
	return collectortest.Result{Families: list}.Flat()
}

func newTextfile(t testing.TB, logs *bytes.Buffer, dirs ...string) *Textfile {
	t.Helper()
	var h slog.Handler = slog.DiscardHandler
	if logs != nil {
		h = slog.NewTextHandler(logs, nil)
	}
	c, err := New(collector.Config{Logger: slog.New(h)}, Options{Directories: dirs, StaleAfter: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mtimeOf(t testing.TB, p string) float64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return float64(fi.ModTime().UnixNano()) / 1e9
}

func TestGoodFiles(t *testing.T) {
	dir := filepath.Join("testdata", "good")
	got := gather(t, newTextfile(t, nil, dir))
	for _, f := range []string{"backup.prom", "deploy.prom"} {
		p := filepath.Join(dir, f)
		for k, v := range fromFile(t, p) {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s: %s = %v (present %v), file says %v", f, k, g, ok, v)
			}
		}
		fl := fmt.Sprintf("{file=%q}", p)
		if got["panther_textfile_mtime_seconds"+fl] != mtimeOf(t, p) {
			t.Errorf("%s mtime %v", f, got["panther_textfile_mtime_seconds"+fl])
		}
		if v, ok := got["panther_textfile_scrape_error"+fl]; !ok || v != 0 {
			t.Errorf("%s scrape_error %v %v", f, v, ok)
		}
	}
	// backup.prom declares its own staleness, deploy.prom gets the default.
	if v := got[fmt.Sprintf("panther_textfile_stale_after_seconds{file=%q}", filepath.Join(dir, "backup.prom"))]; v != 93600 {
		t.Errorf("backup stale after %v", v)
	}
	if v := got[fmt.Sprintf("panther_textfile_stale_after_seconds{file=%q}", filepath.Join(dir, "deploy.prom"))]; v != 86400 {
		t.Errorf("deploy stale after %v", v)
	}
	if _, ok := got["textfile_stale_after_seconds"]; ok {
		t.Error("textfile_stale_after_seconds exported as written")
	}
}

func TestMixedFiles(t *testing.T) {
	dir := filepath.Join("testdata", "mixed")
	var logs bytes.Buffer
	c := newTextfile(t, &logs, dir)
	got := gather(t, c)
	errs := map[string]float64{"backup.prom": 0, "deploy.prom": 0, "jobs_a.prom": 0, "garbled.prom": 1, "jobs_b.prom": 1, "builtin.prom": 1}
	for f, want := range errs {
		p := filepath.Join(dir, f)
		if v, ok := got[fmt.Sprintf("panther_textfile_scrape_error{file=%q}", p)]; !ok || v != want {
			t.Errorf("%s: scrape_error %v (present %v), want %v", f, v, ok, want)
		}
		if got[fmt.Sprintf("panther_textfile_mtime_seconds{file=%q}", p)] != mtimeOf(t, p) {
			t.Errorf("%s: mtime missing", f)
		}
		samples := fromFileLenient(p)
		for k, v := range samples {
			g, ok := got[k]
			if want == 0 && (!ok || g != v) {
				t.Errorf("%s: %s = %v (present %v), file says %v", f, k, g, ok, v)
			}
			if want == 1 && ok && !strings.HasPrefix(k, "panther_scrape_collector_success") {
				t.Errorf("%s was skipped but %s is exported", f, k)
			}
		}
	}
	if _, ok := got[`panther_scrape_collector_success{collector="backup"}`]; ok {
		t.Error("builtin.prom's sample exported")
	}
	// A second and third scrape log nothing new: once per change.
	gather(t, c)
	gather(t, c)
	l := logs.String()
	for f, reason := range map[string]string{
		"garbled.prom": `line 4: unexpected end of label value \"…\"`,
		"jobs_b.prom":  "the metric at line 1 is declared with another type (counter here, gauge there) than the metric at line 1 of " + filepath.Join(dir, "jobs_a.prom"),
		"builtin.prom": "the metric at line 2 collides with panther_scrape_collector_success of the exporter's own collector exporter",
	} {
		if n := strings.Count(l, filepath.Join(dir, f)); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", f, n, l)
		}
		if !strings.Contains(l, reason) {
			t.Errorf("log does not give the reason %q for %s:\n%s", reason, f, l)
		}
	}
	if strings.Count(l, "\n") != 3 {
		t.Errorf("want 3 log lines:\n%s", l)
	}
}

// fromFileLenient is fromFile for files that may not parse (none then).
func fromFileLenient(path string) map[string]float64 {
	b, _ := os.ReadFile(path)
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	var list []*dto.MetricFamily
	for n, f := range fams {
		if n != StaleAfterName {
			list = append(list, f)
		}
	}
	return collectortest.Result{Families: list}.Flat()
}

// A file replaced by rename is read anew; one fixed logs its recovery; a
// removed file disappears.
func TestChangesAndRecovery(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	c := newTextfile(t, &logs, dir)
	p := filepath.Join(dir, "job.prom")
	write := func(content string) {
		tmp := filepath.Join(dir, ".job.prom.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("job_runs_total 1\n")
	if v := gather(t, c)["job_runs_total"]; v != 1 {
		t.Fatalf("first value %v", v)
	}
	write("job_runs_total 2\n")
	if v := gather(t, c)["job_runs_total"]; v != 2 {
		t.Fatalf("after rename %v", v)
	}
	write("job_runs_total{ 3\n")
	got := gather(t, c)
	if _, ok := got["job_runs_total"]; ok || got[fmt.Sprintf("panther_textfile_scrape_error{file=%q}", p)] != 1 {
		t.Fatalf("garbled: %v", got)
	}
	write("job_runs_total 4\n")
	if v := gather(t, c)["job_runs_total"]; v != 4 {
		t.Fatalf("after fix %v", v)
	}
	if !strings.Contains(logs.String(), "textfile usable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
	os.Remove(p)
	if got := gather(t, c); len(got) != 0 {
		t.Errorf("removed file still exported: %v", got)
	}
}

func TestBadFilesInParser(t *testing.T) {
	for name, content := range map[string]string{
		"timestamp":       "x 1 1700000000000\n",
		"duplicate":       "x{a=\"1\"} 1\nx{a=\"1\"} 2\n",
		"stale not gauge": "# TYPE textfile_stale_after_seconds counter\ntextfile_stale_after_seconds 5\n",
		"stale negative":  "textfile_stale_after_seconds -5\n",
		"stale labels":    "textfile_stale_after_seconds{a=\"b\"} 5\n",
		"bad utf8":        "x{a=\"\xff\"} 1\n",
	} {
		if _, err := parse([]byte(content)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A file repeating the exporter's Go runtime metrics is skipped too.
func TestRuntimeMetricCollision(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "go.prom")
	os.WriteFile(p, []byte("# TYPE go_goroutines gauge\ngo_goroutines 3\n"), 0o644)
	var logs bytes.Buffer
	got := gather(t, newTextfile(t, &logs, dir))
	if _, ok := got["go_goroutines"]; ok || got[fmt.Sprintf("panther_textfile_scrape_error{file=%q}", p)] != 1 {
		t.Fatalf("go_goroutines from a file accepted: %v", got)
	}
	if !strings.Contains(logs.String(), "go_goroutines") {
		t.Errorf("log: %s", logs.String())
	}
}

func TestMissingDirectory(t *testing.T) {
	c := newTextfile(t, nil, filepath.Join(t.TempDir(), "nope"))
	err := c.Update(context.Background(), make(chan prometheus.Metric, 10))
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error %v does not name the directory", err)
	}
}

// FuzzParse feeds arbitrary files through the parser path; whatever it
// accepts must gather cleanly.
func FuzzParse(f *testing.F) {
	for _, d := range []string{"good", "mixed"} {
		ps, _ := filepath.Glob(filepath.Join("testdata", d, "*.prom"))
		for _, p := range ps {
			b, _ := os.ReadFile(p)
			f.Add(b, uint(len(b)/2))
		}
	}
	f.Add([]byte("a{le=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum NaN\n"), uint(4))
	f.Fuzz(func(t *testing.T, data []byte, at uint) {
		if _, err := parse(inputerrtest.Plant(data, at)); err != nil {
			inputerrtest.CheckErr(t, "parse error", err)
		}
		p, err := parse(data)
		if err != nil {
			return
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(metricsOf{p})
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("accepted %q but gather fails: %v", data, err)
		}
	})
}

// metricsOf collects the metrics of one parsed file.
type metricsOf struct{ p *parsed }

func (metricsOf) Describe(chan<- *prometheus.Desc) {}
func (m metricsOf) Collect(ch chan<- prometheus.Metric) {
	for _, f := range m.p.families {
		for _, x := range f.metrics {
			ch <- x
		}
	}
}

// TestMixedGolden pins what the collector exports of the mixed fixture
// directory (good files, a garbled one, clashing ones); the mtimes are
// those of the checkout.
func TestMixedGolden(t *testing.T) {
	got := collectortest.Collect(t, newTextfile(t, nil, "testdata/mixed"))
	got.Without("panther_textfile_mtime_seconds").Golden(t, "testdata/mixed.prom")
}
