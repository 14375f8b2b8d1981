package btrfs

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// scrubStatus is btrfs-progs' /var/lib/btrfs/scrub.status.<uuid>, summed
// over the devices the way `btrfs scrub status` does (cmds/scrub.c
// add_to_fs_stat): counters are added, the start and resume times are the
// earliest non-zero ones, the duration and the cancelled flag the largest,
// and the scrub counts as finished only when every device finished.
//
// The file looks like (one line per device):
//
//	scrub status:1
//	<fsid>:<devid>|data_extents_scrubbed:320|...|t_start:1795647913|t_resumed:0|duration:0|canceled:0|finished:1
type scrubStatus struct {
	Devices  int
	Counters map[string]uint64 // summed counters (data_bytes_scrubbed, csum_errors, ...)
	TStart   uint64
	TResumed uint64
	Duration uint64
	Canceled bool
	Finished bool
}

// scrubSummed are the per-device counters that are added up.
var scrubSummed = []string{
	"data_extents_scrubbed", "tree_extents_scrubbed", "data_bytes_scrubbed",
	"tree_bytes_scrubbed", "read_errors", "csum_errors", "verify_errors",
	"no_csum", "csum_discards", "super_errors", "malloc_errors",
	"uncorrectable_errors", "corrected_errors",
}

// scrubErrorKinds are the error counters exported as
// panther_btrfs_scrub_errors{type}; the label drops the _errors suffix.
var scrubErrorKinds = []string{
	"read_errors", "csum_errors", "verify_errors", "super_errors",
	"uncorrectable_errors", "corrected_errors", "malloc_errors",
}

// Finish is when the last scrub ended (or, if it is still running, when its
// last progress record was written), as Unix seconds: the resume time if it
// was resumed, else the start time, plus the duration, as `btrfs scrub
// status` reports "started at ... and finished after N seconds".
func (s *scrubStatus) Finish() uint64 {
	t := s.TStart
	if s.TResumed != 0 {
		t = s.TResumed
	}
	return t + s.Duration
}

// parseScrubStatus parses a scrub status file. uuid, when not empty, keeps
// only the lines of that filesystem (the file is per filesystem, but its
// lines name the fsid anyway).
func parseScrubStatus(b []byte, uuid string) (*scrubStatus, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64*1024)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, inputerr.New("", "empty file")
	}
	head := strings.TrimSpace(sc.Text())
	ver, ok := strings.CutPrefix(head, "scrub status:")
	if !ok {
		return nil, inputerr.At("", 1, `want "scrub status:1"`)
	}
	if ver != "1" {
		return nil, inputerr.At("", 1, "unsupported scrub status version")
	}
	st := &scrubStatus{Counters: map[string]uint64{}, Finished: true}
	n := 1
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fields := strings.Split(line, "|")
		fsid, devid, ok := strings.Cut(fields[0], ":")
		if !ok || fsid == "" {
			return nil, inputerr.At("", n, `want "<fsid>:<devid>|..."`)
		}
		if _, err := strconv.ParseUint(devid, 10, 64); err != nil {
			return nil, inputerr.At("", n, "devid is not a number")
		}
		if uuid != "" && fsid != uuid {
			continue
		}
		kv := make(map[string]uint64, len(fields))
		for i, f := range fields[1:] {
			k, v, ok := strings.Cut(f, ":")
			if !ok {
				return nil, inputerr.At("", n, fmt.Sprintf("field %d is not key:value", i+2))
			}
			x, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, inputerr.At("", n, fmt.Sprintf("value of field %d is not a number", i+2))
			}
			kv[k] = x
		}
		for _, k := range []string{"t_start", "duration", "finished", "canceled"} {
			if _, ok := kv[k]; !ok {
				return nil, fmt.Errorf("line %d: no %s (truncated?)", n, k)
			}
		}
		st.Devices++
		for _, k := range scrubSummed {
			st.Counters[k] += kv[k]
		}
		st.TStart = zmin(st.TStart, kv["t_start"])
		st.TResumed = zmin(st.TResumed, kv["t_resumed"])
		st.Duration = max(st.Duration, kv["duration"])
		st.Canceled = st.Canceled || kv["canceled"] != 0
		st.Finished = st.Finished && kv["finished"] != 0
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if st.Devices == 0 {
		return nil, inputerr.New("", "no device lines")
	}
	return st, nil
}

// zmin is the smaller of a and b, ignoring zeros.
func zmin(a, b uint64) uint64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	default:
		return min(a, b)
	}
}
