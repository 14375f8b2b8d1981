package hwmon

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
	h, err := New(collector.Config{SysPath: sys})
	if err != nil {
		t.Fatal(err)
	}
	return samples.Collect(t, h)
}

// copySys copies a fixture to a temp dir that a test may break.
func copySys(t *testing.T, fixture string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join("testdata", fixture, "sys")+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// ThinkPad T14s Gen 3 AMD: what `sensors` shows (acpitz-acpi-0 temp1
// +46.0°C crit +128.0°C; k10temp-pci-00c3 Tctl +52.6°C; nvme-pci-0400
// Composite +38.9°C high +81.8°C crit +84.8°C; amdgpu-pci-0500 edge
// +45.0°C; thinkpad-isa-0000 CPU +52.0°C) and `cat
// /sys/class/thermal/thermal_zone0/{type,temp}`. No Intel throttle
// counters on AMD.
func TestAMDLaptop(t *testing.T) {
	s, err := run(t, "testdata/amd-laptop/sys")
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 46, "panther_hwmon_temperature_celsius", "chip", "acpitz", "sensor", "temp1")
	s.Want(t, 128, "panther_hwmon_temperature_critical_celsius", "chip", "acpitz", "sensor", "temp1")
	s.Want(t, 52.625, "panther_hwmon_temperature_celsius", "chip", "k10temp-0000:00:18.3", "sensor", "Tctl")
	s.Absent(t, "panther_hwmon_temperature_critical_celsius", "chip", "k10temp-0000:00:18.3")
	s.Want(t, 38.85, "panther_hwmon_temperature_celsius", "chip", "nvme-nvme0", "sensor", "Composite")
	s.Want(t, 81.85, "panther_hwmon_temperature_max_celsius", "chip", "nvme-nvme0", "sensor", "Composite")
	s.Want(t, 84.85, "panther_hwmon_temperature_critical_celsius", "chip", "nvme-nvme0", "sensor", "Composite")
	s.Want(t, 42.85, "panther_hwmon_temperature_celsius", "chip", "nvme-nvme0", "sensor", "Sensor 2")
	s.Want(t, 45, "panther_hwmon_temperature_celsius", "chip", "amdgpu-0000:05:00.0", "sensor", "edge")
	s.Want(t, 52, "panther_hwmon_temperature_celsius", "chip", "thinkpad-thinkpad_hwmon", "sensor", "temp1")
	s.Want(t, 0, "panther_hwmon_temperature_celsius", "chip", "thinkpad-thinkpad_hwmon", "sensor", "temp8")
	if n := len(s["panther_hwmon_temperature_celsius"]); n != 1+3+1+8+1 {
		t.Errorf("%d temperatures, want 14 (batteries and USB-C have none): %s", n, s.Series("panther_hwmon_temperature_celsius"))
	}
	s.Want(t, 46, "panther_thermal_zone_temperature_celsius", "sensor", "thermal_zone0", "type", "acpitz")
	s.Want(t, 128, "panther_thermal_zone_critical_celsius", "sensor", "thermal_zone0", "type", "acpitz")
	s.Absent(t, "panther_cpu_thermal_throttles_total")
}

// Dell XPS 13 9310: `sensors` (coretemp-isa-0000 Package id 0 +59.0°C
// high +100.0°C crit +100.0°C, Core 0..3; dell_smm-isa-0000 CPU +54.0°C),
// the six thermal zones, and the throttle counters of
// /sys/devices/system/cpu/cpu*/thermal_throttle: cores 0..3 report 17, 9,
// 23 and 4 (each on both of its threads), the package 61 (on all eight).
func TestIntelLaptop(t *testing.T) {
	s, err := run(t, "testdata/intel-laptop/sys")
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 59, "panther_hwmon_temperature_celsius", "chip", "coretemp-coretemp.0", "sensor", "Package id 0")
	s.Want(t, 100, "panther_hwmon_temperature_critical_celsius", "chip", "coretemp-coretemp.0", "sensor", "Package id 0")
	s.Want(t, 100, "panther_hwmon_temperature_max_celsius", "chip", "coretemp-coretemp.0", "sensor", "Core 3")
	s.Want(t, 56, "panther_hwmon_temperature_celsius", "chip", "coretemp-coretemp.0", "sensor", "Core 2")
	s.Want(t, 54, "panther_hwmon_temperature_celsius", "chip", "dell_smm-dell_smm_hwmon", "sensor", "CPU")
	s.Want(t, 35.85, "panther_hwmon_temperature_celsius", "chip", "nvme-nvme0", "sensor", "Composite")
	s.Want(t, 48, "panther_hwmon_temperature_celsius", "chip", "pch_tigerlake-0000:00:12.0", "sensor", "temp1")
	s.Want(t, 41, "panther_hwmon_temperature_celsius", "chip", "iwlwifi_1-0000:00:14.3", "sensor", "temp1")
	s.Want(t, 58, "panther_thermal_zone_temperature_celsius", "sensor", "thermal_zone2", "type", "TCPU")
	s.Want(t, 105, "panther_thermal_zone_critical_celsius", "sensor", "thermal_zone2", "type", "TCPU")
	s.Want(t, 105.05, "panther_thermal_zone_critical_celsius", "sensor", "thermal_zone1", "type", "SEN1")
	s.Want(t, 59, "panther_thermal_zone_temperature_celsius", "sensor", "thermal_zone4", "type", "x86_pkg_temp")
	s.Absent(t, "panther_thermal_zone_critical_celsius", "type", "x86_pkg_temp") // passive trips only
	if n := len(s["panther_thermal_zone_temperature_celsius"]); n != 6 {
		t.Errorf("%d zones, want 6", n)
	}
	s.Want(t, 17+9+23+4, "panther_cpu_thermal_throttles_total", "type", "core")
	s.Want(t, 61, "panther_cpu_thermal_throttles_total", "type", "package")
}

