package units

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// The parsers below read the cgroup v2 interface files of one unit
// (Documentation/admin-guide/cgroup-v2.rst). They work on the bytes of a
// whole file and never quote them in an error: the caller adds the file name.

var (
	errEmpty     = errors.New("empty file")
	errTruncated = errors.New("truncated: no final newline")
)

// complete checks that b is a whole file as the kernel writes it: at least
// one line, each ended by a newline.
func complete(b []byte) error {
	if len(b) == 0 {
		return errEmpty
	}
	if b[len(b)-1] != '\n' {
		return errTruncated
	}
	return nil
}

// parseValue parses a single-value file (memory.current, pids.current,
// memory.max). "max" gives ok=false: no limit.
func parseValue(b []byte) (v uint64, ok bool, err error) {
	if err := complete(b); err != nil {
		return 0, false, err
	}
	s := bytes.TrimSpace(b)
	if string(s) == "max" {
		return 0, false, nil
	}
	v, err = strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, false, errors.New("not a number")
	}
	return v, true, nil
}

// parseKeyed finds keys in a flat keyed file ("key value" lines: cpu.stat,
// memory.events) and calls set for each key found. want lists the keys
// looked for; a key missing from the file is an error.
func parseKeyed(b []byte, want []string, set func(i int, v uint64)) error {
	if err := complete(b); err != nil {
		return err
	}
	found, n := 0, 0
	for line := range bytes.Lines(b) {
		n++
		key, val, ok := bytes.Cut(bytes.TrimSuffix(line, []byte{'\n'}), []byte{' '})
		if !ok {
			return fmt.Errorf("line %d: no value", n)
		}
		for i, w := range want {
			if string(key) != w {
				continue
			}
			v, err := strconv.ParseUint(string(val), 10, 64)
			if err != nil {
				return fmt.Errorf("%s: not a number", w)
			}
			set(i, v)
			found |= 1 << i
		}
	}
	for i, w := range want {
		if found&(1<<i) == 0 {
			return fmt.Errorf("no %s line", w)
		}
	}
	return nil
}

// ioStat holds io.stat summed over devices.
type ioStat struct{ rbytes, wbytes uint64 }

// parseIOStat sums rbytes and wbytes of io.stat over every device line
// ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0"). An empty io.stat
// is valid: the unit did no I/O yet.
func parseIOStat(b []byte) (ioStat, error) {
	var s ioStat
	if len(b) == 0 {
		return s, nil
	}
	if b[len(b)-1] != '\n' {
		return s, errTruncated
	}
	n := 0
	for line := range bytes.Lines(b) {
		n++
		fields := bytes.Fields(line)
		if len(fields) < 2 || bytes.IndexByte(fields[0], ':') < 0 {
			return s, fmt.Errorf("line %d: not a device line", n)
		}
		for _, f := range fields[1:] {
			k, v, ok := bytes.Cut(f, []byte{'='})
			if !ok {
				return s, fmt.Errorf("line %d: field without '='", n)
			}
			var dst *uint64
			switch string(k) {
			case "rbytes":
				dst = &s.rbytes
			case "wbytes":
				dst = &s.wbytes
			default:
				continue
			}
			x, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return s, fmt.Errorf("line %d: %s not a number", n, k)
			}
			*dst += x
		}
	}
	return s, nil
}

// pressure holds the total stall times of a *.pressure file, in
// microseconds; hasFull is false for cpu.pressure on kernels before 5.13.
type pressure struct {
	some, full uint64
	hasFull    bool
}

// parsePressure reads "some avg10=0.00 avg60=0.00 avg300=0.00 total=123"
// and the optional "full ..." line.
func parsePressure(b []byte) (pressure, error) {
	var p pressure
	if err := complete(b); err != nil {
		return p, err
	}
	hasSome := false
	n := 0
	for line := range bytes.Lines(b) {
		n++
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			return p, fmt.Errorf("line %d: empty", n)
		}
		var dst *uint64
		switch string(fields[0]) {
		case "some":
			dst, hasSome = &p.some, true
		case "full":
			dst, p.hasFull = &p.full, true
		default:
			return p, fmt.Errorf("line %d: neither some nor full", n)
		}
		total := false
		for _, f := range fields[1:] {
			v, ok := bytes.CutPrefix(f, []byte("total="))
			if !ok {
				continue
			}
			x, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return p, fmt.Errorf("line %d: total not a number", n)
			}
			*dst, total = x, true
		}
		if !total {
			return p, fmt.Errorf("line %d: no total", n)
		}
	}
	if !hasSome {
		return p, errors.New("no some line")
	}
	return p, nil
}
