package nix

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

// samples runs one Update through collectortest and returns its samples
// keyed by name{label="value",...}.
func samples(t testing.TB, n *Nix) (map[string]float64, error) {
	t.Helper()
	got := collectortest.Collect(t, n)
	return got.Flat(), got.Err
}

func newNix(t testing.TB, root string) *Nix {
	t.Helper()
	n, err := New(collector.Config{RootPath: root, Logger: slog.New(slog.DiscardHandler)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storeCountOf counts the fixture's store the plain way, for comparison.
func storeCountOf(t testing.TB, root string) float64 {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(root, "nix/store"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), ".lock") {
			n++
		}
	}
	return float64(n)
}

func linkMtime(t testing.TB, p string) float64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return float64(fi.ModTime().UnixNano()) / 1e9
}

func TestFixtureHosts(t *testing.T) {
	for _, c := range []struct {
		host                          string
		gen                           float64
		current, booted               string
		kernel, initrd, kernelModules float64
	}{
		{"agree", 3, "24.05.20240619.1c6d8e0", "24.05.20240619.1c6d8e0", 0, 0, 0},
		{"kernel", 4, "24.05.20240626.9f1e2c3", "24.05.20240619.1c6d8e0", 1, 0, 1},
		{"initrd", 4, "24.05.20240626.9f1e2c3", "24.05.20240619.1c6d8e0", 0, 1, 0},
	} {
		t.Run(c.host, func(t *testing.T) {
			root := filepath.Join("testdata", c.host)
			got, err := samples(t, newNix(t, root))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{
				"panther_nix_store_paths":                                                  storeCountOf(t, root),
				"panther_nixos_generations":                                                c.gen,
				"panther_nixos_current_generation":                                         c.gen,
				"panther_nixos_generation_timestamp_seconds":                               linkMtime(t, filepath.Join(root, fmt.Sprintf("nix/var/nix/profiles/system-%d-link", int(c.gen)))),
				`panther_nixos_version_info{system="current",version="` + c.current + `"}`: 1,
				`panther_nixos_version_info{system="booted",version="` + c.booted + `"}`:   1,
				`panther_nixos_reboot_required{component="kernel"}`:                        c.kernel,
				`panther_nixos_reboot_required{component="initrd"}`:                        c.initrd,
				`panther_nixos_reboot_required{component="kernel-modules"}`:                c.kernelModules,
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			// 11 store paths: 2 kernels, 2 module trees, 2 initrds, 4
			// packages, 1 .drv; 3 or 4 systems; .links and the lock left out.
			if s := got["panther_nix_store_paths"]; s < 14 || s > 15 {
				t.Errorf("store paths = %v, want 14 or 15", s)
			}
			for _, k := range []string{"panther_nix_store_filesystem_size_bytes", "panther_nix_store_filesystem_used_bytes", "panther_nix_store_filesystem_avail_bytes"} {
				if got[k] <= 0 {
					t.Errorf("%s = %v, want > 0", k, got[k])
				}
			}
			if len(got) != len(want)+3 {
				t.Errorf("got %d samples, want %d: %v", len(got), len(want)+3, got)
			}
		})
	}
}

func TestNotNixOS(t *testing.T) {
	got, err := samples(t, newNix(t, t.TempDir()))
	if err != nil || len(got) != 0 {
		t.Fatalf("empty root: %v, %v; want nothing and no error", got, err)
	}
	// Nix on another distribution: a store, user profiles, no NixOS.
	root := t.TempDir()
	for _, d := range []string{"nix/store/6n1r7cbwd94xy4dp0xn4zxqg69pk4ssm-glibc-2.39-52", "nix/var/nix/profiles"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Symlink("/nix/store/6n1r7cbwd94xy4dp0xn4zxqg69pk4ssm-glibc-2.39-52", filepath.Join(root, "nix/var/nix/profiles/default-1-link"))
	got, err = samples(t, newNix(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if got["panther_nix_store_paths"] != 1 {
		t.Errorf("store paths = %v, want 1", got["panther_nix_store_paths"])
	}
	for k := range got {
		if strings.HasPrefix(k, "panther_nixos_") {
			t.Errorf("non-NixOS host exports %s", k)
		}
	}
}

func TestDanglingCurrentSystem(t *testing.T) {
	got, err := samples(t, newNix(t, filepath.Join("testdata", "dangling")))
	if err == nil {
		t.Fatal("no error for a dangling /run/current-system")
	}
	for _, want := range []string{"testdata/dangling/run/current-system", "dangling symlink", "00000000000000000000000000000000-nixos-system-gone"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// What could be read still is.
	if _, ok := got["panther_nix_store_paths"]; !ok {
		t.Error("store count missing")
	}
	if got[`panther_nixos_version_info{system="booted",version="24.05.20240619.1c6d8e0"}`] != 1 {
		t.Errorf("booted version missing: %v", got)
	}
}

func TestDanglingKernelAndProfile(t *testing.T) {
	root := t.TempDir()
	sys := "/nix/store/vbx3y7l2mfjvlg4r8yls8j2dfkdrq5j3-nixos-system-panther"
	os.MkdirAll(filepath.Join(root, sys), 0o755)
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.MkdirAll(filepath.Join(root, "nix/var/nix/profiles"), 0o755)
	os.WriteFile(filepath.Join(root, sys, "nixos-version"), []byte("24.05"), 0o644)
	os.Symlink("/nix/store/gone-linux/bzImage", filepath.Join(root, sys, "kernel"))
	os.Symlink(sys, filepath.Join(root, "run/current-system"))
	os.Symlink(sys, filepath.Join(root, "run/booted-system"))
	os.Symlink("system-7-link", filepath.Join(root, "nix/var/nix/profiles/system"))
	_, err := samples(t, newNix(t, root))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{sys + "/kernel -> /nix/store/gone-linux/bzImage", "profiles/system -> system-7-link: dangling symlink"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestStoreNotADirectory(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "nix"), 0o755)
	os.WriteFile(filepath.Join(root, "nix/store"), nil, 0o644)
	_, err := samples(t, newNix(t, root))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "nix/store")) {
		t.Fatalf("error %v does not name the store", err)
	}
}

// The count is cached while the directory's mtime stays, and redone when it
// changes.
func TestStoreCountCache(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(root, "nix/store")
	os.MkdirAll(store, 0o755)
	for i := range 5 {
		os.Mkdir(filepath.Join(store, fmt.Sprintf("%032d-p", i)), 0o755)
	}
	n := newNix(t, root)
	got, _ := samples(t, n)
	if got["panther_nix_store_paths"] != 5 {
		t.Fatalf("count %v, want 5", got["panther_nix_store_paths"])
	}
	fi, _ := os.Stat(store)
	os.Mkdir(filepath.Join(store, "x-new"), 0o755)
	os.Chtimes(store, fi.ModTime(), fi.ModTime()) // as if nothing changed
	got, _ = samples(t, n)
	if got["panther_nix_store_paths"] != 5 {
		t.Fatalf("count %v, want the cached 5", got["panther_nix_store_paths"])
	}
	later := fi.ModTime().Add(time.Second)
	os.Chtimes(store, later, later)
	got, _ = samples(t, n)
	if got["panther_nix_store_paths"] != 6 {
		t.Fatalf("count %v, want 6 after the mtime changed", got["panther_nix_store_paths"])
	}
}

func TestGenerationNumber(t *testing.T) {
	for in, want := range map[string]int{"system-1-link": 1, "system-842-link": 842} {
		if g, ok := generationNumber(in); !ok || g != want {
			t.Errorf("%s: %d %v", in, g, ok)
		}
	}
	for _, bad := range []string{"system", "system-link", "system--link", "system-01-link", "system-x-link", "default-1-link", "system-1-link.tmp", "system--1-link"} {
		if _, ok := generationNumber(bad); ok {
			t.Errorf("%s parsed", bad)
		}
	}
}

// Links resolve inside the rootfs: an absolute target, or one climbing out
// with .., never leaves it.
func TestResolveStaysInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("fixture"), 0o644)
	os.Symlink("/etc/hostname", filepath.Join(root, "abs"))
	os.Symlink("../../../../etc/hostname", filepath.Join(root, "etc/rel"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	r := resolver{root: root}
	for _, p := range []string{"/abs", "/etc/rel"} {
		got, err := r.resolve(p)
		if err != nil || got != "/etc/hostname" {
			t.Errorf("%s -> %q, %v", p, got, err)
		}
	}
	if _, err := r.resolve("/loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("loop: %v", err)
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/nix/store/x", "../..", "a/../../b", "/", "", "self", "/link/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if strings.ContainsRune(target, 0) || target == "" {
			return
		}
		root := t.TempDir()
		if err := os.Symlink(target, filepath.Join(root, "link")); err != nil {
			return
		}
		got, err := (resolver{root: root}).resolve("/link/x")
		if err == nil && !strings.HasPrefix(filepath.Join(root, got), root) {
			t.Fatalf("resolved %q outside the root: %q", target, got)
		}
	})
}

func FuzzGenerationNumber(f *testing.F) {
	f.Add("system-12-link")
	f.Fuzz(func(t *testing.T, s string) {
		if g, ok := generationNumber(s); ok && fmt.Sprintf("system-%d-link", g) != s {
			t.Fatalf("%q parsed as %d", s, g)
		}
	})
}

// A profiles directory that is itself a link (an impermanence host keeps it
// on /persist) is followed inside the rootfs.
func TestProfilesDirIsALink(t *testing.T) {
	root := t.TempDir()
	sys := "/nix/store/vbx3y7l2mfjvlg4r8yls8j2dfkdrq5j3-nixos-system-panther"
	os.MkdirAll(filepath.Join(root, sys), 0o755)
	os.MkdirAll(filepath.Join(root, "persist/profiles"), 0o755)
	os.MkdirAll(filepath.Join(root, "nix/var/nix"), 0o755)
	os.Symlink("/persist/profiles", filepath.Join(root, "nix/var/nix/profiles"))
	os.Symlink(sys, filepath.Join(root, "persist/profiles/system-5-link"))
	os.Symlink("system-5-link", filepath.Join(root, "persist/profiles/system"))
	got, err := samples(t, newNix(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if got["panther_nixos_current_generation"] != 5 || got["panther_nixos_generations"] != 1 {
		t.Errorf("got %v", got)
	}
	if want := linkMtime(t, filepath.Join(root, "persist/profiles/system-5-link")); got["panther_nixos_generation_timestamp_seconds"] != want {
		t.Errorf("timestamp %v, want %v", got["panther_nixos_generation_timestamp_seconds"], want)
	}
}

// TestGolden pins what the collector exports of two fixture hosts, one
// whose booted and current systems agree and one that needs a reboot for
// its kernel; the store's statfs figures and the profile links' mtimes (set
// by the checkout) are left out.
func TestGolden(t *testing.T) {
	for _, host := range []string{"agree", "kernel"} {
		t.Run(host, func(t *testing.T) {
			got := collectortest.Collect(t, newNix(t, filepath.Join("testdata", host)))
			if got.Err != nil {
				t.Fatalf("Update: %v", got.Err)
			}
			got.Without(
				"panther_nix_store_filesystem_avail_bytes", "panther_nix_store_filesystem_size_bytes",
				"panther_nix_store_filesystem_used_bytes", "panther_nixos_generation_timestamp_seconds",
			).Golden(t, filepath.Join("testdata", host+".prom"))
		})
	}
}
