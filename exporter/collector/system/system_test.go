package system

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

// defaults are the flag defaults, as a host gets them.
var defaults = Options{
	MountPointsExclude: defMountPointsExclude,
	FSTypesExclude:     defFSTypesExclude,
	DiskExclude:        defDiskExclude,
	NetdevExclude:      defNetdevExclude,
}

// collect builds the collector over procPath and rootPath and runs it
// once.
func collect(t *testing.T, procPath, rootPath string, o Options) (collectortest.Result, error) {
	t.Helper()
	c, err := New(collector.Config{
		Logger:   slog.New(slog.DiscardHandler),
		ProcPath: procPath,
		SysPath:  filepath.Join(procPath, "..", "sys"),
		RootPath: rootPath,
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	got := collectortest.Collect(t, c)
	return got, got.Err
}

// rootWithMounts makes a root tree holding the fixture's mount points, all
// but /mnt/backup, whose statfs must then fail.
func rootWithMounts(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"run", "nix", "persist", "var/log", "boot", "run/user/1000"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestFixtureHost(t *testing.T) {
	got, err := collect(t, "testdata/proc", rootWithMounts(t), defaults)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	// /proc/stat: the kernel's cpu line (a tick off cpu0 + cpu1 for user
	// and softirq in this real file), in USER_HZ (100).
	for mode, want := range map[string]float64{
		"user": 22350 / 100.0, "system": 8043 / 100.0, "idle": 79757 / 100.0,
		"iowait": 338 / 100.0, "softirq": 97 / 100.0, "steal": 63 / 100.0, "nice": 0,
	} {
		if v := got.Value(t, "panther_cpu_seconds_total", map[string]string{"mode": mode}); !approx(v, want) {
			t.Errorf("cpu %s = %v, want %v", mode, v, want)
		}
	}
	checks := map[string]float64{
		"panther_cpus":                   2,
		"panther_load1":                  5.02,
		"panther_load5":                  2.01,
		"panther_load15":                 0.79,
		"panther_memory_total_bytes":     24684084 * 1024,
		"panther_memory_available_bytes": 23733224 * 1024,
		"panther_swap_total_bytes":       8388604 * 1024,
		"panther_swap_free_bytes":        8126460 * 1024,
		"panther_boot_timestamp_seconds": 1795647411,
	}
	for name, want := range checks {
		if v := got.Value(t, name, nil); !approx(v, want) {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	// /proc/pressure: totals are microseconds.
	if v := got.Value(t, "panther_pressure_waiting_seconds_total", map[string]string{"resource": "cpu"}); !approx(v, 96.777623) {
		t.Errorf("cpu pressure = %v", v)
	}
	if v := got.Value(t, "panther_pressure_stalled_seconds_total", map[string]string{"resource": "io"}); !approx(v, 2.69705) {
		t.Errorf("io full pressure = %v", v)
	}
	if n := len(got.Series("panther_pressure_stalled_seconds_total", nil)); n != 2 {
		t.Errorf("%d 'full' pressure series, want 2 (memory, io; not cpu)", n)
	}
	// diskstats: loop and zram devices are left out; vda is sectors * 512.
	if v := got.Value(t, "panther_disk_read_bytes_total", map[string]string{"device": "vda"}); v != 2614074*512 {
		t.Errorf("vda read bytes = %v", v)
	}
	if v := got.Value(t, "panther_disk_io_time_seconds_total", map[string]string{"device": "vda"}); !approx(v, 7.88) {
		t.Errorf("vda io time = %v", v)
	}
	for _, s := range got.Series("panther_disk_read_bytes_total", nil) {
		if d := s.Labels["device"]; strings.HasPrefix(d, "loop") || strings.HasPrefix(d, "zram") {
			t.Errorf("excluded device %s reported", d)
		}
	}
	// net/dev: lo left out.
	if v := got.Value(t, "panther_network_receive_bytes_total", map[string]string{"device": "eth0"}); v != 288162607 {
		t.Errorf("eth0 rx = %v", v)
	}
	if len(got.Series("panther_network_receive_bytes_total", nil)) != 3 {
		t.Errorf("interfaces: %v", got.Series("panther_network_receive_bytes_total", nil))
	}
}

func TestFilesystemSelection(t *testing.T) {
	got, err := collect(t, "testdata/proc", rootWithMounts(t), defaults)
	if err != nil {
		t.Fatal(err)
	}
	var mps []string
	for _, s := range got.Series("panther_filesystem_readonly", nil) {
		mps = append(mps, s.Labels["mountpoint"])
	}
	sort.Strings(mps)
	// The btrfs subvolume mounts /nix, /persist, /var/log and the /nix/store
	// bind mount share st_dev with /: only / is reported. Pseudo filesystems,
	// /dev, /sys and container overlays are left out.
	want := "/,/boot,/mnt/backup,/run,/run/user/1000"
	if strings.Join(mps, ",") != want {
		t.Errorf("mountpoints = %v, want %s", mps, want)
	}
	if v := got.Value(t, "panther_filesystem_readonly", map[string]string{"mountpoint": "/mnt/backup"}); v != 1 {
		t.Error("/mnt/backup should be read-only")
	}
	// /mnt/backup does not exist under the root: marked failed, no sizes.
	if v := got.Value(t, "panther_filesystem_device_error", map[string]string{"mountpoint": "/mnt/backup"}); v != 1 {
		t.Error("/mnt/backup statfs should have failed")
	}
	if v := got.Value(t, "panther_filesystem_device_error", map[string]string{"mountpoint": "/"}); v != 0 {
		t.Error("/ statfs failed")
	}
	if v := got.Value(t, "panther_filesystem_size_bytes", map[string]string{"mountpoint": "/", "fstype": "btrfs", "device": "/dev/mapper/crypted"}); v <= 0 {
		t.Errorf("/ size = %v", v)
	}
	if len(got.Series("panther_filesystem_size_bytes", nil)) != 4 {
		t.Errorf("size series: %v", got.Series("panther_filesystem_size_bytes", nil))
	}

	all := defaults
	all.AllMounts = true
	got, _ = collect(t, "testdata/proc", rootWithMounts(t), all)
	if n := len(got.Series("panther_filesystem_readonly", nil)); n != 9 {
		t.Errorf("--collector.system.all-mounts: %d mounts, want 9", n)
	}
	only := defaults
	only.FSTypesInclude = "^btrfs$"
	got, _ = collect(t, "testdata/proc", rootWithMounts(t), only)
	if n := len(got.Series("panther_filesystem_readonly", nil)); n != 1 {
		t.Errorf("fs-types-include=btrfs: %d mounts, want 1", n)
	}
}

// copyFixture copies testdata/proc into a temp dir so a test can break files.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(dst, os.DirFS("testdata/proc")); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBadInputNamesTheFileAndKeepsTheRest(t *testing.T) {
	for _, c := range []struct {
		name, file, content string
		remove              bool
		lost                string // metric that must be missing
		kept                string // metric that must still be there
	}{
		{name: "missing meminfo", file: "meminfo", remove: true, lost: "panther_memory_total_bytes", kept: "panther_cpus"},
		{name: "garbled meminfo", file: "meminfo", content: "MemTotal: lots\nMemFree: 12 kB\n", lost: "panther_memory_total_bytes", kept: "panther_load1"},
		{name: "truncated loadavg", file: "loadavg", content: "5.02 2.0", lost: "panther_load1", kept: "panther_memory_total_bytes"},
		{name: "garbled stat", file: "stat", content: "cpu  x y z\nbtime nope\n", lost: "panther_cpus", kept: "panther_load1"},
		{name: "garbled pressure", file: "pressure/io", content: "some avg10=x\n", lost: "", kept: "panther_cpus"},
		{name: "missing mountinfo", file: "1/mountinfo", remove: true, lost: "panther_filesystem_size_bytes", kept: "panther_cpus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			proc := copyFixture(t)
			path := filepath.Join(proc, c.file)
			if c.remove {
				os.Remove(path)
			} else {
				os.WriteFile(path, []byte(c.content), 0o644)
			}
			got, err := collect(t, proc, rootWithMounts(t), defaults)
			if err == nil {
				t.Fatal("no error for bad input")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if c.lost != "" && len(got.Series(c.lost, nil)) != 0 {
				t.Errorf("%s still reported from bad input", c.lost)
			}
			if len(got.Series(c.kept, nil)) == 0 {
				t.Errorf("%s lost because of another file", c.kept)
			}
		})
	}
}

func TestNoPSIIsNotAFailure(t *testing.T) {
	proc := copyFixture(t)
	os.RemoveAll(filepath.Join(proc, "pressure"))
	got, err := collect(t, proc, rootWithMounts(t), defaults)
	if err != nil {
		t.Fatalf("kernel without PSI: %v", err)
	}
	if len(got.Series("panther_pressure_waiting_seconds_total", nil)) != 0 {
		t.Error("pressure reported without /proc/pressure")
	}
}

func TestBadRegexpIsAFlagError(t *testing.T) {
	o := defaults
	o.NetdevExclude = "("
	_, err := New(collector.Config{Logger: slog.New(slog.DiscardHandler), ProcPath: "testdata/proc", RootPath: "/"}, o)
	if err == nil || !strings.Contains(err.Error(), "--collector.system.netdev-exclude") {
		t.Errorf("err = %v", err)
	}
}

// FuzzProcFiles feeds arbitrary content to every /proc file the collector
// reads: it must never panic, whatever the kernel (or a broken fixture) says.
func FuzzProcFiles(f *testing.F) {
	for _, name := range []string{"stat", "meminfo", "loadavg", "diskstats", "net/dev", "pressure/cpu", "1/mountinfo"} {
		b, err := os.ReadFile(filepath.Join("testdata/proc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name, string(b), uint(len(b)/2))
	}
	f.Add("stat", "cpu0 1 2\n", uint(3))
	f.Add("1/mountinfo", "1 2 3:4 / / rw - ext4\n", uint(4))
	f.Fuzz(func(t *testing.T, name, content string, at uint) {
		switch name {
		case "stat", "meminfo", "loadavg", "diskstats", "net/dev", "pressure/cpu", "pressure/io", "1/mountinfo":
		default:
			return
		}
		proc := copyFixture(t)
		if err := os.WriteFile(filepath.Join(proc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		collect(t, proc, t.TempDir(), defaults) // must not panic
		if err := os.WriteFile(filepath.Join(proc, name), inputerrtest.Plant([]byte(content), at), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := collect(t, proc, t.TempDir(), defaults)
		inputerrtest.CheckErr(t, "collector error", err)
	})
}
