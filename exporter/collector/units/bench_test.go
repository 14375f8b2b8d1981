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

// BenchmarkUpdate300 is one warm scrape of 300 units: list, read every
// unit's files, build the samples. The target is under 5 ms.
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

// BenchmarkFloor300 reads the same files with nothing but open, read and
// close, one after another: the least any reader could spend. On a shared
// machine compare BenchmarkUpdate300 with it (a ratio), not with a clock.
func BenchmarkFloor300(b *testing.B) {
	root := bigTree(b, 300)
	u := newUnits(b, root, Options{})
	list, err := u.list()
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	for _, un := range list {
		for _, f := range []string{"cpu.stat", "memory.current", "memory.peak", "memory.max", "memory.swap.current", "memory.events",
			"io.stat", "pids.current", "cpu.pressure", "memory.pressure", "io.pressure"} {
			if _, err := os.Stat(filepath.Join(un.dir, f)); err == nil {
				files = append(files, filepath.Join(un.dir, f))
			}
		}
	}
	buf := make([]byte, 4096)
	b.ReportMetric(float64(len(files)), "files/op")
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

// BenchmarkGetppid is the cheapest system call, to tell how slow system
// calls are on the machine the other benchmarks ran on (a loaded VM's are
// tens of times slower than bare metal's).
func BenchmarkGetppid(b *testing.B) {
	for b.Loop() {
		syscall.Getppid()
	}
}
