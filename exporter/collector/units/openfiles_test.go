package units

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fixture trees are regular files. A unit keeps them open between
// scrapes and preads them at offset 0, which sees a file rewritten in place
// (os.WriteFile truncates the same inode), as the kernel's cgroup files
// are. These tests therefore change files in place; a file replaced by
// rename would keep the old inode open (a cgroup file never is).

// openFDs counts the file descriptors the units collector holds.
func openFDs(u *Units) int {
	n := 0
	for _, f := range u.open {
		for _, fd := range f.fd {
			if fd >= 0 {
				n++
			}
		}
	}
	return n
}

// processFDs counts the process's open descriptors.
func processFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es) - 1 // the directory being read
}

func reported(got map[string]float64) map[string]bool {
	units := map[string]bool{}
	for k := range got {
		if u, ok := strings.CutPrefix(k, `panther_unit_cpu_seconds_total{unit="`); ok {
			units[strings.TrimSuffix(u, `"}`)] = true
		}
	}
	return units
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Units added and removed between scrapes: a new one is read, a removed one
// disappears without an error and its files are closed; a value rewritten
// in place is read afresh through the file kept open.
func TestUnitsComeAndGo(t *testing.T) {
	root := copyFixture(t)
	sys := filepath.Join(root, "sys/fs/cgroup/system.slice")
	before := processFDs(t)
	u := newUnits(t, root, Options{})
	got, err := samples(t, u)
	if err != nil {
		t.Fatal(err)
	}
	units := reported(got)
	if len(u.open) != len(units) || processFDs(t)-before != openFDs(u) {
		t.Fatalf("%d units reported, %d kept open; %d descriptors more, %d held", len(units), len(u.open), processFDs(t)-before, openFDs(u))
	}
	// postgresql.service has all 11 files, nginx.service (no memory.peak,
	// no swap) fewer: what exists is open, nothing more.
	if n := openFDs(u); n > len(units)*filesPerUnit || n < len(units)*4 {
		t.Fatalf("%d descriptors for %d units", n, len(units))
	}
	sshdFD := u.open[filepath.Join(sys, "sshd.service")].fd[fMemCurrent]

	if err := os.CopyFS(filepath.Join(sys, "new.service"), os.DirFS(filepath.Join(sys, "nix-daemon.service"))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(sys, "nginx.service")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(sys, "sshd.service/memory.current"), "7340032\n")
	got, err = samples(t, u)
	if err != nil {
		t.Fatal(err)
	}
	now := reported(got)
	if !now["new.service"] || now["nginx.service"] || len(now) != len(units) {
		t.Errorf("after adding new.service and removing nginx.service: %d units, new %v, nginx %v", len(now), now["new.service"], now["nginx.service"])
	}
	if v := got[unitKey("panther_unit_memory_bytes", "sshd.service")]; v != 7340032 {
		t.Errorf("sshd.service memory %v after rewriting memory.current, want 7340032", v)
	}
	if fd := u.open[filepath.Join(sys, "sshd.service")].fd[fMemCurrent]; fd != sshdFD {
		t.Errorf("sshd.service/memory.current reopened (fd %d, was %d): want it read through the open file", fd, sshdFD)
	}
	if _, ok := u.open[filepath.Join(sys, "nginx.service")]; ok {
		t.Error("nginx.service's files still open after it went away")
	}
	if processFDs(t)-before != openFDs(u) {
		t.Errorf("%d descriptors more than before, the collector holds %d: leaked", processFDs(t)-before, openFDs(u))
	}

	// No cgroup v2 hierarchy any more: everything is closed.
	if err := os.Remove(filepath.Join(root, "sys/fs/cgroup/cgroup.subtree_control")); err != nil {
		t.Fatal(err)
	}
	if _, err := samples(t, u); err != nil {
		t.Fatal(err)
	}
	if len(u.open) != 0 || processFDs(t) != before {
		t.Errorf("%d units still open, %d descriptors more than before", len(u.open), processFDs(t)-before)
	}
}

// A file garbled or truncated in place between scrapes is an error naming
// it for that unit only, and is read again when it is whole.
func TestFileBrokenBetweenScrapes(t *testing.T) {
	root := copyFixture(t)
	sys := filepath.Join(root, "sys/fs/cgroup/system.slice")
	u := newUnits(t, root, Options{})
	if _, err := samples(t, u); err != nil {
		t.Fatal(err)
	}
	cpu := filepath.Join(sys, "nginx.service/cpu.stat")
	good, err := os.ReadFile(cpu)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cpu, "usage_usec 12")
	io := filepath.Join(sys, "dbus.service/io.stat")
	write(t, io, "259:0 rbytes=x wbytes=0\n")
	got, err := samples(t, u)
	if err == nil || !strings.Contains(err.Error(), "nginx.service/cpu.stat: truncated") || !strings.Contains(err.Error(), "dbus.service/io.stat: line 1: rbytes not a number") {
		t.Fatalf("error %v: want nginx.service/cpu.stat truncated and dbus.service/io.stat garbled", err)
	}
	for k, present := range map[string]bool{
		unitKey("panther_unit_cpu_seconds_total", "nginx.service"):      false,
		unitKey("panther_unit_memory_bytes", "nginx.service"):           true,
		unitKey("panther_unit_io_read_bytes_total", "dbus.service"):     false,
		unitKey("panther_unit_cpu_seconds_total", "dbus.service"):       true,
		unitKey("panther_unit_cpu_seconds_total", "sshd.service"):       true,
		unitKey("panther_unit_io_read_bytes_total", "sshd.service"):     true,
		unitKey("panther_unit_memory_bytes", "nix-daemon.service"):      true,
		unitKey("panther_unit_cpu_seconds_total", "postgresql.service"): true,
	} {
		if _, ok := got[k]; ok != present {
			t.Errorf("%s present %v, want %v", k, ok, present)
		}
	}
	write(t, cpu, string(good))
	write(t, io, "259:0 rbytes=4096 wbytes=0\n")
	got, err = samples(t, u)
	if err != nil {
		t.Fatalf("after repairing the files: %v", err)
	}
	if got[unitKey("panther_unit_io_read_bytes_total", "dbus.service")] != 4096 {
		t.Errorf("dbus.service read bytes %v, want 4096", got[unitKey("panther_unit_io_read_bytes_total", "dbus.service")])
	}
	if _, ok := got[unitKey("panther_unit_cpu_seconds_total", "nginx.service")]; !ok {
		t.Error("nginx.service CPU missing after repairing cpu.stat")
	}
}

