package diskhealth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/samples"
)

func parseFile(t *testing.T, name string) (*Health, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(b)
}

func want(t *testing.T, what string, got *float64, v float64) {
	t.Helper()
	if got == nil || *got != v {
		t.Errorf("%s = %v, want %v", what, deref(got), v)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Samsung 980 PRO as `smartctl -x /dev/nvme0n1` prints it: SMART overall
// health PASSED, Critical Warning 0x00, Temperature 41 Celsius, Available
// Spare 100%, Threshold 10%, Percentage Used 3%, Power On Hours 5,921,
// Power Cycles 1,349, Unsafe Shutdowns 104, Media and Data Integrity
// Errors 0, Error Information Log Entries 0.
func TestParseNVMe(t *testing.T) {
	h, err := parseFile(t, "nvme-samsung-980pro.json")
	if err != nil {
		t.Fatal(err)
	}
	if h.Passed == nil || !*h.Passed || h.CriticalWarning == nil || *h.CriticalWarning != 0 {
		t.Errorf("passed %v, critical warning %v", h.Passed, h.CriticalWarning)
	}
	want(t, "temperature", h.Temperature, 41)
	want(t, "spare", h.Spare, 1)
	want(t, "spare threshold", h.SpareThreshold, 0.10)
	want(t, "wear", h.Wear, 0.03)
	want(t, "power on", h.PowerOnSeconds, 5921*3600)
	want(t, "power cycles", h.PowerCycles, 1349)
	want(t, "unsafe shutdowns", h.UnsafeShutdowns, 104)
	want(t, "media errors", h.MediaErrors, 0)
	if h.Reallocated != nil || h.Model != "Samsung SSD 980 PRO 1TB" || h.Protocol != "NVMe" {
		t.Errorf("reallocated %v, model %q, protocol %q", deref(h.Reallocated), h.Model, h.Protocol)
	}
}

// A worn WD SN530: FAILED!, Critical Warning 0x01 (spare below
// threshold), Available Spare 4% under a 5% threshold, Percentage Used
// 104%, 12 media errors. smartctl's exit status 72 (bits 3 and 6) are
// findings, not a failed read.
func TestParseNVMeFailing(t *testing.T) {
	h, err := parseFile(t, "nvme-wd-sn530-failing.json")
	if err != nil {
		t.Fatal(err)
	}
	if h.Passed == nil || *h.Passed || *h.CriticalWarning != 1 {
		t.Errorf("passed %v, critical warning %v", *h.Passed, *h.CriticalWarning)
	}
	want(t, "wear", h.Wear, 1.04)
	want(t, "spare", h.Spare, 0.04)
	want(t, "spare threshold", h.SpareThreshold, 0.05)
	want(t, "media errors", h.MediaErrors, 12)
	want(t, "error log entries", h.ErrorLogEntries, 1893)
}

// WD Red 4 TB (`smartctl -x /dev/sda`): PASSED; attributes 5
// Reallocated_Sector_Ct raw 8, 197 Current_Pending_Sector 2, 198
// Offline_Uncorrectable 0, 9 Power_On_Hours 31937, Temperature 34 C.
// A hard disk has no wear figure.
func TestParseSATAHardDisk(t *testing.T) {
	h, err := parseFile(t, "sata-wd-red-hdd.json")
	if err != nil {
		t.Fatal(err)
	}
	if h.Passed == nil || !*h.Passed || h.CriticalWarning != nil || h.Wear != nil {
		t.Errorf("passed %v, critical warning %v, wear %v", h.Passed, h.CriticalWarning, deref(h.Wear))
	}
	want(t, "reallocated", h.Reallocated, 8)
	want(t, "pending", h.Pending, 2)
	want(t, "uncorrectable", h.Uncorrectable, 0)
	want(t, "power on", h.PowerOnSeconds, 31937*3600)
	want(t, "power cycles", h.PowerCycles, 121)
	want(t, "temperature", h.Temperature, 34)
}

// Samsung 870 EVO: device statistics page 7 "Percentage Used Endurance
// Indicator" 2 (`smartctl -x` prints it under "Solid State Device
// Statistics"), not the vendor's Wear_Leveling_Count.
func TestParseSATASSD(t *testing.T) {
	h, err := parseFile(t, "sata-samsung-870evo.json")
	if err != nil {
		t.Fatal(err)
	}
	want(t, "wear", h.Wear, 0.02)
	want(t, "reallocated", h.Reallocated, 0)
	want(t, "temperature", h.Temperature, 29)
}

func TestParseStandby(t *testing.T) {
	if _, err := parseFile(t, "sata-standby.json"); !errors.Is(err, ErrAsleep) {
		t.Errorf("error %v, want ErrAsleep", err)
	}
}

// This machine's smartctl 7.3 on its virtio disk: no SMART, exit status
// 1, the reason in messages.
func TestParseNoSMART(t *testing.T) {
	_, err := parseFile(t, "no-smart-virtio.json")
	if err == nil || !strings.Contains(err.Error(), "exit status 1: /dev/vda: Unable to detect device type") {
		t.Errorf("error %v", err)
	}
}

func TestParseGarbled(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "not JSON"},
		{"secret", "not JSON (offset 1)"},
		{`{"json_format_version":[2,0]}`, "json_format_version [2 0]"},
		{`{"json_format_version":[1,0],"smart_status":{"passed":"secret"}}`, "field smart_status.passed is not a bool"},
		{`{"json_format_version":[1,0],"smartctl":{"exit_status":0}}`, "no SMART data"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error quotes the input: %v", err)
		}
	}
}

