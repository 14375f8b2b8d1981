package nix

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/internal/testenv"
)

// needTool finds a tool of Debian's nix-bin; with CI=true its absence fails
// the test instead of skipping it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	return testenv.Tool(t, name)
}

// nixOut runs a Nix tool on the store under root and returns its stdout;
// stderr (Debian's nix warns about the missing nixbld group) is only shown
// on failure.
func nixOut(t *testing.T, root string, tool string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needTool(t, tool), append([]string{"--store", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, stderr.String())
	}
	return string(out)
}

// sizes sums `nix-store -q --size` of the given store paths.
func sizes(t *testing.T, root string, paths []string) float64 {
	t.Helper()
	var sum float64
	out := nixOut(t, root, "nix-store", append([]string{"-q", "--size"}, paths...)...)
	for _, l := range strings.Fields(out) {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil {
			t.Fatalf("nix-store -q --size: %q", l)
		}
		sum += v
	}
	return sum
}

// storeListing lists the store paths under root.
func storeListing(t *testing.T, root string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(root, "nix/store"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if isStorePath(e.Name()) {
			out = append(out, "/nix/store/"+e.Name())
		}
	}
	return out
}

// A real store made by Debian's nix-bin in a temporary root: the sizes come
// from its real database, the savings from its real .links, and the GC
// figures from the real output of nix-collect-garbage through the wrapper
// the NixOS module installs.
func TestRealStore(t *testing.T) {
	root := t.TempDir()
	src := t.TempDir()
	blob := make([]byte, 100000)
	rand.Read(blob)
	for name, b := range map[string][]byte{"a.bin": blob, "c.bin": blob, "b.txt": []byte("hello\n"),
		"big.txt": []byte(strings.Repeat("panther ", 8000))} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nixOut(t, root, "nix-store", "--add", filepath.Join(src, "a.bin"), filepath.Join(src, "c.bin"), filepath.Join(src, "b.txt"))
	// A system whose closure is three paths: system -> lib -> big. lib and
	// big come from builtins.toFile, the system directory is registered the
	// way NixOS images register theirs (nix-store --register-validity).
	expr := filepath.Join(src, "lib.nix")
	os.WriteFile(expr, []byte(`let big = builtins.toFile "big" (builtins.readFile ./big.txt);
in builtins.toFile "lib" "lib uses ${big}"`), 0o644)
	lib, err := strconv.Unquote(strings.TrimSpace(nixOut(t, root, "nix-instantiate", "--eval", "--read-write-mode", expr)))
	if err != nil {
		t.Fatal(err)
	}
	system := "/nix/store/f5zcpnmbr2gmws5ncmlcdajnbswg9d8l-nixos-system-panther-24.05"
	os.MkdirAll(filepath.Join(root, system), 0o755)
	os.WriteFile(filepath.Join(root, system, "nixos-version"), []byte("24.05.test\n"), 0o444)
	os.Symlink(lib, filepath.Join(root, system, "sw"))
	// --register-validity of Nix 2.8 stats the path outside a diverted store;
	// --load-db (the dump-db format NixOS images register with) takes the NAR
	// hash and size as nix-hash and nix-store --dump make them.
	hash := strings.TrimSpace(runOut(t, needTool(t, "nix-hash"), "--type", "sha256", filepath.Join(root, system)))
	nar := runOut(t, needTool(t, "nix-store"), "--dump", filepath.Join(root, system))
	reg := exec.Command(needTool(t, "nix-store"), "--store", root, "--load-db")
	reg.Stdin = strings.NewReader(fmt.Sprintf("%s\nsha256:%s\n%d\n\n1\n%s\n", system, hash, len(nar), lib))
	var regErr bytes.Buffer
	reg.Stderr = &regErr
	if _, err := reg.Output(); err != nil {
		t.Fatalf("nix-store --load-db: %v\n%s", err, regErr.String())
	}
	for _, d := range []string{"run", "nix/var/nix/gcroots"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for _, l := range []string{"run/current-system", "run/booted-system", "nix/var/nix/gcroots/current-system"} {
		os.Symlink(system, filepath.Join(root, l))
	}

	state := "/var/lib/panther/nix-gc-last-run"
	n, err := New(newNix(t, root).cfgFor(), Options{GCStateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	scrape := func() map[string]float64 {
		t.Helper()
		n.store.refresh()
		got, err := samples(t, n)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := scrape()
	all := storeListing(t, root)
	if len(all) != 6 {
		t.Fatalf("store holds %v", all)
	}
	if want := sizes(t, root, all); got["panther_nix_store_size_bytes"] != want {
		t.Errorf("store size %v, nix-store -q --size sums to %v", got["panther_nix_store_size_bytes"], want)
	}
	closure := strings.Fields(nixOut(t, root, "nix-store", "-qR", system))
	if len(closure) != 3 {
		t.Fatalf("closure %v", closure)
	}
	if want := sizes(t, root, closure); got["panther_nixos_system_closure_bytes"] != want || got["panther_nixos_system_closure_paths"] != 3 {
		t.Errorf("closure %v bytes in %v paths, nix-store -qR and -q --size say %v in 3",
			got["panther_nixos_system_closure_bytes"], got["panther_nixos_system_closure_paths"], want)
	}
	if got["panther_nix_store_optimise_saved_bytes"] != 0 {
		t.Errorf("saved %v before any optimise", got["panther_nix_store_optimise_saved_bytes"])
	}
	if _, ok := got["panther_nix_gc_last_run_timestamp_seconds"]; ok {
		t.Error("GC figures before any GC ran")
	}

	// nix-store --optimise links a.bin and c.bin (its report goes to stderr,
	// which tests do not parse): one copy of the blob is saved.
	nixOut(t, root, "nix-store", "--optimise")
	n.store.optEvery = 0
	got = scrape()
	if s := got["panther_nix_store_optimise_saved_bytes"]; s != float64(len(blob)) {
		t.Errorf("saved %v bytes, want %d (two identical files linked)", s, len(blob))
	}

	// GC through the wrapper: a.bin, c.bin and b.txt are garbage.
	gcrun := func() (stdout string) {
		t.Helper()
		cmd := exec.Command("bash", "../../../nixos/panther-nix-gc.sh", filepath.Join(root, state),
			needTool(t, "nix-collect-garbage"), "--store", root)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("panther-nix-gc: %v\n%s", err, stderr.String())
		}
		return string(out)
	}
	before := time.Now().Unix()
	out := gcrun()
	got = scrape()
	var deleted int
	var mib float64
	if _, err := fmtSscanf(lastLine(out), "%d store paths deleted, %f MiB freed", &deleted, &mib); err != nil {
		t.Fatalf("nix-collect-garbage printed %q", out)
	}
	if after := storeListing(t, root); len(all)-len(after) != 3 || deleted != 3 {
		t.Errorf("store went from %d to %d paths; nix says %d deleted", len(all), len(after), deleted)
	}
	if got["panther_nix_gc_last_deleted_paths"] != 3 || got["panther_nix_gc_last_freed_bytes"] != mib*(1<<20) || mib == 0 {
		t.Errorf("gc deleted %v freed %v; nix printed %q", got["panther_nix_gc_last_deleted_paths"], got["panther_nix_gc_last_freed_bytes"], out)
	}
	if ts := got["panther_nix_gc_last_run_timestamp_seconds"]; ts < float64(before) || ts > float64(time.Now().Unix()) || got["panther_nix_gc_last_exit_status"] != 0 {
		t.Errorf("gc ran at %v exit %v", ts, got["panther_nix_gc_last_exit_status"])
	}
	if want := sizes(t, root, storeListing(t, root)); got["panther_nix_store_size_bytes"] != want {
		t.Errorf("store size after GC %v, want %v", got["panther_nix_store_size_bytes"], want)
	}
	// A second GC finds nothing: the case the NixGCFreedNothing alert is about.
	gcrun()
	got = scrape()
	if got["panther_nix_gc_last_deleted_paths"] != 0 || got["panther_nix_gc_last_freed_bytes"] != 0 {
		t.Errorf("second gc: deleted %v freed %v", got["panther_nix_gc_last_deleted_paths"], got["panther_nix_gc_last_freed_bytes"])
	}
}

// The worker runs in the background from the first scrape on: the figures
// appear without a synchronous refresh.
func TestStoreWorkerBackground(t *testing.T) {
	root := t.TempDir()
	nixOut(t, root, "nix-store", "--add", "nix_test.go")
	n := newNix(t, root)
	samples(t, n) // starts the worker
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.store.wait(ctx)
	got, err := samples(t, n)
	if err != nil {
		t.Fatal(err)
	}
	if got["panther_nix_store_size_bytes"] <= 0 {
		t.Errorf("store size %v", got["panther_nix_store_size_bytes"])
	}
}

// runOut runs a command and returns its stdout.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
