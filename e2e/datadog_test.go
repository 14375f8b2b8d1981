//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// ddLabels is what a series' labels look like after the trip through
// DogStatsD tags: empty values left out, ',' '|' '#' in values (which would
// end a tag or a field) turned into '_', the --datadog.tags added.
func ddLabels(m *dto.Metric, extra map[string]string) string {
	var out []string
	for _, l := range m.Label {
		if l.GetValue() != "" {
			out = append(out, l.GetName()+"="+tagSafe.Replace(l.GetValue()))
		}
	}
	for k, v := range extra {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

var tagSafe = strings.NewReplacer(",", "_", "|", "_", "#", "_")

func byLabels(f Families, name string, extra map[string]string) map[string]float64 {
	out := map[string]float64{}
	if fam, ok := f[name]; ok {
		for _, m := range fam.Metric {
			out[ddLabels(m, extra)] = MetricValue(m)
		}
	}
	return out
}

// Gauges that do not move while the test runs: their values must be equal.
var stableGauges = []string{"panther_cpus", "panther_memory_total_bytes", "panther_swap_total_bytes",
	"panther_boot_timestamp_seconds", "panther_filesystem_size_bytes", "panther_exporter_build_info"}

func TestDatadogSink(t *testing.T) {
	serial(t)
	for _, mode := range []string{"udp", "unixgram"} {
		t.Run(mode, func(t *testing.T) { testDatadogSink(t, mode) })
	}
}

func testDatadogSink(t *testing.T, mode string) {
	r := startStatsdReceiver(t, mode)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system",
		"--datadog.address="+r.Address, "--datadog.interval=2s",
		// Send the system metrics too (left to the Agent by default), but not
		// go_*/process_*, which would clash with statsd_exporter's own.
		"--datadog.exclude=^(go|process|promhttp)_",
		"--datadog.tags=role:e2e")
	tags := map[string]string{"role": "e2e"}

	// Before the first flush: the counters' starting values.
	first := e.Scrape(t)
	if v, ok := first.Value("panther_datadog_flushes_total", nil); !ok || v != 0 {
		t.Fatalf("first scrape came after a flush (panther_datadog_flushes_total=%v); cannot bound counter growth", v)
	}

	// Wait for at least three flushes to have arrived (counters appear from the second).
	eventually(t, 30*time.Second, "three flushes arrive at statsd_exporter", func() error {
		s := r.Scrape(t)
		if v, ok := s.Value("panther_datadog_flushes", tags); !ok || v < 2 {
			return fmt.Errorf("panther_datadog_flushes = %v (present %v)", v, ok)
		}
		return nil
	})

	// Gauges: the same series with the same tags; stable ones with equal values.
	now := e.Scrape(t)
	got := r.Scrape(t)
	for name, fam := range now {
		if !strings.HasPrefix(name, "panther_") || fam.GetType() != dto.MetricType_GAUGE {
			continue
		}
		want, have := byLabels(now, name, tags), byLabels(got, name, nil)
		for lbl := range want {
			if _, ok := have[lbl]; !ok {
				t.Errorf("gauge %s{%s} on /metrics did not arrive; arrived: %v", name, lbl, have)
			}
		}
	}
	for _, name := range stableGauges {
		want, have := byLabels(now, name, tags), byLabels(got, name, nil)
		if len(want) == 0 {
			t.Errorf("%s missing from /metrics", name)
		}
		for lbl, v := range want {
			if have[lbl] != v {
				t.Errorf("gauge %s{%s}: /metrics %v, DogStatsD %v", name, lbl, v, have[lbl])
			}
		}
	}

	// Counters: the counts sum to the counter's growth. Exactly for the
	// sink's own flush counter (value k at flush k: counts 1 from flush 2
	// on, so their sum is the last value minus 1) ...
	eventually(t, 20*time.Second, "sum of panther.datadog.flushes counts = growth", func() error {
		s1, _ := r.Scrape(t).Value("panther_datadog_flushes", tags)
		m, _ := e.Scrape(t).Value("panther_datadog_flushes_total", nil)
		s2, _ := r.Scrape(t).Value("panther_datadog_flushes", tags)
		if s1 != s2 || s1 != m-1 {
			return fmt.Errorf("DogStatsD sum %v then %v, /metrics %v", s1, s2, m)
		}
		return nil
	})
	// ... and within bounds for every other counter: the sum is at most the
	// growth since before the first flush (+1 for a float counter's carried
	// fraction) and never negative.
	now = e.Scrape(t)
	got = r.Scrape(t)
	checked := 0
	for name, fam := range now {
		if !strings.HasPrefix(name, "panther_") || fam.GetType() != dto.MetricType_COUNTER {
			continue
		}
		dd := strings.TrimSuffix(name, "_total")
		start, end, have := byLabels(first, name, tags), byLabels(now, name, tags), byLabels(got, dd, nil)
		for lbl, v := range end {
			s, ok := have[lbl]
			if !ok {
				t.Errorf("counter %s{%s} did not arrive as %s", name, lbl, dd)
				continue
			}
			growth := v - start[lbl]
			if s < 0 || s > growth+1 {
				t.Errorf("counter %s{%s}: sum of counts %v, growth on /metrics %v", name, lbl, s, growth)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d counter series checked", checked)
	}

	// Receiver down: /metrics keeps answering, drops are counted, memory stays flat.
	r.Stop()
	dropped := func() float64 {
		v, _ := e.Scrape(t).Value("panther_datadog_packets_dropped_total", map[string]string{"reason": "writer"})
		return v
	}
	base := dropped()
	eventually(t, 30*time.Second, "drops counted with the receiver down", func() error {
		if d := dropped(); d <= base {
			return fmt.Errorf("panther_datadog_packets_dropped_total{reason=writer} still %v", d)
		}
		return nil
	})
	rss := func() (float64, float64) {
		f := e.Scrape(t)
		v, _ := f.Value("process_resident_memory_bytes", nil)
		n, _ := f.Value("panther_datadog_flushes_total", nil)
		return v, n
	}
	rss1, n1 := rss()
	eventually(t, 60*time.Second, "eight more flushes with the receiver down", func() error {
		if _, n := rss(); n < n1+8 {
			return fmt.Errorf("%v flushes so far", n)
		}
		return nil
	})
	rss2, _ := rss()
	if rss2 > rss1+8<<20 {
		t.Errorf("memory grew with the receiver down: RSS %v -> %v bytes", rss1, rss2)
	}
	t.Logf("%s: receiver down: RSS %.1f -> %.1f MiB over 8 flushes", mode, rss1/(1<<20), rss2/(1<<20))

	// Receiver back: data flows again.
	r.Restart()
	eventually(t, 30*time.Second, "data arrives after the receiver restarts", func() error {
		s := r.Scrape(t)
		if v, ok := s.Value("panther_cpus", tags); !ok || v < 1 || math.IsNaN(v) {
			return fmt.Errorf("panther_cpus = %v (present %v)", v, ok)
		}
		return nil
	})
}

// The textfile collector's batch-job metrics reach DogStatsD too (their
// names need no panther_ prefix): a counter's counts sum to exactly what
// the job's file says it grew by, a reset sends nothing, and the job of the
// textfile e2e (StartTextfileJob) arrives whole.
func TestTextfileReachesDatadog(t *testing.T) {
	serial(t)
	dir := t.TempDir()
	r := startStatsdReceiver(t, "udp")
	e := startExporter(t, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+dir,
		"--datadog.address="+r.Address, "--datadog.interval=300ms")
	write := func(runs int) {
		WriteTextfile(t, dir, "backup.prom", fmt.Sprintf(
			"# TYPE backup_runs_total counter\nbackup_runs_total %d\n# TYPE backup_written_bytes gauge\nbackup_written_bytes{volume=\"home\"} %d\n",
			runs, runs*4096))
	}
	waitFor := func(what string, runs, sum float64) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() error {
			s := r.Scrape(t)
			g, _ := s.Value("backup_written_bytes", map[string]string{"volume": "home"})
			c, ok := s.Value("backup_runs", nil)
			if g != runs*4096 || !ok || c != sum {
				return fmt.Errorf("backup_written_bytes %v, sum of backup.runs counts %v (present %v)", g, c, ok)
			}
			return nil
		})
	}
	write(10)
	waitFor("first sight: the gauge, and a count of 0", 10, 0)
	write(25)
	waitFor("counts sum to the growth 10 -> 25", 25, 15)
	write(40)
	waitFor("counts sum to the growth 10 -> 40", 40, 30)
	write(5) // the job's counter was reset
	eventually(t, 30*time.Second, "the reset is seen", func() error {
		if v, _ := e.Scrape(t).Value("panther_datadog_counter_resets_total", nil); v < 1 {
			return fmt.Errorf("panther_datadog_counter_resets_total %v", v)
		}
		return nil
	})
	waitFor("nothing sent for the reset", 5, 30)
	write(8)
	waitFor("counting goes on from the reset value", 8, 33)

	job := StartTextfileJob(t, dir, "nightly", 200*time.Millisecond)
	eventually(t, 30*time.Second, "the job's file arrives whole", func() error {
		s := r.Scrape(t)
		if n := len(s.Series("nightly_item", nil)); n != 200 {
			return fmt.Errorf("%d series of nightly_item", n)
		}
		if v, ok := s.Value("nightly_runs", nil); !ok || v < 1 {
			return fmt.Errorf("nightly_runs %v (present %v)", v, ok)
		}
		if v, ok := s.Value("panther_textfile_mtime_age_seconds", map[string]string{"file": job.File}); !ok || v > 60 {
			return fmt.Errorf("panther_textfile_mtime_age_seconds %v (present %v)", v, ok)
		}
		return nil
	})
}