// fakeSys makes a /sys/block with the disks of a small server: two SATA
// disks, one asleep, an NVMe controller with two namespaces, a USB stick
// (removable), a loop device and a virtio disk.
func fakeSys(t *testing.T) string {
	t.Helper()
	sys := t.TempDir()
	mk := func(name, removable, ctrl string) {
		dir := filepath.Join(sys, "block", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "removable"), []byte(removable+"\n"), 0o644)
		if ctrl != "" {
			c := filepath.Join(sys, "devices/pci0000:00/0000:00:1d.0/0000:01:00.0/nvme", ctrl)
			os.MkdirAll(c, 0o755)
			os.Symlink(c, filepath.Join(dir, "device"))
		}
	}
	mk("sda", "0", "")
	mk("sdb", "0", "")
	mk("sdc", "0", "")
	mk("sdd", "1", "")
	mk("nvme0n1", "0", "nvme0")
	mk("nvme0n2", "0", "nvme0")
	mk("loop0", "0", "")
	mk("vda", "0", "")
	return sys
}

type fakeRun struct {
	files map[string]string
	calls []string
}

func (f *fakeRun) run(_ context.Context, dev string) ([]byte, int, error) {
	f.calls = append(f.calls, dev)
	name, ok := f.files[dev]
	if !ok {
		return nil, -1, errors.New("smartctl: no such file or directory")
	}
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		return nil, -1, err
	}
	return b, 0, nil
}

