//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

// TestServiceCapabilities runs the exporter the way the NixOS module and
// nixos/panther-exporter.service do: as an unprivileged user, no new
// privileges, with exactly the ambient capabilities of nixos/sandbox.nix with Btrfs
// subvolume metrics on (setpriv stands in for systemd's DynamicUser). On a real Btrfs with a
// snapshot and a finished scrub, everything must be exported; without any
// one of the capabilities something must break, so each is needed.
func TestServiceCapabilities(t *testing.T) {
	serial(t)
	requireRoot(t)
	setpriv := requireTool(t, "setpriv")
	// The sandbox with Btrfs subvolume metrics and scrub status on (the
	// module's btrfs.subvolumes and btrfs.scrubStatus, its defaults):
	// CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH.
	out := []byte(runCmd(t, requireTool(t, "nix-instantiate"), "--eval", "--strict", "--json",
		"--arg", "btrfsSubvolumes", "true", "--arg", "btrfsScrub", "true", "../nixos/sandbox.nix"))
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

type sandboxSettings struct {
	AmbientCapabilities, SystemCallFilter, RestrictAddressFamilies []string
	PrivateUsers                                                   bool
	ProtectProc                                                    string
}

// hardeningNix evaluates ../nixos/hardening.nix, the least privileged sandbox.
func hardeningNix(t *testing.T) sandboxSettings {
	t.Helper()
	return evalNixSandbox(t, "../nixos/hardening.nix")
}

// sandboxNixBtrfs evaluates ../nixos/sandbox.nix with Btrfs subvolume
// metrics and scrub status on (the module's btrfs.subvolumes and
// btrfs.scrubStatus, its defaults).
func sandboxNixBtrfs(t *testing.T) sandboxSettings {
	t.Helper()
	return evalNixSandbox(t, "--arg", "btrfsSubvolumes", "true", "--arg", "btrfsScrub", "true", "../nixos/sandbox.nix")
}

func evalNixSandbox(t *testing.T, args ...string) (h sandboxSettings) {
	t.Helper()
	out := []byte(runCmd(t, requireTool(t, "nix-instantiate"), append([]string{"--eval", "--strict", "--json"}, args...)...))
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// syscallFilter expands a SystemCallFilter list with systemd-analyze
// syscall-filter into the set of allowed calls, as systemd applies it.
func syscallFilter(t *testing.T, filter []string) map[string]bool {
	t.Helper()
	sa := requireTool(t, "systemd-analyze")
	var expand func(group string, seen map[string]bool) []string
	expand = func(group string, seen map[string]bool) []string {
		out := []byte(runCmd(t, sa, "syscall-filter", "--no-pager", group))
		var calls []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.TrimSpace(line)
			switch {
			case f == "" || f == group || strings.HasPrefix(f, "#"):
			case strings.HasPrefix(f, "@"):
				if !seen[f] {
					seen[f] = true
					calls = append(calls, expand(f, seen)...)
				}
			default:
				calls = append(calls, f)
			}
		}
		return calls
	}
	allowed := map[string]bool{}
	for _, f := range filter {
		deny := strings.HasPrefix(f, "~")
		f = strings.TrimPrefix(f, "~")
		calls := []string{f}
		if strings.HasPrefix(f, "@") {
			calls = expand(f, map[string]bool{f: true})
		}
		for _, c := range calls {
			allowed[c] = !deny
		}
	}
	return allowed
}

// TestServiceSandboxFullStack runs every collector and the DogStatsD sink
// against real services (Btrfs, a Podman service with a container, a
// dbus-daemon with the fake systemd, statsd_exporter, a textfile) as the
// service would run: an unprivileged user with the socket's group and only
// hardening.nix's capabilities. It runs under strace, and every system call
// made after the exporter's execve (where systemd installs the filter) and
// every socket family must be allowed by hardening.nix.
func TestServiceSandboxFullStack(t *testing.T) {
	serial(t)
	requireRoot(t)
	setpriv := requireTool(t, "setpriv")
	strace := requireTool(t, "strace")
	h := sandboxNixBtrfs(t) // the subvolume walk is among the checks
	allowed := syscallFilter(t, h.SystemCallFilter)

	b := newBtrfs(t)
	b.Subvolume("data")
	b.Snapshot("data", "data.snap")
	b.Scrub()
	pod := startPodmanService(t, "sandbox")
	podmanImage(t, pod)
	pod.Run(t, "web", nil, "sleep", "1000")
	// The module's SupplementaryGroups: the socket belongs to a group the
	// service is in (SocketGroup=podman, SocketMode=0660).
	const podmanGID = 4242
	if err := os.Chown(pod.Path, 0, podmanGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pod.Path, 0o660); err != nil {
		t.Fatal(err)
	}
	bus := startDBus(t)
	startFakeSystemd(t, bus, fakesystemd.Server())
	rx := startStatsdReceiver(t, "udp")
	textfile := t.TempDir() // 0700 root, like a job's directory
	WriteTextfile(t, textfile, "sandbox.prom", "# HELP sandbox_job_ok A job ran.\n# TYPE sandbox_job_ok gauge\nsandbox_job_ok 1\n")

	var caps []string
	for _, c := range h.AmbientCapabilities {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	list := strings.Join(append([]string{"-all"}, caps...), ",")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	trace := filepath.Join(t.TempDir(), "strace.out")
	bin := binary(t)
	p := startProcess(t, nil, strace, "-f", "-qq", "-o", trace,
		setpriv, "--reuid=65534", "--regid=65534", fmt.Sprintf("--groups=%d", podmanGID), "--no-new-privs",
		"--inh-caps="+list, "--ambient-caps="+list, "--bounding-set="+list,
		bin, "--web.listen-address="+addr, "--log.level=debug",
		"--collector.podman.socket="+pod.Flag(),
		"--collector.boot.dbus-address="+bus.Address,
		"--collector.textfile.directory="+textfile,
		"--collector.btrfs.subvolume-interval=0s",
		"--datadog.address="+rx.Address, "--datadog.interval=1s")
	e := &Exporter{Process: p, Addr: addr, URL: "http://" + addr}

	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
	}{
		{"panther_podman_up", map[string]string{"socket": pod.Name}, func(v float64) bool { return v == 1 }},
		{"panther_podman_containers", map[string]string{"socket": pod.Name, "state": "running"}, func(v float64) bool { return v == 1 }},
		{"panther_boot_stage_duration_seconds", map[string]string{"stage": "total"}, func(v float64) bool { return v > 0 }},
		{"panther_btrfs_subvolume_scan_success", map[string]string{"uuid": b.UUID}, func(v float64) bool { return v == 1 }},
		{"panther_btrfs_scrub_last_finished_timestamp_seconds", map[string]string{"uuid": b.UUID}, func(v float64) bool { return v > 0 }},
		{"sandbox_job_ok", nil, func(v float64) bool { return v == 1 }},
		{"panther_cpus", nil, func(v float64) bool { return v > 0 }},
	}
	eventually(t, 60*time.Second, "every collector works in the sandbox", func() error {
		if p.Exited() {
			t.Fatalf("exporter exited: %s", p.Output())
		}
		if _, err := e.Get("/metrics"); err != nil {
			return err
		}
		fams := e.Scrape(t)
		for _, c := range checks {
			if v, ok := fams.Value(c.name, c.labels); !ok || !c.want(v) {
				return fmt.Errorf("%s%v = %v (present %v)", c.name, c.labels, v, ok)
			}
		}
		for _, col := range []string{"system", "btrfs", "podman", "boot", "nix", "textfile"} {
			if v, ok := fams.Value("panther_scrape_collector_success", map[string]string{"collector": col}); ok && v != 1 {
				return fmt.Errorf("collector %s fails", col)
			}
		}
		got, err := rx.scrape()
		if err != nil {
			return err
		}
		for name := range got {
			if strings.HasPrefix(name, "panther_") {
				return nil
			}
		}
		return fmt.Errorf("statsd_exporter has no panther metric yet")
	})

	// Stop the exporter (SIGTERM, so its shutdown is traced too).
	data := func() string {
		b, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	execRE := regexp.MustCompile(`(?m)^(\d+)\s+execve\("` + regexp.QuoteMeta(bin) + `".*= 0$`)
	m := execRE.FindStringSubmatchIndex(data())
	if m == nil {
		t.Fatalf("no execve of %s in the trace", bin)
	}
	all := data()
	pid, _ := strconv.Atoi(all[m[2]:m[3]])
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "exporter stops on SIGTERM", func() error {
		if !p.Exited() {
			return fmt.Errorf("still running")
		}
		return nil
	})
	all = data()
	after := all[m[1]:] // everything after the execve: under the filter
	calls := map[string]bool{}
	for _, c := range regexp.MustCompile(`(?m)^\d+\s+([a-z_0-9]+)\(`).FindAllStringSubmatch(after, -1) {
		calls[c[1]] = true
	}
	if len(calls) < 20 {
		t.Fatalf("only %d system calls after execve; strace output not understood:\n%.2000s", len(calls), after)
	}
	var denied []string
	for c := range calls {
		if !allowed[c] {
			denied = append(denied, c)
		}
	}
	sort.Strings(denied)
	if len(denied) > 0 {
		t.Errorf("system calls outside SystemCallFilter %v: %v", h.SystemCallFilter, denied)
	}
	families := map[string]bool{}
	for _, f := range h.RestrictAddressFamilies {
		families[f] = true
	}
	seen := map[string]bool{}
	for _, s := range regexp.MustCompile(`socket\((AF_[A-Z0-9]+)`).FindAllStringSubmatch(after, -1) {
		seen[s[1]] = true
		if !families[s[1]] {
			t.Errorf("socket family %s outside RestrictAddressFamilies %v", s[1], h.RestrictAddressFamilies)
		}
	}
	t.Logf("%d system calls, socket families %v", len(calls), seen)
}
