// Command scrapebench scrapes several exporters in turn, in one run on one
// machine, and prints their scrape latency (p50, p99), CPU seconds per 1000
// scrapes and peak RSS side by side, with ratios to the first target (or to
// the sum of the others with -sum).
//
//	scrapebench -n 1000 ours=http://127.0.0.1:9567/metrics@1234 node=http://127.0.0.1:9100/metrics@5678
//
// Each target is NAME=URL@PID[+PID...]; CPU and RSS are read from
// /proc/PID/stat and /proc/PID/status (VmHWM), summed over the PIDs given.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

type target struct {
	name string
	url  string
	pids []int
	lat  []time.Duration
	fail int
	cpu0 float64
	cpu1 float64
	rss  float64
	anon float64 // RssAnon at the end: heap and stacks, not the binary's pages
}

func main() {
	n := flag.Int("n", 1000, "scrapes per target")
	warm := flag.Int("warmup", 20, "scrapes per target before measuring")
	sum := flag.Bool("sum", false, "compare the first target with the sum of the others (peers run side by side)")
	timeout := flag.Duration("timeout", 30*time.Second, "timeout of one scrape")
	flag.Parse()
	var ts []*target
	for _, arg := range flag.Args() {
		t, err := parseTarget(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scrapebench:", err)
			os.Exit(2)
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		fmt.Fprintln(os.Stderr, "scrapebench: no targets")
		os.Exit(2)
	}
	client := &http.Client{Timeout: *timeout}
	for i := 0; i < *warm; i++ {
		for _, t := range ts {
			scrape(client, t.url)
		}
	}
	for _, t := range ts {
		t.cpu0 = cpuSeconds(t.pids)
	}
	// Round-robin, so that every target sees the same machine conditions.
	for i := 0; i < *n; i++ {
		for _, t := range ts {
			d, err := scrape(client, t.url)
			if err != nil {
				t.fail++
				continue
			}
			t.lat = append(t.lat, d)
		}
	}
	for _, t := range ts {
		t.cpu1 = cpuSeconds(t.pids)
		t.rss = statusSum(t.pids, "VmHWM:")
		t.anon = statusSum(t.pids, "RssAnon:")
	}
	report(ts, *n, *sum)
}

func parseTarget(s string) (*target, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("%q: want NAME=URL@PID", s)
	}
	u, pidList, ok := strings.Cut(rest, "@")
	if !ok {
		return nil, fmt.Errorf("%q: want NAME=URL@PID", s)
	}
	t := &target{name: name, url: u}
	for _, p := range strings.Split(pidList, "+") {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q: pid %q: %v", s, p, err)
		}
		t.pids = append(t.pids, pid)
	}
	return t, nil
}

func scrape(c *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("%s", resp.Status)
	}
	return time.Since(start), nil
}

// cpuSeconds sums utime+stime of the processes (USER_HZ is 100 on Linux).
func cpuSeconds(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		total += (ut + st) / 100
	}
	return total
}

// statusSum sums a kB field of /proc/PID/status (VmHWM: peak resident set;
// RssAnon: its anonymous part) over the processes, in bytes.
func statusSum(pids []int, field string) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, field) {
				kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				total += kb * 1024
			}
		}
	}
	return total
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(p*float64(len(s))+0.5) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= len(s) {
		idx = len(s) - 1
	}
	return s[idx]
}

type figures struct {
	name            string
	p50, p99        time.Duration
	cpuPer1000, rss float64
	anon            float64
	ok, failed      int
}

func measure(t *target, n int) figures {
	return figures{
		name:       t.name,
		p50:        percentile(t.lat, 0.50),
		p99:        percentile(t.lat, 0.99),
		cpuPer1000: (t.cpu1 - t.cpu0) * 1000 / float64(n),
		rss:        t.rss,
		anon:       t.anon,
		ok:         len(t.lat),
		failed:     t.fail,
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func report(ts []*target, n int, sum bool) {
	var fs []figures
	for _, t := range ts {
		fs = append(fs, measure(t, n))
	}
	fmt.Printf("| target | scrapes ok | failed | p50 | p99 | CPU s / 1000 scrapes | peak RSS | anon RSS at end |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range fs {
		fmt.Printf("| %s | %d | %d | %s | %s | %.3f | %.1f MiB | %.1f MiB |\n", f.name, f.ok, f.failed, ms(f.p50), ms(f.p99), f.cpuPer1000, f.rss/(1<<20), f.anon/(1<<20))
	}
	if len(fs) < 2 {
		return
	}
	ours := fs[0]
	fmt.Println()
	if sum {
		// Peers side by side: latency against the slowest peer, cost against their sum.
		var cpu, rss float64
		var slowP50, slowP99 time.Duration
		for _, f := range fs[1:] {
			cpu += f.cpuPer1000
			rss += f.rss
			slowP50 = max(slowP50, f.p50)
			slowP99 = max(slowP99, f.p99)
		}
		fmt.Printf("| ratio %s / peers | p50 vs slowest peer | p99 vs slowest peer | CPU vs sum | RSS vs sum |\n|---|---|---|---|---|\n", ours.name)
		fmt.Printf("| | %.3f | %.3f | %.3f | %.3f |\n", ratio(float64(ours.p50), float64(slowP50)),
			ratio(float64(ours.p99), float64(slowP99)), ratio(ours.cpuPer1000, cpu), ratio(ours.rss, rss))
		return
	}
	fmt.Printf("| ratio | p50 | p99 | CPU | RSS |\n|---|---|---|---|---|\n")
	for _, f := range fs[1:] {
		fmt.Printf("| %s / %s | %.3f | %.3f | %.3f | %.3f |\n", ours.name, f.name,
			ratio(float64(ours.p50), float64(f.p50)), ratio(float64(ours.p99), float64(f.p99)),
			ratio(ours.cpuPer1000, f.cpuPer1000), ratio(ours.rss, f.rss))
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