func newCollector(t *testing.T, sys string, f *fakeRun) *DiskHealth {
	t.Helper()
	d, err := New(collector.Config{SysPath: sys}, Options{Interval: time.Hour, Include: DefaultInclude}, f.run)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// One round over the server's disks: every disk's figures, one namespace
// per NVMe controller, no removable media, and a disk whose read fails
// names itself while the others stay.
func TestRound(t *testing.T) {
	f := &fakeRun{files: map[string]string{
		"/dev/sda":     "sata-wd-red-hdd.json",
		"/dev/sdb":     "sata-samsung-870evo.json",
		"/dev/sdc":     "sata-standby.json",
		"/dev/nvme0n1": "nvme-wd-sn530-failing.json",
	}}
	d := newCollector(t, fakeSys(t), f)
	if err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "/dev/nvme0n1 /dev/sda /dev/sdb /dev/sdc" {
		t.Errorf("smartctl ran for %s", got)
	}
	s, err := samples.Collect(t, sendOnly{d})
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 1, "panther_disk_health_ok", "device", "sda")
	s.Want(t, 0, "panther_disk_health_ok", "device", "nvme0n1")
	s.Want(t, 1, "panther_disk_critical_warning", "device", "nvme0n1", "type", "spare")
	s.Want(t, 0, "panther_disk_critical_warning", "device", "nvme0n1", "type", "temperature")
	s.Want(t, 1.04, "panther_disk_wear_ratio", "device", "nvme0n1")
	s.Want(t, 0.02, "panther_disk_wear_ratio", "device", "sdb")
	s.Absent(t, "panther_disk_wear_ratio", "device", "sda")
	s.Want(t, 0.04, "panther_disk_available_spare_ratio", "device", "nvme0n1")
	s.Want(t, 0.05, "panther_disk_available_spare_threshold_ratio", "device", "nvme0n1")
	s.Want(t, 12, "panther_disk_media_errors_total", "device", "nvme0n1")
	s.Want(t, 411, "panther_disk_unsafe_shutdowns_total", "device", "nvme0n1")
	s.Want(t, 24310*3600, "panther_disk_power_on_seconds_total", "device", "nvme0n1")
	s.Want(t, 52, "panther_disk_temperature_celsius", "device", "nvme0n1")
	s.Want(t, 8, "panther_disk_reallocated_sectors", "device", "sda")
	s.Want(t, 2, "panther_disk_pending_sectors", "device", "sda")
	s.Want(t, 0, "panther_disk_uncorrectable_sectors", "device", "sda")
	s.Want(t, 1, "panther_disk_info", "device", "sdb", "model", "Samsung SSD 870 EVO 1TB", "firmware", "SVT02B6Q", "protocol", "ATA")
	// The sleeping disk: read successfully in the sense that nothing
	// failed, asleep, no figures yet.
	s.Want(t, 1, "panther_disk_smart_success", "device", "sdc")
	s.Want(t, 1, "panther_disk_smart_asleep", "device", "sdc")
	s.Absent(t, "panther_disk_health_ok", "device", "sdc")
	s.Want(t, 0, "panther_disk_smart_asleep", "device", "sda")
}

// sendOnly is the collector without its background loop.
type sendOnly struct{ d *DiskHealth }

func (s sendOnly) Update(_ context.Context, ch chan<- prometheus.Metric) error { return s.d.Send(ch) }

// A disk that falls asleep keeps its last figures; one that fails loses
// them and names itself; one that is gone is forgotten.
func TestLaterRounds(t *testing.T) {
	sys := fakeSys(t)
	f := &fakeRun{files: map[string]string{
		"/dev/sda": "sata-wd-red-hdd.json", "/dev/sdb": "sata-samsung-870evo.json",
		"/dev/sdc": "sata-wd-red-hdd.json", "/dev/nvme0n1": "nvme-samsung-980pro.json",
	}}
	d := newCollector(t, sys, f)
	if err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.files["/dev/sda"] = "sata-standby.json"
	f.files["/dev/sdb"] = "no-smart-virtio.json"
	if err := os.RemoveAll(filepath.Join(sys, "block/sdc")); err != nil {
		t.Fatal(err)
	}
	if err := d.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := samples.Collect(t, sendOnly{d})
	if err == nil || !strings.Contains(err.Error(), "/dev/sdb: smartctl exit status 1") {
		t.Errorf("error %v, want one naming /dev/sdb", err)
	}
	s.Want(t, 1, "panther_disk_smart_asleep", "device", "sda")
	s.Want(t, 8, "panther_disk_reallocated_sectors", "device", "sda")
	s.Want(t, 0, "panther_disk_smart_success", "device", "sdb")
	s.Absent(t, "panther_disk_health_ok", "device", "sdb")
	s.Absent(t, "panther_disk_smart_success", "device", "sdc")
	s.Want(t, 1, "panther_disk_health_ok", "device", "nvme0n1")
}

func TestFlags(t *testing.T) {
	for _, o := range []Options{
		{Interval: time.Hour, Include: "("},
		{Interval: time.Hour, Include: DefaultInclude, Exclude: "["},
		{Interval: 0, Include: DefaultInclude},
	} {
		if _, err := New(collector.Config{}, o, nil); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if (h == nil) == (err == nil) {
			t.Fatalf("health %v with error %v", h, err)
		}
		if h != nil {
			for _, s := range []string{h.Model, h.Firmware} {
				if strings.ContainsAny(s, "\n\x00") || len([]rune(s)) > 120 {
					t.Fatalf("label %q", s)
				}
			}
		}
	})
}
