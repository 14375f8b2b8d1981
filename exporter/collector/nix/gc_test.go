package nix

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

var fmtSscanf = fmt.Sscanf

func (n *Nix) cfgFor() collector.Config {
	return collector.Config{RootPath: n.r.root, Logger: n.logger}
}

func TestParseGCState(t *testing.T) {
	r, err := parseGCState([]byte("finished 1764163200\nexit_status 0\n3 store paths deleted, 0.10 MiB freed\n"))
	if err != nil || r.finished != 1764163200 || r.deleted != 3 || r.freed != 0.10*(1<<20) || !r.summary {
		t.Errorf("%+v %v", r, err)
	}
	if r, err := parseGCState([]byte("finished 1764163200\nexit_status 1\n")); err != nil || r.summary || r.exit != 1 {
		t.Errorf("failed run: %+v %v", r, err)
	}
	if r, err := parseGCState([]byte("finished 1\nexit_status 0\n12 store paths deleted, 1.50 GiB freed\n")); err != nil || r.freed != 1.5*(1<<30) {
		t.Errorf("GiB: %+v %v", r, err)
	}
	for in, want := range map[string]string{
		"":                              "no finished",
		"finished 1764163200\n":         "no finished or exit_status",
		"finished x\nexit_status 0\n":   "line 1: finished",
		"finished 1\nexit_status 0\n":   "no nix-collect-garbage summary",
		"finished 1\nexit_status 999\n": "exit_status",
		"finished 1\nsecret hunter2\n":  "line 2: unknown key",
		"garbage\n":                     "line 1: not 'key value'",
	} {
		_, err := parseGCState([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error quotes the input", in)
		}
	}
}

// A garbled state file is an error naming it; the rest of the collector
// is still served.
func TestGCStateGarbled(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "nix/store/6n1r7cbwd94xy4dp0xn4zxqg69pk4ssm-glibc"), 0o755)
	os.MkdirAll(filepath.Join(root, "var/lib/panther"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/panther/nix-gc-last-run"), []byte("finished 17641"), 0o644)
	n, err := New(collector.Config{RootPath: root}, Options{GCStateFile: DefaultGCStateFile})
	if err != nil {
		t.Fatal(err)
	}
	got, err := samples(t, n)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "var/lib/panther/nix-gc-last-run")) {
		t.Fatalf("error %v does not name the state file", err)
	}
	if got["panther_nix_store_paths"] != 1 {
		t.Errorf("store paths %v", got["panther_nix_store_paths"])
	}
}

func FuzzParseGCState(f *testing.F) {
	f.Add([]byte("finished 1764163200\nexit_status 0\n3 store paths deleted, 0.10 MiB freed\n"))
	f.Add([]byte("finished 1\nexit_status 1\n"))
	f.Add([]byte("0 store paths deleted, 0.00 MiB freed"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseGCState(b)
		if err != nil {
			return
		}
		if r.freed < 0 || r.deleted < 0 || r.finished <= 0 {
			t.Errorf("%q: %+v", b, r)
		}
		if r.summary != strings.Contains(string(b), " store paths deleted, ") {
			t.Errorf("%q: summary %v", b, r.summary)
		}
	})
}

// A garbled state file fails without quoting it.
func TestGCStateQuotesNoInput(t *testing.T) {
	m := inputerrtest.Marker
	for _, content := range []string{
		m + "\n", "finished " + m + "\n", "finished 1\nexit_status " + m + "\n", m + " 1\n",
		"finished 1\nexit_status 0\n" + m + " store paths deleted, 1 MiB freed\n",
	} {
		_, err := parseGCState([]byte(content))
		if err == nil {
			t.Fatalf("%q parsed", content)
		}
		inputerrtest.CheckErr(t, "gc state error", err)
	}
}
