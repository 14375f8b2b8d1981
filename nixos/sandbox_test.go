package nixos

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sandboxOpts are sandbox.nix's arguments.
type sandboxOpts struct {
	btrfsSubvolumes, btrfsScrub, diskHealth, podmanRootless, noTimex, ipFilter bool
	// podmanGroup adds what the module adds on a Podman host: the rootful
	// socket's group (SupplementaryGroups, outside sandbox.nix).
	podmanGroup bool
}

// sandboxCombos are the option combinations whose exposure README.md
// states, the least privileged first.
var sandboxCombos = []struct {
	name string
	o    sandboxOpts
}{
	{"minimal (clock metrics on)", sandboxOpts{}},
	{"minimal, address filter", sandboxOpts{ipFilter: true}},
	{"minimal, no clock metrics", sandboxOpts{noTimex: true}},
	{"minimal, no clock metrics, address filter", sandboxOpts{noTimex: true, ipFilter: true}},
	{"+ Btrfs scrub status", sandboxOpts{btrfsScrub: true}},
	{"+ Btrfs subvolumes", sandboxOpts{btrfsSubvolumes: true}},
	{"+ Btrfs subvolumes and scrub status (module default)", sandboxOpts{btrfsSubvolumes: true, btrfsScrub: true}},
	{"+ Podman (the socket's group)", sandboxOpts{podmanGroup: true}},
	{"+ rootless Podman", sandboxOpts{podmanRootless: true, podmanGroup: true}},
	{"+ disk health", sandboxOpts{diskHealth: true}},
	{"all", sandboxOpts{btrfsSubvolumes: true, btrfsScrub: true, diskHealth: true, podmanRootless: true, podmanGroup: true}},
}

// evalSandbox evaluates sandbox.nix with the given options.
func evalSandbox(t *testing.T, o sandboxOpts) map[string]any {
	t.Helper()
	args := []string{"--eval", "--strict", "--json",
		"--arg", "btrfsSubvolumes", fmt.Sprint(o.btrfsSubvolumes), "--arg", "btrfsScrub", fmt.Sprint(o.btrfsScrub),
		"--arg", "diskHealth", fmt.Sprint(o.diskHealth), "--arg", "podmanRootless", fmt.Sprint(o.podmanRootless),
		"--arg", "timex", fmt.Sprint(!o.noTimex)}
	if o.ipFilter {
		args = append(args, "--arg", "ipAddressAllow", `[ "192.0.2.10" "2001:db8::10" ]`)
	}
	out, err := exec.Command(tool(t, "nix-instantiate"), append(args, "sandbox.nix")...).Output()
	if err != nil {
		t.Fatalf("nix-instantiate --eval sandbox.nix: %v", err)
	}
	var s map[string]any
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	if o.podmanGroup {
		s["SupplementaryGroups"] = []any{"podman"}
	}
	return s
}

// renderUnit writes the [Service] section NixOS would write for settings.
func renderUnit(settings map[string]any) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("[Unit]\nDescription=panther-exporter\n\n[Service]\nExecStart=/usr/local/bin/panther-exporter\n")
	for _, k := range keys {
		writeUnitSetting(&b, k, settings[k])
	}
	return b.String()
}

// writeUnitSetting writes KEY=VALUE as NixOS's systemd library does, one
// line per list element; booleans as yes/no (systemd reads both spellings).
func writeUnitSetting(b *strings.Builder, key string, v any) {
	for _, s := range systemdValue(v) {
		switch s {
		case "true":
			s = "yes"
		case "false":
			s = "no"
		}
		fmt.Fprintf(b, "%s=%s\n", key, s)
	}
}

