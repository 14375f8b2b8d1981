package system

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

// Every /proc file the collector reads, garbled with the marker in each
// field a parser (procfs) could quote: the collector's error names
// the file and never quotes the marker.
func TestProcErrorsQuoteNoInput(t *testing.T) {
	const m = inputerrtest.Marker
	for file, contents := range map[string][]string{
		"stat": {
			"cpu  " + m + " 0 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8 9 10\nbtime 1\n",
			"cpu  1 0 1 2 3 4 5 6 7 8\ncpu0 1 " + m + " 3 4 5 6 7 8 9 10\nbtime 1\n",
			"cpu  1 0 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8 9 10\nbtime " + m + "\n",
			"cpu  1 0 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8 9 10\nbtime 1\nintr " + m + "\nctxt " + m + "\nprocesses " + m + "\n",
			"cpu  1 0 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8 9 10\nbtime 1\nsoftirq " + m + "\n",
			m + "\n",
		},
		"meminfo":      {"MemTotal: " + m + " kB\n", m + "\n"},
		"loadavg":      {m + " 1 1 1/1 1\n", "1 " + m + " 1 1/1 1\n", "1 1 1 " + m + "/1 1\n", m},
		"diskstats":    {"   7 0 loop0 " + m + " 282 43736 448 53 14 41664 1722 0 356 2172 1 0 16384 0 4 1\n", m + "\n"},
		"net/dev":      {"a\nb\n  eth0: " + m + " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n", "a\nb\n" + m + "\n", m},
		"pressure/cpu": {"some avg10=" + m + " avg60=1 avg300=1 total=1\n", "some avg10=1 avg60=1 avg300=1 total=" + m + "\n", m + "\n"},
		"1/mountinfo": {
			m + " 1 0:21 / /proc rw shared:5 - proc proc rw\n",
			"22 " + m + " 0:21 / /proc rw shared:5 - proc proc rw\n",
			"22 1 " + m + " / /proc rw - proc proc rw\n",
			"22 1 0:21 / /" + m + "\n",
			"22 1 0:21 / /proc rw shared:5 " + m + " proc\n",
		},
	} {
		for _, content := range contents {
			proc := copyFixture(t)
			path := filepath.Join(proc, file)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := collect(t, proc, t.TempDir(), defaults)
			if err == nil {
				continue // some garbling a parser skips over; nothing to leak
			}
			inputerrtest.CheckErr(t, file+" error", err)
			if strings.Contains(content, "btime "+m) && !strings.Contains(err.Error(), path) {
				t.Errorf("%s: error %v does not name the file", file, err)
			}
		}
	}
}
