package system

// Tests of issue 24: the system collector gives the kernel's figures, as
// node_exporter does, on a fixture copied from a real host
// (testdata/parity/README.md says what was edited in).

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

const parityProc = "testdata/parity/proc"

func parityCollect(t *testing.T, proc string) collectortest.Result {
	t.Helper()
	root := t.TempDir() // holds "/", the fixture's one mount
	got, err := collect(t, proc, root, defaults)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return got
}

func TestParityMemoryIsMeminfoLineByLine(t *testing.T) {
	got := parityCollect(t, parityProc)
	const kB = 1024
	for name, want := range map[string]float64{
		"panther_memory_total_bytes":     24683620 * kB,
		"panther_memory_free_bytes":      21649896 * kB,
		"panther_memory_available_bytes": 23927432 * kB,
		"panther_memory_buffers_bytes":   69908 * kB,
		// Cached alone: gopsutil (which this collector used before) adds
		// SReclaimable (251104 kB), as free(1)'s buff/cache does.
		"panther_memory_cached_bytes": 2267148 * kB,
		"panther_swap_total_bytes":    8388604 * kB,
		"panther_swap_free_bytes":     8126460 * kB,
	} {
		if v := got.Value(t, name, nil); v != want {
			t.Errorf("%s = %.0f, want %.0f", name, v, want)
		}
	}
}

func TestParityCPUKeepsGuestInUserAndNice(t *testing.T) {
	got := parityCollect(t, parityProc)
	// cpu  50806 4421 30636 26483 309 0 420 0 2040 207
	want := map[string]float64{
		"user": 508.06, "nice": 44.21, "system": 306.36, "idle": 264.83, "iowait": 3.09,
		"irq": 0, "softirq": 4.2, "steal": 0, "guest": 20.40, "guest_nice": 2.07,
	}
	var busy float64
	for mode, w := range want {
		v := got.Value(t, "panther_cpu_seconds_total", map[string]string{"mode": mode})
		if v != w {
			t.Errorf("mode %s = %v, want %v (the kernel's figure)", mode, v, w)
		}
		if mode != "idle" && mode != "iowait" && mode != "guest" && mode != "guest_nice" {
			busy += v
		}
	}
	if len(got.Series("panther_cpu_seconds_total", nil)) != len(want) {
		t.Errorf("%d modes, want %d", len(got.Series("panther_cpu_seconds_total", nil)), len(want))
	}
	// What the HELP text and the dashboards rely on: busy time is every mode
	// but idle, iowait, guest and guest_nice (guest time is inside user and nice).
	if math.Round(busy*100) != 50806+4421+30636+0+420+0 {
		t.Errorf("busy = %v", busy)
	}
	if v := got.Value(t, "panther_cpus", nil); v != 2 {
		t.Errorf("cpus = %v", v)
	}
}

// The cpu line of a real read is a tick ahead of the sum of the cpuN lines
// in some modes; the collector takes the kernel's cpu line, which keeps
// counting the time of CPUs taken offline (a sum of the online ones would
// go down, and rate() would read that as a counter reset).
func TestCPUIsTheKernelsCPULine(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(proc, os.DirFS(parityProc)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 2)
	lines[0] = "cpu  50806 4422 30637 26483 310 0 420 0 2040 207" // as read, but for guest
	if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	got := parityCollect(t, proc)
	for mode, w := range map[string]float64{"nice": 44.22, "system": 306.37, "iowait": 3.1} {
		if v := got.Value(t, "panther_cpu_seconds_total", map[string]string{"mode": mode}); v != w {
			t.Errorf("mode %s = %v, want the cpu line's %v", mode, v, w)
		}
	}
}

