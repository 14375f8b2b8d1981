package textfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

const marker = inputerrtest.Marker

// Every problem a file can have, with the marker where the message could
// quote it: the file is skipped, and neither its error nor the log quotes
// the marker.
func TestProblemsQuoteNoInput(t *testing.T) {
	// Files of one case are read in name order: a.prom declares first.
	cases := map[string]map[string]string{
		"bad value":          {"x.prom": "ok 1\nmetric " + marker + "\n"},
		"bad name":           {"x.prom": marker + "-x 1\n"},
		"bad label name":     {"x.prom": "m{" + marker + "-x=\"1\"} 1\n"},
		"unterminated label": {"x.prom": "m{a=\"" + marker + "\n"},
		"no quote on label":  {"x.prom": "m{a=" + marker + "} 1\n"},
		"bad escape":         {"x.prom": "m{a=\"\\" + marker + "\"} 1\n"},
		"bad timestamp":      {"x.prom": "m 1 " + marker + "\n"},
		"after timestamp":    {"x.prom": "m 1 2 " + marker + "\n"},
		"bad type":           {"x.prom": "# TYPE m " + marker + "\nm 1\n"},
		"second help":        {"x.prom": "# HELP m a\n# HELP m " + marker + "\nm 1\n"},
		"bad quantile":       {"x.prom": "# TYPE m summary\nm{quantile=\"" + marker + "\"} 1\n"},
		"bad le":             {"x.prom": "# TYPE m histogram\nm_bucket{le=\"" + marker + "\"} 1\n"},
		"duplicate label":    {"x.prom": "m{a=\"1\",a=\"" + marker + "\"} 1\n"},
		"name label":         {"x.prom": "m{__name__=\"" + marker + "\"} 1\n"},
		"timestamp sample":   {"x.prom": marker + " 1 1700000000000\n"},
		"series twice":       {"x.prom": "m{a=\"" + marker + "\"} 1\nm{a=\"" + marker + "\"} 2\n"},
		"bad utf8 label":     {"x.prom": "m{a=\"" + marker + "\xff\"} 1\n"},
		"stale with labels":  {"x.prom": "textfile_stale_after_seconds{a=\"" + marker + "\"} 5\n"},
		"stale negative":     {"x.prom": "m{a=\"" + marker + "\"} 1\ntextfile_stale_after_seconds -5\n"},
		"other help": {
			"a.prom": "# HELP " + marker + " first help\n" + marker + " 1\n",
			"b.prom": "# HELP " + marker + " help " + marker + "\n" + marker + "{b=\"" + marker + "\"} 1\n",
		},
		"other type": {
			"a.prom": "# TYPE " + marker + " gauge\n" + marker + " 1\n",
			"b.prom": "# TYPE " + marker + " counter\n" + marker + "{b=\"" + marker + "\"} 1\n",
		},
		"same series": {
			"a.prom": "m{a=\"" + marker + "\"} 1\n",
			"b.prom": "m{a=\"" + marker + "\"} 2\n",
		},
		"exposed twice": {
			"a.prom": "# TYPE " + marker + " summary\n" + marker + "_sum 1\n" + marker + "_count 1\n",
			"b.prom": marker + "_sum{b=\"" + marker + "\"} 1\n",
		},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			bad := ""
			for f, content := range files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				bad = filepath.Join(dir, f) // the last file of the case is the bad one
				if _, err := parse([]byte(content)); err != nil {
					inputerrtest.CheckErr(t, "parse error", err)
				}
			}
			if len(files) == 2 {
				bad = filepath.Join(dir, "b.prom")
			}
			logger, logs := inputerrtest.Logger()
			c, err := New(collector.Config{Logger: logger}, Options{Directories: []string{dir}})
			if err != nil {
				t.Fatal(err)
			}
			got := gather(t, c)
			if v := got[fmt.Sprintf("panther_textfile_scrape_error{file=%q}", bad)]; v != 1 {
				t.Fatalf("%s not refused (scrape_error %v); log:\n%s", bad, v, logs())
			}
			if !strings.Contains(logs(), "file="+bad) {
				t.Errorf("log does not name %s:\n%s", bad, logs())
			}
			inputerrtest.Check(t, "log", logs())
		})
	}
}

// Special files beside a good one: a symlink out of the directory to a file
// holding the marker, a symlink to a good file in the same directory, a
// FIFO, a file over the size limit (sparse, 1 GiB) and, as root, a device
// node. The run returns, the good file is exported, each other file is
// refused once in the log by name, and nothing of the target is read.
func TestRefusesSpecialFiles(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	good := filepath.Join(dir, "good.prom")
	if err := os.WriteFile(good, []byte("good_metric 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$"+marker+":19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{ // file -> what the log says of it
		"leak.prom":   "a symlink",
		"inside.prom": "a symlink",
		"fifo.prom":   "a FIFO",
		"huge.prom":   "larger than the limit of 1024",
	}
	must(t, os.Symlink(secret, filepath.Join(dir, "leak.prom")))
	must(t, os.Symlink("good.prom", filepath.Join(dir, "inside.prom")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo.prom"), 0o644))
	huge, err := os.Create(filepath.Join(dir, "huge.prom"))
	must(t, err)
	must(t, huge.Truncate(1<<30))
	huge.Close()
	if os.Getuid() == 0 { // mknod needs root; the e2e test covers it in CI
		must(t, syscall.Mknod(filepath.Join(dir, "dev.prom"), syscall.S_IFCHR|0o644, 1<<8|3)) // like /dev/null
		refused["dev.prom"] = "a device"
	}

	logger, logs := inputerrtest.Logger()
	c, err := New(collector.Config{Logger: logger}, Options{Directories: []string{dir}, MaxFileSize: 1024})
	must(t, err)
	for range 3 {
		var got map[string]float64
		done := make(chan struct{})
		go func() { defer close(done); got = gather(t, c) }()
		select {
		case <-done:
		case <-time.After(time.Minute): // a hang, not a slow run: a FIFO read blocks for good
			t.Fatal("Update did not return")
		}
		if got["good_metric"] != 7 {
			t.Fatalf("good file not exported: %v", got)
		}
		for f := range refused {
			if v := got[fmt.Sprintf("panther_textfile_scrape_error{file=%q}", filepath.Join(dir, f))]; v != 1 {
				t.Errorf("%s: scrape_error %v, want 1", f, v)
			}
		}
	}
	l := logs()
	for f, why := range refused {
		p := filepath.Join(dir, f)
		if n := strings.Count(l, "file="+p+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", f, n, l)
		}
		if !strings.Contains(l, why) {
			t.Errorf("log does not say %q:\n%s", why, l)
		}
	}
	inputerrtest.Check(t, "log", l)
}

// read itself refuses a symlink and a FIFO at open time (a file swapped in
// after the Lstat), without blocking.
func TestReadRefusesAtOpen(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	must(t, os.WriteFile(target, []byte(marker+"\n"), 0o600))
	must(t, os.Symlink(target, filepath.Join(dir, "link.prom")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo.prom"), 0o644))
	c, err := New(collector.Config{}, Options{Directories: []string{dir}})
	must(t, err)
	for f, want := range map[string]string{"link.prom": "a symlink", "fifo.prom": "a FIFO"} {
		_, _, err := c.read(filepath.Join(dir, f))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: read error %v, want %q", f, err, want)
		}
	}
	// Too big by fstat. (Growing past the limit between fstat and read is
	// caught by the io.LimitReader; no test can time that race.)
	c.maxSize = 4
	if _, _, err = c.read(target); err == nil || !strings.Contains(err.Error(), "larger than the limit of 4") {
		t.Errorf("oversize read: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
