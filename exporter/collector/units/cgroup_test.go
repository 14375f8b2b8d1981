package units

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pantheros/monitoring/internal/testenv"
)

// cgroup2Mount returns where a cgroup v2 hierarchy is mounted: at
// /sys/fs/cgroup on a v2 host, at /sys/fs/cgroup/unified on a hybrid one
// (the development machines).
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	const cgroup2Magic = 0x63677270
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st syscall.Statfs_t
		if syscall.Statfs(p, &st) == nil && st.Type == cgroup2Magic {
			return p
		}
	}
	testenv.Require(t, false, "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	return ""
}

// until polls cond until it holds or the deadline passes.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}

// What the collector relies on, on real cgroup (kernfs) files: a file kept
// open and read again with pread at offset 0 gives the current content; a
// file of a removed cgroup fails with an error removed() recognises. And
// the collector itself, run on a real cgroup tree: a unit's figures change
// while its files stay open, a unit restarted into a new cgroup of the same
// name is read afresh, and one removed is left out without an error.
//
// The tree is made in the cgroup v2 hierarchy (on a hybrid host it has no
// controllers: cpu.stat and the *.pressure files only), which needs root.
func TestRealCgroupFiles(t *testing.T) {
	testenv.Root(t)
	mount := cgroup2Mount(t)
	base, err := os.MkdirTemp(mount, "panther-units-test-")
	if err != nil {
		t.Fatal(err)
	}
	slice := filepath.Join(base, "system.slice")
	svc := filepath.Join(slice, "probe.service")
	for _, d := range []string{slice, svc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{svc, slice, base} {
			if err := syscall.Rmdir(d); err != nil && err != syscall.ENOENT {
				t.Errorf("rmdir %s: %v", d, err)
			}
		}
	})
	// The collector's view: <tmp>/sys/fs/cgroup is the test's tree.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys/fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(root, "sys/fs/cgroup")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc", filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	u := newUnits(t, root, Options{})
	key := filepath.Join(root, "sys/fs/cgroup/system.slice/probe.service") // in u.open
	cpuKey := unitKey("panther_unit_cpu_seconds_total", "probe.service")
	scrape := func() map[string]float64 {
		t.Helper()
		got, err := samples(t, u)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	events, err := syscall.Open(filepath.Join(svc, "cgroup.events"), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(events)
	buf := make([]byte, 8) // smaller than the file: preadWhole grows it
	populated := func() string {
		t.Helper()
		b, err := preadWhole(events, &buf)
		if err != nil {
			t.Fatalf("pread cgroup.events: %v", err)
		}
		line, _, _ := bytes.Cut(b, []byte{'\n'})
		return string(line)
	}
	if p := populated(); p != "populated 0" {
		t.Fatalf("new cgroup: %q, want populated 0", p)
	}
	if got := scrape(); got[cpuKey] != 0 {
		t.Fatalf("probe.service CPU %v before anything ran in it (present: %v)", got[cpuKey], len(got))
	}
	files := u.open[key]
	if files == nil || files.fd[fCPUStat] < 0 {
		t.Fatalf("probe.service's cpu.stat not kept open: %+v", files)
	}
	cpuFD := files.fd[fCPUStat]

	// A busy process moved in: the same open files show it.
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { busy.Wait(); close(exited) }()
	stop := func() {
		busy.Process.Kill()
		<-exited
	}
	defer stop()
	if err := os.WriteFile(filepath.Join(svc, "cgroup.procs"), []byte(strconv.Itoa(busy.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	until(t, "cgroup.events read again at offset 0 says populated 1", func() bool { return populated() == "populated 1" })
	until(t, "probe.service CPU above 10 ms through its open cpu.stat", func() bool { return scrape()[cpuKey] > 0.01 })
	if u.open[key] != files || files.fd[fCPUStat] != cpuFD {
		t.Error("probe.service's files were reopened; want them read through the files kept open")
	}
	stop()
	until(t, "populated 0 after the process exited", func() bool { return populated() == "populated 0" })

	// Restarted: the cgroup is removed and made again under the same name.
	if err := syscall.Rmdir(svc); err != nil {
		t.Fatal(err)
	}
	if _, err := preadWhole(events, &buf); !removed(err) {
		t.Fatalf("pread of a removed cgroup's file: %v, want an error removed() recognises (ENODEV)", err)
	} else {
		t.Logf("pread of a removed cgroup's file: %v", err)
	}
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	if v, ok := scrape()[cpuKey]; !ok || v != 0 {
		t.Errorf("restarted probe.service: CPU %v (present %v), want 0 from its new cgroup", v, ok)
	}
	if u.open[key] == nil || u.open[key] == files {
		t.Error("restarted probe.service: its files were not reopened")
	}

	// Stopped: the cgroup is gone. Read through files opened before (as
	// when it goes between listing and reading), the unit is gone, without
	// an error; the next scrape leaves it out.
	open, vanished := openUnit(svc, controllers{}, time.Now())
	if vanished {
		t.Fatal("probe.service vanished early")
	}
	if err := syscall.Rmdir(svc); err != nil {
		t.Fatal(err)
	}
	if s, f := readOne(unit{name: "probe.service", dir: svc}, open, &buf, time.Now()); !s.gone || s.err != nil || f != nil {
		t.Errorf("read of a removed cgroup through its open files: gone %v, err %v, files %v", s.gone, s.err, f)
	}
	if got := scrape(); len(reported(got)) != 0 {
		t.Errorf("units reported after probe.service's cgroup was removed: %v", reported(got))
	}
	if u.open[key] != nil {
		t.Error("removed probe.service's files still open")
	}
}
