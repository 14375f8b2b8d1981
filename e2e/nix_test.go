//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A NixOS-shaped rootfs with 100,000 store paths, scraped through the
// exporter by Prometheus; the expected figures come from find, stat, cat and
// a readlink run inside the root.
func TestNixCollector(t *testing.T) {
	serial(t)
	requireRoot(t)
	requireTool(t, "chroot")
	r := newNixRoot(t, 100_000)
	// Generation 2 was made at a known second.
	runCmd(t, "touch", "-h", "-d", "@1764000000", r.Path("nix/var/nix/profiles/system-2-link"))

	e := startExporter(t, "--collector.disable-defaults", "--collector.nix", "--path.rootfs="+r.Dir)
	p := startPrometheus(t, PromConfig{Targets: []string{e.Addr}})

	storeCount := func() int {
		out := runCmd(t, "sh", "-c", fmt.Sprintf(`find %q -mindepth 1 -maxdepth 1 ! -name '.*' ! -name '*.lock' | wc -l`, r.Path("nix/store")))
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := storeCount()
	if n != 100_000 {
		t.Fatalf("find counts %d store paths, the generator made 100000", n)
	}
	p.WaitForSeries(t, 60*time.Second, fmt.Sprintf(`panther_nix_store_paths == %d`, n))

	gens := strings.Count(runCmd(t, "ls", r.Path("nix/var/nix/profiles")), "system-")
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`panther_nixos_generations == %d`, gens))
	p.WaitForSeries(t, 30*time.Second, `panther_nixos_current_generation == 2`)
	mtime := strings.TrimSpace(runCmd(t, "stat", "-c", "%Y", r.Path("nix/var/nix/profiles/system-2-link")))
	p.WaitForSeries(t, 30*time.Second, `panther_nixos_generation_timestamp_seconds == `+mtime)

	for sys, path := range map[string]string{"current": r.Current, "booted": r.Booted} {
		v, err := os.ReadFile(r.Path(path + "/nixos-version"))
		if err != nil {
			t.Fatal(err)
		}
		p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`panther_nixos_version_info{system=%q, version=%q} == 1`, sys, string(v)))
	}

	// reboot_required per component is whether readlink -f inside the root
	// gives two paths.
	checkReboot := func() {
		t.Helper()
		for _, c := range []string{"kernel", "initrd", "kernel-modules"} {
			b, k := r.Readlink("/run/booted-system/"+c), r.Readlink("/run/current-system/"+c)
			want := 0
			if b != k {
				want = 1
			}
			p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`panther_nixos_reboot_required{component=%q} == %d`, c, want))
		}
	}
	checkReboot()
	if r.Readlink("/run/booted-system/kernel") == r.Readlink("/run/current-system/kernel") {
		t.Fatal("fixture: kernels should differ before the reboot")
	}

	// New store paths are counted once the directory's mtime moves.
	r.AddStorePaths(25)
	p.WaitForSeries(t, 30*time.Second, fmt.Sprintf(`panther_nix_store_paths == %d`, storeCount()))

	// After a reboot into the current system nothing is pending.
	r.Reboot()
	checkReboot()
	p.WaitForSeries(t, 30*time.Second, `max(panther_nixos_reboot_required) == 0`)
	p.WaitForSeries(t, 30*time.Second, `panther_scrape_collector_success{collector="nix"} == 1`)
}

// A host without Nix exports no nix metrics, is no failure, and says so
// once at debug level.
func TestNixCollectorNotNixOS(t *testing.T) {
	serial(t)
	root := t.TempDir()
	e := startExporter(t, "--collector.disable-defaults", "--collector.nix", "--path.rootfs="+root)
	for range 3 {
		fams := e.Scrape(t)
		for name := range fams {
			if strings.HasPrefix(name, "panther_nix") {
				t.Errorf("non-Nix host exports %s", name)
			}
		}
		if v, ok := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "nix"}); !ok || v != 1 {
			t.Errorf("nix collector success = %v (%v), want 1", v, ok)
		}
	}
	eventually(t, 10*time.Second, "debug line", func() error {
		if n := strings.Count(e.Output(), "not a Nix host"); n != 1 {
			return fmt.Errorf("logged %d times:\n%s", n, e.Output())
		}
		for _, l := range strings.Split(e.Output(), "\n") {
			if strings.Contains(l, "not a Nix host") && !strings.Contains(l, "level=DEBUG") {
				return fmt.Errorf("not at debug level: %s", l)
			}
		}
		return nil
	})
}
