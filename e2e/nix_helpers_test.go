//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// NixRoot is a generated rootfs shaped like a NixOS host, for
// --path.rootfs: a /nix/store of many paths, two system closures (the booted
// generation 1 and the current generation 2, whose kernel and kernel modules
// differ but whose initrd is the same), their system-N-link profiles and
// /run/booted-system and /run/current-system. Every link points at an
// absolute /nix/store path, as on a real host. /bin/busybox is copied in so
// that tests can ask a real readlink inside the root (chroot).
type NixRoot struct {
	Dir             string
	Booted, Current string // store paths (host namespace) of the two systems
	t               testing.TB
	rnd             *rand.Rand
}

const nixBase32 = "0123456789abcdfghijklmnpqrsvwxyz"

// newNixRoot builds the tree with storePaths entries in /nix/store (the
// systems and their parts included).
func newNixRoot(t testing.TB, storePaths int) *NixRoot {
	t.Helper()
	r := &NixRoot{Dir: t.TempDir(), t: t, rnd: rand.New(rand.NewPCG(5, 12))}
	for _, d := range []string{"nix/store", "nix/var/nix/profiles", "run", "bin"} {
		r.mkdir(d)
	}
	kernel1, kernel2 := r.storePath("linux-6.6.30"), r.storePath("linux-6.6.32")
	mods1, mods2 := r.storePath("linux-6.6.30-modules"), r.storePath("linux-6.6.32-modules")
	initrd := r.storePath("initrd-linux-6.6")
	r.write(kernel1+"/bzImage", "k1")
	r.write(kernel2+"/bzImage", "k2")
	r.write(mods1+"/lib/modules/6.6.30/modules.dep", "")
	r.write(mods2+"/lib/modules/6.6.32/modules.dep", "")
	r.write(initrd+"/initrd", "i")
	r.Booted = r.system("24.05.20240619.1c6d8e0", kernel1, mods1, initrd)
	r.Current = r.system("24.05.20240626.9f1e2c3", kernel2, mods2, initrd)
	r.link(r.Booted, "nix/var/nix/profiles/system-1-link")
	r.link(r.Current, "nix/var/nix/profiles/system-2-link")
	r.link("system-2-link", "nix/var/nix/profiles/system")
	r.link(r.Booted, "run/booted-system")
	r.link(r.Current, "run/current-system")
	have, _ := os.ReadDir(filepath.Join(r.Dir, "nix/store"))
	r.AddStorePaths(storePaths - len(have))
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		require(t, false, "busybox-static: %v", err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// storePath invents a store path name (host namespace) and creates it.
func (r *NixRoot) storePath(name string) string {
	var h strings.Builder
	for range 32 {
		h.WriteByte(nixBase32[r.rnd.IntN(len(nixBase32))])
	}
	p := "/nix/store/" + h.String() + "-" + name
	r.mkdir(p)
	return p
}

// AddStorePaths adds n store paths, as a build or download does.
func (r *NixRoot) AddStorePaths(n int) {
	for i := range n {
		r.storePath(fmt.Sprintf("pkg-%d", i))
	}
}

func (r *NixRoot) system(version, kernel, modules, initrd string) string {
	s := r.storePath("nixos-system-panther-" + version)
	r.write(s+"/nixos-version", version)
	r.write(s+"/system", "x86_64-linux")
	r.link(kernel+"/bzImage", s+"/kernel")
	r.link(modules, s+"/kernel-modules")
	r.link(initrd+"/initrd", s+"/initrd")
	return s
}

// Reboot makes the booted system the current one, as a reboot does.
func (r *NixRoot) Reboot() {
	p := filepath.Join(r.Dir, "run/booted-system")
	os.Remove(p)
	r.link(r.Current, "run/booted-system")
}

// Path is a path inside the root.
func (r *NixRoot) Path(p string) string { return filepath.Join(r.Dir, p) }

// Readlink resolves p inside the root with busybox readlink -f (chroot).
func (r *NixRoot) Readlink(p string) string {
	r.t.Helper()
	return strings.TrimSpace(runCmd(r.t, "chroot", r.Dir, "/bin/busybox", "readlink", "-f", p))
}

func (r *NixRoot) mkdir(p string) {
	if err := os.MkdirAll(filepath.Join(r.Dir, p), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

func (r *NixRoot) write(p, content string) {
	r.mkdir(filepath.Dir(p))
	if err := os.WriteFile(filepath.Join(r.Dir, p), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *NixRoot) link(target, p string) {
	if err := os.Symlink(target, filepath.Join(r.Dir, p)); err != nil {
		r.t.Fatal(err)
	}
}
