//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestServiceCapabilities runs the exporter the way the NixOS module and
// nixos/panther-exporter.service do: as an unprivileged user, no new
// privileges, with exactly the ambient capabilities of nixos/hardening.nix
// (setpriv stands in for systemd's DynamicUser). On a real Btrfs with a
// snapshot and a finished scrub, everything must be exported; without any
// one of the capabilities something must break, so each is needed.
func TestServiceCapabilities(t *testing.T) {
	requireRoot(t)
	setpriv := requireTool(t, "setpriv")
	out, err := exec.Command(requireTool(t, "nix-instantiate"), "--eval", "--strict", "--json", "../nixos/hardening.nix").Output()
	if err != nil {
		t.Fatalf("nix-instantiate --eval ../nixos/hardening.nix: %v", err)
	}
	var h struct{ AmbientCapabilities, CapabilityBoundingSet []string }
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatal(err)
	}
	if strings.Join(h.AmbientCapabilities, " ") != strings.Join(h.CapabilityBoundingSet, " ") {
		t.Fatalf("AmbientCapabilities %v != CapabilityBoundingSet %v", h.AmbientCapabilities, h.CapabilityBoundingSet)
	}

	b := newBtrfs(t) // mounted under a 0700 directory of root, like a mount below /root or /home/alice
	b.Subvolume("data")
	b.Snapshot("data", "data.snap")
	b.Scrub()

	// run starts the exporter as nobody with caps and returns a scrape
	// once the background subvolume walk has had its chance.
	run := func(t *testing.T, caps []string) (Families, *Process) {
		var set []string
		for _, c := range caps {
			set = append(set, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		}
		list := strings.Join(append([]string{"-all"}, set...), ",")
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := startProcess(t, nil, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
			"--inh-caps="+list, "--ambient-caps="+list, "--bounding-set="+list,
			binary(t), "--web.listen-address="+addr, "--log.level=debug",
			"--collector.disable-defaults", "--collector.btrfs", "--collector.system",
			"--collector.btrfs.subvolume-interval=0s")
		e := &Exporter{Process: p, Addr: addr, URL: "http://" + addr}
		var fams Families
		eventually(t, 20*time.Second, "the subvolume walk ran", func() error {
			if p.Exited() {
				t.Fatalf("exporter exited: %s", p.Output())
			}
			if _, err := e.Get("/metrics"); err != nil {
				return err
			}
			fams = e.Scrape(t)
			if _, ok := fams.Value("panther_btrfs_subvolume_scan_success", map[string]string{"uuid": b.UUID}); !ok {
				return fmt.Errorf("no panther_btrfs_subvolume_scan_success{uuid=%q}", b.UUID)
			}
			if v, _ := fams.Value("panther_btrfs_subvolume_scan_success", map[string]string{"uuid": b.UUID}); v != 1 && len(caps) == len(h.AmbientCapabilities) {
				return fmt.Errorf("panther_btrfs_subvolume_scan_success{uuid=%q} is %v", b.UUID, v)
			}
			return nil
		})
		return fams, p
	}
	uuid := map[string]string{"uuid": b.UUID}

	t.Run("all", func(t *testing.T) {
		fams, p := run(t, h.AmbientCapabilities)
		if v, _ := fams.Value("panther_btrfs_subvolume_scan_success", uuid); v != 1 {
			t.Errorf("subvolume scan failed with %v:\n%s", h.AmbientCapabilities, p.Output())
		}
		if v, ok := fams.Value("panther_btrfs_subvolumes", uuid); !ok || v < 2 {
			t.Errorf("panther_btrfs_subvolumes = %v, %v; want >= 2 (data, data.snap)", v, ok)
		}
		if _, ok := fams.Value("panther_btrfs_scrub_last_finished_timestamp_seconds", uuid); !ok {
			t.Errorf("no scrub result with %v (scrub.status is 0600 root):\n%s", h.AmbientCapabilities, p.Output())
		}
		if v, _ := fams.Value("panther_filesystem_size_bytes", map[string]string{"mountpoint": b.Mnt}); v <= 0 {
			t.Errorf("no panther_filesystem_size_bytes for %s", b.Mnt)
		}
	})
	for i, drop := range h.AmbientCapabilities {
		t.Run("without "+drop, func(t *testing.T) {
			rest := append(append([]string{}, h.AmbientCapabilities[:i]...), h.AmbientCapabilities[i+1:]...)
			_, p := run(t, rest)
			// The kernel's refusal, as the collector logs it for this
			// filesystem (the subvolume walk or the scrub status file).
			eventually(t, 20*time.Second, "a permission error for "+b.UUID, func() error {
				for _, line := range strings.Split(p.Output(), "\n") {
					if strings.Contains(line, b.UUID) || strings.Contains(line, b.Mnt) {
						if strings.Contains(line, "operation not permitted") || strings.Contains(line, "permission denied") {
							t.Logf("without %s: %s", drop, line)
							return nil
						}
					}
				}
				return fmt.Errorf("everything works without %s: drop it from nixos/hardening.nix", drop)
			})
		})
	}
}
