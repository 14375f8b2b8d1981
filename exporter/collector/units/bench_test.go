package units

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// bigTree copies the fixture and adds services under system.slice (copies
// of nix-daemon.service, every file) until there are n units.
func bigTree(b *testing.B, n int) string {
	b.Helper()
	root := b.TempDir()
	if err := os.CopyFS(root, os.DirFS(fixture)); err != nil {
		b.Fatal(err)
	}
	u := newUnits(b, root, Options{MaxUnits: 10000})
	list, err := u.list()
	if err != nil {
		b.Fatal(err)
	}
	src := os.DirFS(filepath.Join(root, "sys/fs/cgroup/system.slice/nix-daemon.service"))
	for i := len(list); i < n; i++ {
		if err := os.CopyFS(filepath.Join(root, fmt.Sprintf("sys/fs/cgroup/system.slice/bench-%03d.service", i)), src); err != nil {
			b.Fatal(err)
		}
	}
	if list, _ = u.list(); len(list) != n {
		b.Fatalf("%d units, want %d", len(list), n)
	}
	return root
}

// BenchmarkUpdate300 is one warm scrape of 300 units (after a first one
// that opened their files): list, pread every unit's open files, build the
// samples. The target is under 5 ms.
func BenchmarkUpdate300(b *testing.B) {
	root := bigTree(b, 300)
	u := newUnits(b, root, Options{})
	ch := make(chan prometheus.Metric, 8192)
	drain := func() {
		for len(ch) > 0 {
			<-ch
		}
	}
	if err := u.Update(context.Background(), ch); err != nil { // warm-up
		b.Fatal(err)
	}
	drain()
	b.ReportAllocs()
	for b.Loop() {
		if err := u.Update(context.Background(), ch); err != nil {
			b.Fatal(err)
		}
		drain()
	}
}

// floorFiles lists the files of the 300 units that Update reads.
func floorFiles(b *testing.B) []string {
	root := bigTree(b, 300)
	u := newUnits(b, root, Options{})
	list, err := u.list()
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	for _, un := range list {
		for i, f := range fileNames {
			if !un.controllers.has(i) {
				continue
			}
			if _, err := os.Stat(filepath.Join(un.dir, f)); err == nil {
				files = append(files, filepath.Join(un.dir, f))
			}
		}
	}
	b.ReportMetric(float64(len(files)), "files/op")
	return files
}

// BenchmarkUpdate300Cold is the first scrape of a fresh collector on the
// same tree: every unit's files are opened and read with pread (and closed
// after each op, outside the timing).
func BenchmarkUpdate300Cold(b *testing.B) {
	root := bigTree(b, 300)
	ch := make(chan prometheus.Metric, 8192)
	b.ReportAllocs()
	for b.Loop() {
		u := newUnits(b, root, Options{})
		if err := u.Update(context.Background(), ch); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for len(ch) > 0 {
			<-ch
		}
		u.closeAll()
		b.StartTimer()
	}
}

// BenchmarkFloor300 reads the same files as a cold scrape with nothing but
// open, read and close, one after another (the old way of reading them).
// On a shared machine compare BenchmarkUpdate300 with it and with
// BenchmarkFloorPread300 (ratios), not with a clock.
func BenchmarkFloor300(b *testing.B) {
	files := floorFiles(b)
	buf := make([]byte, 4096)
	for b.Loop() {
		for _, f := range files {
			fd, err := syscall.Open(f, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			syscall.Read(fd, buf)
			syscall.Close(fd)
		}
	}
}

// BenchmarkFloorPread300 reads the same files kept open, one pread at
// offset 0 each, one after another: what a warm scrape cannot go below on
// one core.
func BenchmarkFloorPread300(b *testing.B) {
	files := floorFiles(b)
	fds := make([]int, len(files))
	for i, f := range files {
		fd, err := syscall.Open(f, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds[i] = fd
		defer syscall.Close(fd)
	}
	buf := make([]byte, 4096)
	for b.Loop() {
		for _, fd := range fds {
			if _, err := syscall.Pread(fd, buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGetppid is the cheapest system call, to tell how slow system
// calls are on the machine the other benchmarks ran on (a loaded VM's are
// tens of times slower than bare metal's).
func BenchmarkGetppid(b *testing.B) {
	for b.Loop() {
		syscall.Getppid()
	}
}

// BenchmarkGetppidParallel is the same call from every core at once: its
// ns/op against BenchmarkGetppid's tells whether system calls on this
// machine scale with the cores (the readers of Update count on it).
func BenchmarkGetppidParallel(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			syscall.Getppid()
		}
	})
}

// BenchmarkFloorPreadOne is one pread at offset 0 of a file kept open: a
// regular file of the fixture (what the benchmarks above read) against real
// cgroup v2 files, which the kernel generates on each read (needs root to
// make a cgroup; on a hybrid host only cpu.stat and *.pressure exist).
func BenchmarkFloorPreadOne(b *testing.B) {
	bench := func(b *testing.B, p string) {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			b.Skip(err)
		}
		defer syscall.Close(fd)
		buf := make([]byte, 4096)
		for b.Loop() {
			if _, err := syscall.Pread(fd, buf, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("fixture-cpu.stat", func(b *testing.B) {
		bench(b, filepath.Join(fixture, "sys/fs/cgroup/system.slice/nix-daemon.service/cpu.stat"))
	})
	if os.Geteuid() != 0 {
		b.Skip("making a cgroup needs root")
	}
	mount := ""
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st syscall.Statfs_t
		if syscall.Statfs(p, &st) == nil && st.Type == 0x63677270 {
			mount = p
			break
		}
	}
	if mount == "" {
		b.Skip("no cgroup v2 hierarchy")
	}
	dir, err := os.MkdirTemp(mount, "panther-units-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Rmdir(dir)
	for _, f := range []string{"cpu.stat", "cpu.pressure", "memory.current", "io.stat", "pids.current"} {
		b.Run("cgroup-"+f, func(b *testing.B) { bench(b, filepath.Join(dir, f)) })
	}
}
