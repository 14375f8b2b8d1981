// Command soak scrapes one exporter N times as fast as C concurrent
// scrapers can, in blocks of -every scrapes. After each block (all scrapers
// idle) it samples the process: resident set (VmRSS), open file
// descriptors (/proc/PID/fd), goroutines (go_goroutines of a scrape), each
// the floor of -readings readings -gap apart, and,
// with -statsd, what a statsd_exporter received (statsd_exporter_samples_total).
// It prints one table row per block and, at the end, whether RSS,
// goroutines and fds stayed within -tolerance of their first sample after
// warm-up (spread: (max-min)/first; drift: the mean of the last third of
// the samples against the first third), and whether every scrape answered
// 200. It exits 1 on a failed scrape or a drift beyond -tolerance (the
// spread is reported, not judged: garbage collection swings RSS).
//
//	soak -url http://127.0.0.1:9567/metrics -pid 1234 -n 20000 -c 4 -every 1000 -warmup 5000
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type sample struct {
	done       int
	elapsed    time.Duration
	rate       float64 // scrapes/s in the block
	failed     int64
	rss        float64 // bytes
	anon       float64 // RssAnon, bytes: heap and stacks without the binary's pages
	fds        int
	goroutines float64
	statsd     float64 // samples the receiver has taken in, -1 without -statsd
}

func main() {
	url := flag.String("url", "", "exporter URL to scrape")
	pid := flag.Int("pid", 0, "exporter process id")
	n := flag.Int("n", 20000, "scrapes in all")
	c := flag.Int("c", 4, "concurrent scrapers")
	every := flag.Int("every", 1000, "scrapes between samples")
	warmup := flag.Int("warmup", 5000, "scrapes counted as warm-up (samples before it are not judged)")
	tol := flag.Float64("tolerance", 0.05, "allowed spread after warm-up, relative to the first judged sample")
	statsd := flag.String("statsd", "", "statsd_exporter /metrics URL, to show flushes arriving")
	timeout := flag.Duration("timeout", 30*time.Second, "timeout of one scrape")
	readings := flag.Int("readings", 5, "readings per sample; the sample is their floor (minimum)")
	gap := flag.Duration("gap", 200*time.Millisecond, "time between the readings of a sample")
	flag.Parse()
	if *url == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "soak: -url and -pid are required")
		os.Exit(2)
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{MaxIdleConnsPerHost: *c}}
	var failed atomic.Int64
	var firstErr atomic.Value
	var samples []sample
	start := time.Now()
	fmt.Printf("| scrapes | elapsed | scrapes/s | failed | RSS | anon RSS | open fds | goroutines | statsd samples received |\n|---|---|---|---|---|---|---|---|---|\n")
	for done := 0; done < *n; {
		block := min(*every, *n-done)
		blockStart := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < *c; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(block) {
					if err := scrape(client, *url, io.Discard); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			}()
		}
		wg.Wait()
		done += block
		s := sample{
			done: done, elapsed: time.Since(start),
			rate:   float64(block) / time.Since(blockStart).Seconds(),
			failed: failed.Load(), statsd: -1,
		}
		// The floor of a few readings: the background refreshes (podman,
		// btrfs, the Datadog flush) come and go with their goroutines and
		// garbage; a leak raises the floor.
		for i := 0; i < *readings; i++ {
			if i > 0 {
				time.Sleep(*gap)
			}
			rss, fds, g := statusKB(*pid, "VmRSS:")*1024, countFDs(*pid), metricValue(client, *url, "go_goroutines")
			anon := statusKB(*pid, "RssAnon:") * 1024
			if i == 0 || rss < s.rss {
				s.rss = rss
			}
			if i == 0 || anon < s.anon {
				s.anon = anon
			}
			if i == 0 || fds < s.fds {
				s.fds = fds
			}
			if i == 0 || g < s.goroutines {
				s.goroutines = g
			}
		}
		if *statsd != "" {
			s.statsd = metricValue(client, *statsd, "statsd_exporter_samples_total")
		}
		samples = append(samples, s)
		fmt.Printf("| %d | %.0f s | %.0f | %d | %.1f MiB | %.1f MiB | %d | %.0f | %s |\n", s.done, s.elapsed.Seconds(), s.rate,
			s.failed, s.rss/(1<<20), s.anon/(1<<20), s.fds, s.goroutines, statsdCell(s.statsd))
	}
	ok := report(samples, *warmup, *tol)
	if f := failed.Load(); f > 0 {
		fmt.Printf("\nFAILED scrapes: %d of %d (first: %v)\n", f, *n, firstErr.Load())
		ok = false
	} else {
		fmt.Printf("\nfailed scrapes: 0 of %d\n", *n)
	}
	if !ok {
		os.Exit(1)
	}
}

func statsdCell(v float64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// report prints, for RSS, fds and goroutines, the spread of the samples
// taken after warm-up relative to the first of them.
func report(ss []sample, warmup int, tol float64) bool {
	var judged []sample
	for _, s := range ss {
		if s.done > warmup {
			judged = append(judged, s)
		}
	}
	if len(judged) < 2 {
		fmt.Println("\nnot enough samples after warm-up to judge")
		return false
	}
	ok := true
	fmt.Printf("\n| after %d scrapes of warm-up | first | min | max | spread (max-min)/first | spread within %.0f%% | drift: mean of first third → last third | drift within %.0f%% |\n|---|---|---|---|---|---|---|---|\n", warmup, tol*100, tol*100)
	for _, m := range []struct {
		name string
		get  func(sample) float64
		unit func(float64) string
	}{
		{"RSS", func(s sample) float64 { return s.rss }, func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
		{"anon RSS", func(s sample) float64 { return s.anon }, func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
		{"open fds", func(s sample) float64 { return float64(s.fds) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{"goroutines", func(s sample) float64 { return s.goroutines }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	} {
		first := m.get(judged[0])
		lo, hi := first, first
		for _, s := range judged {
			lo = min(lo, m.get(s))
			hi = max(hi, m.get(s))
		}
		spread := (hi - lo) / first
		// Drift: the mean of the last third of the judged samples against
		// the mean of the first third. A leak drifts; garbage collection
		// only swings.
		third := max(1, len(judged)/3)
		var early, late float64
		for i := 0; i < third; i++ {
			early += m.get(judged[i]) / float64(third)
			late += m.get(judged[len(judged)-1-i]) / float64(third)
		}
		drift := (late - early) / early
		pass := spread <= tol
		flat := math.Abs(drift) <= tol
		ok = ok && flat
		fmt.Printf("| %s | %s | %s | %s | %.1f%% | %s | %s → %s (%+.1f%%) | %s |\n", m.name, m.unit(first), m.unit(lo), m.unit(hi),
			spread*100, yes(pass), m.unit(early), m.unit(late), drift*100, yes(flat))
	}
	return ok
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func scrape(c *http.Client, url string, w io.Writer) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// metricValue scrapes url and returns the sum of the samples of the
// unlabelled or labelled metric name (-1 when the scrape fails).
func metricValue(c *http.Client, url, name string) float64 {
	var buf bytes.Buffer
	if err := scrape(c, url, &buf); err != nil {
		return -1
	}
	var total float64
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

func statusKB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb
		}
	}
	return 0
}

func countFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}