// A server (KVM guest) without hwmon, thermal zones or throttle counters:
// nothing to report, and that is no error.
func TestServerWithoutSensors(t *testing.T) {
	s, err := run(t, "testdata/server/sys")
	if err != nil {
		t.Fatal(err)
	}
	for name := range s {
		t.Errorf("unexpected %s: %s", name, s.Series(name))
	}
	// Not even the class directories (a container's /sys).
	sys := copySys(t, "server")
	os.RemoveAll(filepath.Join(sys, "class"))
	if _, err := run(t, sys); err != nil && !strings.Contains(err.Error(), "class/thermal") {
		t.Errorf("without /sys/class: %v", err)
	}
}

// Broken files: the error names the file, never quotes it, and every
// other chip, sensor and zone stays.
func TestBroken(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		remove              bool
		wantErr             string
		gone                []string // metric, label pairs...
	}{
		{name: "garbled input", file: "class/hwmon/hwmon2/temp3_input", content: "secret\n",
			wantErr: "hwmon2/temp3_input: not a whole number", gone: []string{"panther_hwmon_temperature_celsius", "sensor", "Core 1"}},
		{name: "garbled crit", file: "class/hwmon/hwmon2/temp1_crit", content: "1e9 secret",
			wantErr: "hwmon2/temp1_crit: not a whole number", gone: []string{"panther_hwmon_temperature_critical_celsius", "sensor", "Package id 0"}},
		{name: "odd name", file: "class/hwmon/hwmon5/name", content: "two\nlines\nsecret",
			wantErr: "hwmon5/name: not a chip name", gone: []string{"panther_hwmon_temperature_celsius", "chip", "pch_tigerlake-0000:00:12.0"}},
		{name: "garbled zone", file: "class/thermal/thermal_zone2/temp", content: "secret",
			wantErr: "thermal_zone2: unreadable zone", gone: []string{"panther_thermal_zone_temperature_celsius", "type", "TCPU"}},
		{name: "garbled trip", file: "class/thermal/thermal_zone5/trip_point_0_temp", content: "secret",
			wantErr: "thermal_zone5/trip_point_0_temp: not a whole number", gone: []string{"panther_thermal_zone_critical_celsius", "type", "acpitz"}},
		{name: "garbled throttle", file: "devices/system/cpu/cpu2/thermal_throttle/core_throttle_count", content: "secret",
			wantErr: "cpu2/thermal_throttle: unreadable counters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := copySys(t, "intel-laptop")
			p := filepath.Join(sys, tc.file)
			if tc.remove {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := run(t, sys)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes the file: %v", err)
			}
			if tc.gone != nil {
				s.Absent(t, tc.gone[0], tc.gone[1:]...)
			}
			// Everything else is still there.
			s.Want(t, 55, "panther_hwmon_temperature_celsius", "chip", "coretemp-coretemp.0", "sensor", "Core 3")
			s.Want(t, 35.85, "panther_hwmon_temperature_celsius", "chip", "nvme-nvme0", "sensor", "Composite")
			s.Want(t, 59, "panther_thermal_zone_temperature_celsius", "sensor", "thermal_zone4")
			if tc.name != "garbled throttle" {
				s.Want(t, 61, "panther_cpu_thermal_throttles_total", "type", "package")
			}
		})
	}
}

