package power

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/samples"
)

func run(t *testing.T, sys string) (samples.Set, error) {
	t.Helper()
	return samples.Collect(t, &Power{cfg: collector.Config{SysPath: sys}})
}

func copySys(t *testing.T, fixture string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join("testdata", fixture, "sys")+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// ThinkPad T14s Gen 3 AMD on its charger, as `upower -i
// /org/freedesktop/UPower/devices/battery_BAT0` shows it: state charging,
// energy-full 52.31 Wh, energy-full-design 57 Wh, capacity (health)
// 91.77%, percentage 79%, charge-cycles 128; line_power_AC online yes; the
// USB-C port not supplying; a Logitech mouse battery (no percentage, only
// a level) that is not the host's.
func TestAMDLaptop(t *testing.T) {
	s, err := run(t, "testdata/amd-laptop/sys")
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 1, "panther_power_supply_online", "supply", "AC")
	s.Want(t, 0, "panther_power_supply_online", "supply", "ucsi-source-psy-USBC000:001")
	s.Absent(t, "panther_power_supply_online", "supply", "hidpp_battery_0")
	s.Want(t, 0.79, "panther_battery_capacity_ratio", "supply", "BAT0")
	s.Want(t, 52310000.0/57000000, "panther_battery_health_ratio", "supply", "BAT0")
	s.Want(t, 128, "panther_battery_cycles", "supply", "BAT0")
	s.Want(t, 1, "panther_battery_status", "supply", "BAT0", "state", "charging")
	s.Want(t, 0, "panther_battery_status", "supply", "BAT0", "state", "discharging")
	s.Absent(t, "panther_battery_capacity_ratio", "supply", "hidpp_battery_0")
	s.Absent(t, "panther_battery_health_ratio", "supply", "hidpp_battery_0")
	s.Want(t, 1, "panther_battery_status", "supply", "hidpp_battery_0", "state", "discharging")
}

// Dell XPS 13 9310 on battery; its firmware reports charge (µAh), not
// energy: `upower -i` says capacity 86.74% (5.82 of 6.71 Ah), 54%,
// charge-cycles 214, discharging; AC offline.
func TestIntelLaptop(t *testing.T) {
	s, err := run(t, "testdata/intel-laptop/sys")
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 0, "panther_power_supply_online", "supply", "AC")
	s.Want(t, 0.54, "panther_battery_capacity_ratio", "supply", "BAT0")
	s.Want(t, 5820000.0/6710000, "panther_battery_health_ratio", "supply", "BAT0")
	s.Want(t, 214, "panther_battery_cycles", "supply", "BAT0")
	s.Want(t, 1, "panther_battery_status", "supply", "BAT0", "state", "discharging")
}

func TestServer(t *testing.T) {
	s, err := run(t, "testdata/server/sys")
	if err != nil || len(s) != 0 {
		t.Errorf("server: %v, %v", s, err)
	}
	s, err = run(t, t.TempDir()) // no class/power_supply at all
	if err != nil || len(s) != 0 {
		t.Errorf("no power_supply class: %v, %v", s, err)
	}
}

// A bad file names its supply and file, never quotes it; the other
// supplies (and the battery's other figures, unless the file is its type)
// stay.
func TestBroken(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		remove              bool
		wantErr             string
		gone                []string
		keepBattery         bool
	}{
		{name: "garbled energy", file: "BAT0/energy_full", content: "secret", wantErr: "BAT0/energy_full: not a whole number",
			gone: []string{"panther_battery_health_ratio", "supply", "BAT0"}, keepBattery: true},
		{name: "odd status", file: "BAT0/status", content: "Exploding secret", wantErr: "BAT0/status: not a known battery status",
			gone: []string{"panther_battery_status", "supply", "BAT0"}, keepBattery: true},
		{name: "two-line capacity", file: "BAT0/capacity", content: "79\nsecret\n", wantErr: "BAT0/capacity: not a whole number",
			gone: []string{"panther_battery_capacity_ratio", "supply", "BAT0"}, keepBattery: true},
		{name: "no type", file: "BAT0/type", remove: true, wantErr: "BAT0: no type",
			gone: []string{"panther_battery_cycles", "supply", "BAT0"}},
		{name: "zero design", file: "BAT0/energy_full_design", content: "0\n",
			gone: []string{"panther_battery_health_ratio", "supply", "BAT0"}, keepBattery: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := copySys(t, "amd-laptop")
			p := filepath.Join(sys, "class/power_supply", tc.file)
			if tc.remove {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := run(t, sys)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("error quotes the file: %v", err)
			}
			s.Absent(t, tc.gone[0], tc.gone[1:]...)
			s.Want(t, 1, "panther_power_supply_online", "supply", "AC")
			if tc.keepBattery {
				s.Want(t, 128, "panther_battery_cycles", "supply", "BAT0")
			}
		})
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"52310000\n", "0", "-1", "", "79\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseNumber(b)
		if err != nil && v != 0 {
			t.Fatal("value with an error")
		}
	})
}

// FuzzReadSupply writes fuzzed type, status and energy files: never a
// panic, a health only from two numbers, a status only from the kernel's
// words.
func FuzzReadSupply(f *testing.F) {
	f.Add([]byte("Battery\n"), []byte("Charging\n"), []byte("52310000\n"), []byte("57000000\n"))
	f.Add([]byte("Mains"), []byte(""), []byte("x"), []byte("0"))
	f.Fuzz(func(t *testing.T, typ, st, full, design []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "type"), typ, 0o644)
		os.WriteFile(filepath.Join(dir, "status"), st, 0o644)
		os.WriteFile(filepath.Join(dir, "energy_full"), full, 0o644)
		os.WriteFile(filepath.Join(dir, "energy_full_design"), design, 0o644)
		s, _ := readSupply(dir)
		if s.Status != "" {
			found := false
			for _, v := range states {
				found = found || v == s.Status
			}
			if !found {
				t.Fatalf("status %q", s.Status)
			}
		}
		if s.Health != nil && (*s.Health != *s.Health) {
			t.Fatal("NaN health")
		}
	})
}