// TestSandboxFollowsOptions checks what each option adds: disk health the
// devices and CAP_SYS_RAWIO + CAP_SYS_ADMIN + CAP_DAC_READ_SEARCH, Btrfs
// subvolumes CAP_SYS_ADMIN, scrub status and rootless Podman
// CAP_DAC_READ_SEARCH, nothing ever CAP_SYS_TIME; a user namespace exactly
// when no capability is left; adjtimex allowed after the denials exactly
// when the clock metrics are on, ProtectClock exactly when not; the address
// filter only when asked for.
func TestSandboxFollowsOptions(t *testing.T) {
	for _, c := range sandboxCombos {
		o := c.o
		s := evalSandbox(t, o)
		caps := fmt.Sprint(s["CapabilityBoundingSet"])
		has := func(cap string) bool { return strings.Contains(caps, cap) }
		if has("CAP_SYS_ADMIN") != (o.btrfsSubvolumes || o.diskHealth) ||
			has("CAP_DAC_READ_SEARCH") != (o.btrfsScrub || o.podmanRootless || o.diskHealth) ||
			has("CAP_SYS_RAWIO") != o.diskHealth || has("CAP_SYS_TIME") || has("CAP_WAKE_ALARM") {
			t.Errorf("%s: capabilities %s", c.name, caps)
		}
		none := !(o.btrfsSubvolumes || o.btrfsScrub || o.diskHealth || o.podmanRootless)
		if none {
			if s["CapabilityBoundingSet"] != "" {
				t.Errorf("%s: CapabilityBoundingSet %v, want \"\" (the empty set)", c.name, s["CapabilityBoundingSet"])
			}
			if _, ok := s["AmbientCapabilities"]; ok {
				t.Errorf("%s: AmbientCapabilities %v without capabilities", c.name, s["AmbientCapabilities"])
			}
		} else if fmt.Sprint(s["AmbientCapabilities"]) != caps {
			t.Errorf("%s: ambient %v != bounding %v", c.name, s["AmbientCapabilities"], caps)
		}
		if s["PrivateUsers"] != none {
			t.Errorf("%s: PrivateUsers %v", c.name, s["PrivateUsers"])
		}
		if s["ProtectProc"] != "invisible" {
			t.Errorf("%s: ProtectProc %v", c.name, s["ProtectProc"])
		}
		if _, ok := s["DeviceAllow"]; ok != o.diskHealth || s["PrivateDevices"] != !o.diskHealth {
			t.Errorf("%s: DeviceAllow %v, PrivateDevices %v", c.name, s["DeviceAllow"], s["PrivateDevices"])
		}
		filter := fmt.Sprint(s["SystemCallFilter"])
		if strings.HasSuffix(filter, " adjtimex]") == o.noTimex || s["ProtectClock"] != o.noTimex {
			t.Errorf("%s: SystemCallFilter %s, ProtectClock %v", c.name, filter, s["ProtectClock"])
		}
		if o.ipFilter {
			if s["IPAddressDeny"] != "any" || fmt.Sprint(s["IPAddressAllow"]) != "[localhost 192.0.2.10 2001:db8::10]" {
				t.Errorf("%s: IPAddressDeny %v, IPAddressAllow %v", c.name, s["IPAddressDeny"], s["IPAddressAllow"])
			}
		} else if _, ok := s["IPAddressDeny"]; ok {
			t.Errorf("%s: IPAddressDeny %v without an allow list", c.name, s["IPAddressDeny"])
		}
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for [^:]+: ([0-9.]+)`)

// TestSandboxExposure rates every combination with systemd-analyze security
// --offline=true and checks that README.md states each figure, so that a
// change that raises one fails here until the table says so; and that the
// least privileged sandbox meets the goal of 1.5 with the clock metrics on.
func TestSandboxExposure(t *testing.T) {
	sa := tool(t, "systemd-analyze")
	readme := read(t, "../README.md")
	dir := t.TempDir()
	var minimal float64
	for i, c := range sandboxCombos {
		unit := filepath.Join(dir, "panther-exporter.service")
		if err := os.WriteFile(unit, []byte(renderUnit(evalSandbox(t, c.o))), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sa, "security", "--offline=true", "--threshold=100", "--no-pager", unit)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", c.name, err, stderr.String())
		}
		m := exposureLine.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("%s: no exposure level in:\n%s", c.name, out)
		}
		level, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("%s: exposure %s", c.name, m[1])
		if i == 0 {
			minimal = level
			if level > 1.5 {
				t.Errorf("%s: exposure %v above the goal of 1.5:\n%s", c.name, level, out)
			}
		}
		if !c.o.noTimex && !c.o.ipFilter && level < minimal {
			t.Errorf("%s: exposure %v below the least privileged sandbox's %v", c.name, level, minimal)
		}
		row := fmt.Sprintf("| %s | %s |", c.name, m[1])
		if !strings.Contains(readme, row) {
			t.Errorf("README.md should have the row %q", row)
		}
	}
}

// TestModuleSandbox: the module hands its options to sandbox.nix and the
// matching flags to the binary. The default host (Btrfs subvolumes and
// scrub status on) keeps CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH; with both
// off, no clock metrics and an allow list, the service has no capability,
// its own user namespace, ProtectClock and the address filter.
func TestModuleSandbox(t *testing.T) {
	e := evalModules(t, `{ enable = true; }`, `{ enable = false; }`, false)
	if caps := fmt.Sprint(e.ServiceConfig["CapabilityBoundingSet"]); caps != "[CAP_DAC_READ_SEARCH CAP_SYS_ADMIN]" || e.ServiceConfig["PrivateUsers"] != false {
		t.Errorf("default host: CapabilityBoundingSet %s, PrivateUsers %v", caps, e.ServiceConfig["PrivateUsers"])
	}
	for _, f := range e.Argv {
		if strings.HasPrefix(f, "--no-collector.btrfs.") {
			t.Errorf("default host: %s", f)
		}
	}

	e = evalModules(t, `{ enable = true; btrfs.subvolumes = false; btrfs.scrubStatus = false;
		disabledCollectors = [ "timex" ]; ipAddressAllow = [ "192.0.2.1" ]; }`, `{ enable = false; }`, false)
	for _, f := range []string{"--no-collector.btrfs.subvolumes", "--no-collector.btrfs.scrub-status", "--no-collector.timex"} {
		if !slices.Contains(e.Argv, f) {
			t.Errorf("minimal host: no %s in %q", f, e.Argv)
		}
	}
	sc := e.ServiceConfig
	if sc["CapabilityBoundingSet"] != "" || sc["PrivateUsers"] != true || sc["ProtectClock"] != true ||
		sc["IPAddressDeny"] != "any" || fmt.Sprint(sc["IPAddressAllow"]) != "[localhost 192.0.2.1]" ||
		strings.Contains(fmt.Sprint(sc["SystemCallFilter"]), "adjtimex") {
		t.Errorf("minimal host: %v", sc)
	}

	e = evalModules(t, `{ enable = true; btrfs.subvolumes = false; btrfs.scrubStatus = false; podman.rootless = true; }`, `{ enable = false; }`, true)
	if caps := fmt.Sprint(e.ServiceConfig["CapabilityBoundingSet"]); caps != "[CAP_DAC_READ_SEARCH]" || e.ServiceConfig["PrivateUsers"] != false {
		t.Errorf("rootless Podman: CapabilityBoundingSet %s, PrivateUsers %v", caps, e.ServiceConfig["PrivateUsers"])
	}
}
