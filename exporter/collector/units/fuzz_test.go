package units

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds every file of one fixture unit to f.
func seeds(f *testing.F) {
	dir := filepath.Join(fixture, "sys/fs/cgroup/system.slice/postgresql.service")
	for _, n := range []string{"cpu.stat", "memory.events", "memory.current", "memory.max", "io.stat", "cpu.pressure", "memory.pressure", "pids.current"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("max\n"))
	f.Add([]byte(""))
	f.Add([]byte("some avg10=0.00 total=1\n"))
	f.Add([]byte("8:0 rbytes=1 wbytes=2\n8:16 rbytes=3\n"))
}

// The parsers never panic, and what they accept is consistent with a
// plain reading of the input.
func FuzzParsers(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, ok, err := parseValue(b); err == nil && ok {
			if !bytes.Contains(b, []byte("0")) && v == 0 {
				t.Errorf("parseValue %q = 0 without a digit 0", b)
			}
		}
		var usage uint64
		if err := parseKeyed(b, []string{"usage_usec", "oom_kill"}, func(i int, v uint64) {
			if i == 0 {
				usage = v
			}
		}); err == nil && !bytes.Contains(b, []byte("usage_usec ")) {
			t.Errorf("parseKeyed accepted %q without usage_usec (got %d)", b, usage)
		}
		if s, err := parseIOStat(b); err == nil && (s.rbytes > 0 || s.wbytes > 0) && !bytes.Contains(b, []byte("bytes=")) {
			t.Errorf("parseIOStat %q = %+v without a bytes field", b, s)
		}
		if p, err := parsePressure(b); err == nil {
			if !bytes.HasPrefix(b, []byte("some")) && !bytes.HasPrefix(b, []byte("full")) {
				t.Errorf("parsePressure accepted %q", b)
			}
			if p.hasFull && !bytes.Contains(b, []byte("full")) {
				t.Errorf("parsePressure found full in %q", b)
			}
		}
	})
}
