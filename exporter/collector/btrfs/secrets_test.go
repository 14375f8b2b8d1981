package btrfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector/collectortest"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

const marker = inputerrtest.Marker

// Each parser of sysfs and scrub status, with the marker in every place
// its errors could quote: the error names the line and kind only.
func TestParsersQuoteNoInput(t *testing.T) {
	for _, in := range []string{marker, "12" + marker, "-" + marker, marker + "\n1"} {
		_, err := parseUintFile([]byte(in))
		if err == nil {
			t.Fatalf("parseUintFile(%q): no error", in)
		}
		inputerrtest.CheckErr(t, "parseUintFile", err)
	}
	for _, in := range []string{
		"commits 8\n" + marker + "\n",
		"commits 8\n" + marker + " 1 2\n",
		"commits " + marker + "\n",
		marker + " " + marker + "\n",
	} {
		_, err := parseKeyValues([]byte(in))
		if err == nil || !strings.Contains(err.Error(), "line ") {
			t.Fatalf("parseKeyValues(%q): %v, want an error with its line", in, err)
		}
		inputerrtest.CheckErr(t, "parseKeyValues", err)
	}
	good := "scrub status:1\n" + fixUUID + ":1|t_start:1|duration:2|finished:1|canceled:0\n"
	for _, in := range []string{
		marker + "\n",
		"scrub status:" + marker + "\n",
		good + marker + "\n",
		good + marker + ":1|t_start:1\n",
		good + fixUUID + ":" + marker + "|t_start:1\n",
		good + fixUUID + ":1|" + marker + "\n",
		good + fixUUID + ":1|t_start:" + marker + "\n",
		good + fixUUID + ":1|" + marker + ":1\n",
		good + fixUUID + ":1|t_start:1|" + marker + ":" + marker + "\n",
	} {
		_, err := parseScrubStatus([]byte(in), "")
		if err == nil {
			t.Fatalf("parseScrubStatus(%q): no error", in)
		}
		inputerrtest.CheckErr(t, "parseScrubStatus", err)
	}
}

// Through the collector: a garbled sysfs file or scrub status holding the
// marker fails the collector with an error naming the file, not the marker.
func TestCollectorErrorsQuoteNoInput(t *testing.T) {
	fsDir := filepath.Join("fs", "btrfs", fixUUID)
	for _, f := range []string{"allocation/global_rsv_size", "commit_stats", "devinfo/1/error_stats", "devices/loop0/size"} {
		sys := copyTree(t, "testdata/sys")
		p := filepath.Join(sys, fsDir, f)
		if err := os.WriteFile(p, []byte("x "+marker+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := collectortest.Collect(t, newFixture(t, sys, "testdata/root")).Err
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: error %v does not name the file", f, err)
		}
		inputerrtest.CheckErr(t, f, err)
	}
	root := copyTree(t, "testdata/root")
	p := filepath.Join(root, "var/lib/btrfs/scrub.status."+fixUUID)
	if err := os.WriteFile(p, []byte("scrub status:1\n"+fixUUID+":1|t_start:"+marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := collectortest.Collect(t, newFixture(t, "testdata/sys", root)).Err
	if err == nil || !strings.Contains(err.Error(), p+": line 2") {
		t.Fatalf("scrub status: error %v does not name the file and line", err)
	}
	inputerrtest.CheckErr(t, "scrub status", err)
}
