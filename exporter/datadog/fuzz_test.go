package datadog

import (
	"strings"
	"testing"
)

// Label values and metric names come from outside (a batch job's textfile):
// whatever they hold, the line the sink formats stays one DogStatsD metric
// with the name and tags it should have.
func FuzzNameAndTag(f *testing.F) {
	for _, s := range [][2]string{
		{"panther_btrfs_device_errors_total", "/dev/sda"},
		{"job:backup_runs_total", "a,b|c#d\ne"},
		{"ünïcode_metric", "v:w"},
		{"_", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		for _, counter := range []bool{false, true} {
			n := Name(name, counter)
			if strings.ContainsAny(n, ":|#,\n@") {
				t.Fatalf("Name(%q) = %q holds a separator", name, n)
			}
			for _, r := range n {
				if safeNameRune(r) != r {
					t.Fatalf("Name(%q) = %q holds %q", name, n, r)
				}
			}
		}
		tg := tag("label", value)
		v := strings.TrimPrefix(tg, "label:")
		if strings.ContainsAny(v, ",|#\n\r") {
			t.Fatalf("tag value %q from %q would break the datagram", v, value)
		}
		if len(v) != len(value) {
			t.Fatalf("tag value %q from %q changed length", v, value)
		}
	})
}
