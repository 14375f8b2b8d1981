package nixos

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// sandboxCombos are the option combinations whose exposure README.md states.
var sandboxCombos = []struct {
	name                        string
	btrfsSubvolumes, diskHealth bool
}{
	{"neither", false, false},
	{"Btrfs subvolumes", true, false},
	{"disk health", false, true},
	{"both", true, true},
}

// evalSandbox evaluates sandbox.nix with the given options.
func evalSandbox(t *testing.T, btrfsSubvolumes, diskHealth bool) map[string]any {
	t.Helper()
	out, err := exec.Command(tool(t, "nix-instantiate"), "--eval", "--strict", "--json",
		"--arg", "btrfsSubvolumes", fmt.Sprint(btrfsSubvolumes), "--arg", "diskHealth", fmt.Sprint(diskHealth),
		"sandbox.nix").Output()
	if err != nil {
		t.Fatalf("nix-instantiate --eval sandbox.nix: %v", err)
	}
	var s map[string]any
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
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
		for _, v := range systemdValue(settings[k]) {
			switch v {
			case "true":
				v = "yes"
			case "false":
				v = "no"
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	return b.String()
}

// TestSandboxFollowsOptions checks what each option adds: disk health the
// devices and CAP_SYS_RAWIO + CAP_SYS_ADMIN, Btrfs subvolumes
// CAP_SYS_ADMIN, and nothing ever CAP_SYS_TIME; adjtimex stays allowed
// after the denials in every combination.
func TestSandboxFollowsOptions(t *testing.T) {
	for _, c := range sandboxCombos {
		s := evalSandbox(t, c.btrfsSubvolumes, c.diskHealth)
		caps := fmt.Sprint(s["CapabilityBoundingSet"])
		if fmt.Sprint(s["AmbientCapabilities"]) != caps {
			t.Errorf("%s: ambient %v != bounding %v", c.name, s["AmbientCapabilities"], caps)
		}
		has := func(cap string) bool { return strings.Contains(caps, cap) }
		if has("CAP_SYS_ADMIN") != (c.btrfsSubvolumes || c.diskHealth) {
			t.Errorf("%s: capabilities %s", c.name, caps)
		}
		if has("CAP_SYS_RAWIO") != c.diskHealth || has("CAP_SYS_TIME") || has("CAP_WAKE_ALARM") {
			t.Errorf("%s: capabilities %s", c.name, caps)
		}
		if _, ok := s["DeviceAllow"]; ok != c.diskHealth || s["PrivateDevices"] != !c.diskHealth {
			t.Errorf("%s: DeviceAllow %v, PrivateDevices %v", c.name, s["DeviceAllow"], s["PrivateDevices"])
		}
		filter := fmt.Sprint(s["SystemCallFilter"])
		if !strings.HasSuffix(filter, " adjtimex]") {
			t.Errorf("%s: SystemCallFilter %s does not end in adjtimex", c.name, filter)
		}
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for [^:]+: ([0-9.]+)`)

// TestSandboxExposure rates every combination with systemd-analyze security
// --offline=true and checks that README.md states each figure.
func TestSandboxExposure(t *testing.T) {
	sa := tool(t, "systemd-analyze")
	readme := read(t, "../README.md")
	dir := t.TempDir()
	var prev float64
	for i, c := range sandboxCombos {
		unit := filepath.Join(dir, "panther-exporter.service")
		if err := os.WriteFile(unit, []byte(renderUnit(evalSandbox(t, c.btrfsSubvolumes, c.diskHealth))), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "security", "--offline=true", "--threshold=100", "--no-pager", unit).Output()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v", c.name, err)
		}
		m := exposureLine.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("%s: no exposure level in:\n%s", c.name, out)
		}
		level, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("%s: exposure %s", c.name, m[1])
		if i > 0 && level < prev {
			t.Errorf("%s: exposure %v below the least privileged sandbox's %v", c.name, level, prev)
		}
		if i == 0 {
			prev = level
		}
		row := fmt.Sprintf("| %s | %s |", c.name, m[1])
		if !strings.Contains(readme, row) {
			t.Errorf("README.md should have the row %q", row)
		}
	}
}