func TestParityDisksLeaveOutEveryKindOfPartition(t *testing.T) {
	got := parityCollect(t, parityProc)
	var devs []string
	for _, s := range got.Series("panther_disk_read_bytes_total", nil) {
		devs = append(devs, s.Labels["device"])
	}
	sort.Strings(devs)
	// Whole devices stay, the eMMC boot areas too (hardware partitions with
	// I/O of their own, not counted in mmcblk0); partitions, loop and zram go.
	want := "dm-0,hda,mmcblk0,mmcblk0boot0,mmcblk0boot1,nvme0n1,sda,sdaa,vda,xvda"
	if strings.Join(devs, ",") != want {
		t.Errorf("devices = %s, want %s", strings.Join(devs, ","), want)
	}
	d := map[string]string{"device": "mmcblk0"}
	if v := got.Value(t, "panther_disk_read_bytes_total", d); v != 3311204*512 {
		t.Errorf("mmcblk0 read bytes = %v", v)
	}
	if v := got.Value(t, "panther_disk_written_bytes_total", d); v != 1922318*512 {
		t.Errorf("mmcblk0 written bytes = %v", v)
	}
	if v := got.Value(t, "panther_disk_io_time_seconds_total", d); v != 329.81 {
		t.Errorf("mmcblk0 io time = %v", v)
	}
	if v := got.Value(t, "panther_disk_reads_completed_total", d); v != 48230 {
		t.Errorf("mmcblk0 reads = %v", v)
	}
	if v := got.Value(t, "panther_disk_writes_completed_total", d); v != 30129 {
		t.Errorf("mmcblk0 writes = %v", v)
	}
}

func TestDiskExcludeDefault(t *testing.T) {
	f, err := newFilter("disk", "", defDiskExclude)
	if err != nil {
		t.Fatal(err)
	}
	for dev, keep := range map[string]bool{
		"sda": true, "sda1": false, "sdaa": true, "sdaa12": false, "hda": true, "hda1": false,
		"vda": true, "vda2": false, "xvda": true, "xvda1": false, "xvdba3": false,
		"nvme0n1": true, "nvme0n1p1": false, "nvme10n2p13": false,
		"mmcblk0": true, "mmcblk0p1": false, "mmcblk1p12": false, "mmcblk0boot0": true, "mmcblk0boot1": true,
		"dm-0": true, "md0": true, "loop0": false, "zram0": false, "ram0": false, "fd0": false,
	} {
		if f.keep(dev) != keep {
			t.Errorf("%s: keep = %v, want %v", dev, !keep, keep)
		}
	}
}

func TestParityNetworkColumns(t *testing.T) {
	got := parityCollect(t, parityProc)
	d := map[string]string{"device": "eth0"}
	for name, want := range map[string]float64{
		"panther_network_receive_bytes_total":   490805530,
		"panther_network_transmit_bytes_total":  1804672,
		"panther_network_receive_errors_total":  3,
		"panther_network_receive_drop_total":    17,
		"panther_network_transmit_errors_total": 1,
		"panther_network_transmit_drop_total":   2,
	} {
		if v := got.Value(t, name, d); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

// A line procfs cannot parse is reported by file name and kind, without
// the line's content.
func TestProcfsErrorsDoNotQuoteTheFile(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(proc, os.DirFS(parityProc)); err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string]string{
		"meminfo": "MemTotal: 1 kB\nSecretish: s3cr3t kB\n",
		"stat":    "cpu  s3cr3t 1 2\nbtime 1\n",
	} {
		path := filepath.Join(proc, file)
		orig, _ := os.ReadFile(path)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := collect(t, proc, t.TempDir(), defaults)
		os.WriteFile(path, orig, 0o644)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: error %v does not name the file", file, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error quotes the file: %v", file, err)
		}
	}
}

// TestParityGolden pins everything the collector exports of the parity
// fixture but the statfs figures of "/" (the test's temporary directory).
func TestParityGolden(t *testing.T) {
	parityCollect(t, parityProc).Without(
		"panther_filesystem_size_bytes", "panther_filesystem_avail_bytes", "panther_filesystem_free_bytes",
		"panther_filesystem_files", "panther_filesystem_files_free", "panther_filesystem_readonly",
	).Golden(t, "testdata/parity.prom")
}
