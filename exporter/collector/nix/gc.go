package nix

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

// What the last nix-gc run did. nix-collect-garbage prints its summary on
// stdout ("3 store paths deleted, 0.10 MiB freed") and nothing else keeps
// it: the NixOS module runs nix-gc.service through a wrapper
// (nixos/panther-nix-gc.sh) that writes the summary, the exit status and
// the time into a small state file, which is read here.
var (
	gcLastRun = collector.Gauge(name, "nix_gc_last_run_timestamp_seconds",
		"When the last nix-gc run (nix-collect-garbage through the panther wrapper) finished.")
	gcFreed = collector.Gauge(name, "nix_gc_last_freed_bytes",
		"Bytes the last nix-gc run freed, as nix-collect-garbage reported them (to its 0.01 MiB precision).")
	gcDeleted = collector.Gauge(name, "nix_gc_last_deleted_paths",
		"Store paths the last nix-gc run deleted.")
	gcExit = collector.Gauge(name, "nix_gc_last_exit_status",
		"Exit status of the last nix-gc run's nix-collect-garbage (0: success).")
)

// gcRun is one state file's content.
type gcRun struct {
	finished float64 // Unix time
	exit     int
	deleted  float64
	freed    float64
	summary  bool // the summary line was there
}

// summaryRE matches nix-collect-garbage's last line. Nix prints sizes with
// showBytes ("%.2f MiB"); later versions may pick another unit.
var summaryRE = regexp.MustCompile(`^(\d+) store paths deleted, (\d+(?:\.\d+)?) (B|KiB|MiB|GiB|TiB) freed$`)

var units = map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// parseSummary parses nix-collect-garbage's summary line.
func parseSummary(line []byte) (deleted, freed float64, ok bool) {
	m := summaryRE.FindSubmatch(bytes.TrimSpace(line))
	if m == nil {
		return 0, 0, false
	}
	d, err1 := strconv.ParseUint(string(m[1]), 10, 64)
	f, err2 := strconv.ParseFloat(string(m[2]), 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return float64(d), f * units[string(m[3])], true
}

// parseGCState reads the wrapper's state file:
//
//	finished 1764163200
//	exit_status 0
//	3 store paths deleted, 0.10 MiB freed
//
// The summary line is missing when nix-collect-garbage failed early.
func parseGCState(b []byte) (gcRun, error) {
	var r gcRun
	hasFinished, hasExit := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if d, f, ok := parseSummary(line); ok {
			r.deleted, r.freed, r.summary = d, f, true
			continue
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			return r, fmt.Errorf("line %d: not 'key value' nor nix-collect-garbage's summary", n)
		}
		switch string(k) {
		case "finished":
			t, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || t <= 0 {
				return r, fmt.Errorf("line %d: finished: not a Unix time", n)
			}
			r.finished, hasFinished = float64(t), true
		case "exit_status":
			e, err := strconv.Atoi(string(v))
			if err != nil || e < 0 || e > 255 {
				return r, fmt.Errorf("line %d: exit_status: not an exit status", n)
			}
			r.exit, hasExit = e, true
		default:
			return r, fmt.Errorf("line %d: unknown key", n)
		}
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	if !hasFinished || !hasExit {
		return r, errors.New("no finished or exit_status line (truncated?)")
	}
	if r.exit == 0 && !r.summary {
		return r, errors.New("exit status 0 but no nix-collect-garbage summary line")
	}
	return r, nil
}

// updateGC sends what the state file says. No file: nix-gc never ran
// through the wrapper here, nothing to say.
func (n *Nix) updateGC(ch chan<- prometheus.Metric) error {
	if n.gcState == "" {
		return nil
	}
	p := n.r.host(n.gcState)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	r, err := parseGCState(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	ch <- gcLastRun.Const(r.finished)
	ch <- gcExit.Const(float64(r.exit))
	if r.summary {
		ch <- gcFreed.Const(r.freed)
		ch <- gcDeleted.Const(r.deleted)
	}
	return nil
}