// Two sensors with one label, two chips with one name and no device: both
// kept apart, none hidden.
func TestCollisions(t *testing.T) {
	sys := copySys(t, "intel-laptop")
	hw := filepath.Join(sys, "class/hwmon/hwmon2")
	if err := os.WriteFile(filepath.Join(hw, "temp3_label"), []byte("Core 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second acpitz without a device, as on hosts with two ACPI zones.
	dup := filepath.Join(sys, "devices/virtual/thermal/thermal_zone0/hwmon/hwmon9")
	if err := os.MkdirAll(dup, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dup, "name"), []byte("acpitz\n"), 0o644)
	os.WriteFile(filepath.Join(dup, "temp1_input"), []byte("31000\n"), 0o644)
	if err := os.Symlink("../../devices/virtual/thermal/thermal_zone0/hwmon/hwmon9", filepath.Join(sys, "class/hwmon/hwmon9")); err != nil {
		t.Fatal(err)
	}
	s, err := run(t, sys)
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 57, "panther_hwmon_temperature_celsius", "chip", "coretemp-coretemp.0", "sensor", "Core 0 (temp2)")
	s.Want(t, 59, "panther_hwmon_temperature_celsius", "chip", "coretemp-coretemp.0", "sensor", "Core 0 (temp3)")
	s.Want(t, 25, "panther_hwmon_temperature_celsius", "chip", "acpitz-0")
	s.Want(t, 31, "panther_hwmon_temperature_celsius", "chip", "acpitz-1")
}

func FuzzParseMilli(f *testing.F) {
	for _, s := range []string{"46000\n", "-273150\n", "65261850", "", "1e3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseMilli(b)
		if err != nil && v != 0 {
			t.Fatal("value with an error")
		}
		if err != nil && strings.Contains(err.Error(), string(b)) && len(b) > 3 {
			t.Fatal("error quotes the input")
		}
	})
}

// FuzzReadChip writes fuzzed name, label and input files into a chip
// directory: never a panic, never a sensor without a label, never an
// error that quotes them.
func FuzzReadChip(f *testing.F) {
	f.Add([]byte("coretemp\n"), []byte("Core 0\n"), []byte("57000\n"))
	f.Add([]byte(""), []byte(""), []byte("x"))
	f.Add([]byte("a\nb"), []byte("\x00"), []byte("-1"))
	f.Fuzz(func(t *testing.T, name, label, input []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "name"), name, 0o644)
		os.WriteFile(filepath.Join(dir, "temp1_label"), label, 0o644)
		os.WriteFile(filepath.Join(dir, "temp1_input"), input, 0o644)
		c, err := readChip(dir)
		for _, s := range c.Sensors {
			if s.Label == "" || strings.ContainsAny(s.Label, "\n\x00") {
				t.Fatalf("sensor label %q", s.Label)
			}
		}
		if err != nil && len(input) > 8 && strings.Contains(err.Error(), string(input)) {
			t.Fatal("error quotes the input")
		}
	})
}

// A chip without a name file and without a device, the shape of
// node_exporter's sysfs fixture hwmon4 (two temperatures, both labelled
// foosensor): it is named after its directory, as node_exporter does, and
// both sensors are reported, not dropped.
func TestNoName(t *testing.T) {
	sys := copySys(t, "intel-laptop")
	hw := filepath.Join(sys, "class/hwmon/hwmon9")
	if err := os.Mkdir(hw, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{
		"temp1_input": "55000", "temp1_label": "foosensor", "temp1_crit": "100000", "temp1_max": "100000", "temp1_crit_alarm": "0",
		"temp2_input": "54000", "temp2_label": "foosensor", "temp2_crit": "100000", "temp2_max": "100000", "temp2_crit_alarm": "0",
		"freq1_input": "214000000", "freq1_label": "sclk",
	} {
		if err := os.WriteFile(filepath.Join(hw, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A chip with a device but no name keeps its device in the chip label.
	if err := os.Remove(filepath.Join(sys, "class/hwmon/hwmon1/name")); err != nil {
		t.Fatal(err)
	}
	s, err := run(t, sys)
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 55, "panther_hwmon_temperature_celsius", "chip", "hwmon9", "sensor", "foosensor (temp1)")
	s.Want(t, 54, "panther_hwmon_temperature_celsius", "chip", "hwmon9", "sensor", "foosensor (temp2)")
	s.Want(t, 100, "panther_hwmon_temperature_critical_celsius", "chip", "hwmon9", "sensor", "foosensor (temp1)")
	s.Want(t, 100, "panther_hwmon_temperature_max_celsius", "chip", "hwmon9", "sensor", "foosensor (temp2)")
	s.Want(t, 54, "panther_hwmon_temperature_celsius", "chip", "hwmon1-dell_smm_hwmon", "sensor", "CPU")
	s.Want(t, 59, "panther_hwmon_temperature_celsius", "chip", "coretemp-coretemp.0", "sensor", "Package id 0")
}
