package nix

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchRoot copies the agree fixture's shape into a temp rootfs and fills
// its store up to entries paths.
func benchRoot(b *testing.B, entries int) string {
	b.Helper()
	root := b.TempDir()
	if out, err := copyTree(filepath.Join("testdata", "agree"), root); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	store := filepath.Join(root, "nix/store")
	have, _ := os.ReadDir(store)
	for i := len(have); i < entries; i++ {
		if err := os.Mkdir(filepath.Join(store, fmt.Sprintf("%032x-pkg-%d", i, i)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

func copyTree(src, dst string) ([]byte, error) {
	return exec.Command("cp", "-a", src+"/.", dst).CombinedOutput()
}

func benchUpdate(b *testing.B, n *Nix, cold bool) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		for range ch {
		}
	}()
	defer close(ch)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if cold {
			n.cache = storeCount{}
		}
		if err := n.Update(context.Background(), ch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate100kCold counts all 100,000 store entries on every run (the
// cache is dropped; the kernel's dentry cache stays warm).
func BenchmarkUpdate100kCold(b *testing.B) {
	benchUpdate(b, newNix(b, benchRoot(b, 100_000)), true)
}

// BenchmarkUpdate100kWarm is the steady state: the store's mtime has not
// changed, the count comes from the cache.
func BenchmarkUpdate100kWarm(b *testing.B) {
	n := newNix(b, benchRoot(b, 100_000))
	got, err := samples(b, n)
	if err != nil || got["panther_nix_store_paths"] != 100_000-2 {
		// .links and the lock file are in the listing but not counted.
		b.Fatalf("first count %v, %v", got["panther_nix_store_paths"], err)
	}
	benchUpdate(b, n, false)
}