// A file absent when a unit's files were opened is looked for again only
// after retryAbsent; a required one is an error on every scrape until then.
func TestAbsentFileRetried(t *testing.T) {
	root := copyFixture(t)
	pg := filepath.Join(root, "sys/fs/cgroup/system.slice/postgresql.service")
	peak, err := os.ReadFile(filepath.Join(pg, "memory.peak"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(pg, "memory.peak"))
	os.Remove(filepath.Join(pg, "memory.current"))
	u := newUnits(t, root, Options{})
	clock := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	u.now = func() time.Time { return clock }
	for scrape := range 2 {
		got, err := samples(t, u)
		if err == nil || !strings.Contains(err.Error(), "postgresql.service/memory.current: open") {
			t.Errorf("scrape %d: error %v, want postgresql.service/memory.current missing", scrape, err)
		}
		if _, ok := got[unitKey("panther_unit_memory_peak_bytes", "postgresql.service")]; ok {
			t.Errorf("scrape %d: a peak without memory.peak", scrape)
		}
		// Both files appear; not looked for before retryAbsent has passed.
		write(t, filepath.Join(pg, "memory.peak"), string(peak))
		write(t, filepath.Join(pg, "memory.current"), "1048576\n")
		clock = clock.Add(retryAbsent / 2)
	}
	clock = clock.Add(retryAbsent / 2)
	got, err := samples(t, u)
	if err != nil {
		t.Fatalf("after retryAbsent: %v", err)
	}
	if got[unitKey("panther_unit_memory_bytes", "postgresql.service")] != 1048576 || got[unitKey("panther_unit_memory_peak_bytes", "postgresql.service")] != 1073741824-4096 {
		t.Errorf("after retryAbsent: memory %v, peak %v", got[unitKey("panther_unit_memory_bytes", "postgresql.service")], got[unitKey("panther_unit_memory_peak_bytes", "postgresql.service")])
	}
}

// The descriptors stay bounded: at most maxOpen units keep their files
// open; the others are still reported, read with open, read and close; and
// units left out by --collector.units.max-units keep nothing open.
func TestOpenFilesBounded(t *testing.T) {
	all, err := samples(t, newUnits(t, fixture, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	n := len(reported(all))
	before := processFDs(t)
	u := newUnits(t, fixture, Options{})
	u.maxOpen = 3
	for range 2 {
		got, err := samples(t, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(reported(got)) != n || len(u.open) != 3 || processFDs(t)-before != openFDs(u) {
			t.Errorf("maxOpen 3: %d units reported (want %d), %d kept open, %d descriptors more (held %d)", len(reported(got)), n, len(u.open), processFDs(t)-before, openFDs(u))
		}
	}
	// The first scrape opens units in list order and closes those that
	// are not among the 5 using the most memory; the second opens the
	// rest of those 5.
	u = newUnits(t, fixture, Options{MaxUnits: 5})
	for scrape := range 3 {
		if _, err := samples(t, u); err != nil {
			t.Fatal(err)
		}
		if len(u.open) > 5 || scrape > 0 && len(u.open) != 5 {
			t.Errorf("max-units 5, scrape %d: %d units kept open", scrape, len(u.open))
		}
		for dir := range u.open {
			if !u.reported[dir] {
				t.Errorf("%s kept open, not reported", dir)
			}
		}
	}
}

// A parent that stops delegating a controller: its children's files of it
// are closed and their series go.
func TestControllerDisabled(t *testing.T) {
	root := copyFixture(t)
	sys := filepath.Join(root, "sys/fs/cgroup/system.slice")
	u := newUnits(t, root, Options{})
	if _, err := samples(t, u); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(sys, "cgroup.subtree_control"), "cpu io pids\n")
	got, err := samples(t, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[unitKey("panther_unit_memory_bytes", "sshd.service")]; ok {
		t.Error("memory series of sshd.service after system.slice stopped delegating memory")
	}
	if _, ok := got[unitKey("panther_unit_tasks", "sshd.service")]; !ok {
		t.Error("tasks of sshd.service missing")
	}
	if f := u.open[filepath.Join(sys, "sshd.service")]; f == nil || f.fd[fMemCurrent] >= 0 || f.fd[fPids] < 0 {
		t.Errorf("sshd.service files after memory was disabled: %+v", f)
	}
}
