package system

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/pantheros/monitoring/internal/nodeexporter"
)

// scrapeNodeExporter runs node_exporter on the fixture with the collectors
// that overlap the system collector and returns one scrape.
func scrapeNodeExporter(t *testing.T, proc, sys string) map[string]*dto.MetricFamily {
	t.Helper()
	return nodeexporter.Scrape(t, "--path.procfs="+proc, "--path.sysfs="+sys,
		"--collector.disable-defaults", "--collector.cpu", "--collector.cpu.guest", "--collector.stat",
		"--collector.meminfo", "--collector.loadavg", "--collector.diskstats", "--collector.pressure",
		// netlink asks the running kernel and ignores --path.procfs.
		"--collector.netdev", "--no-collector.netdev.netlink")
}

func nodeValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// nodeSeries returns the samples of a node_exporter family keyed by the
// value of one label ("" for a family without labels).
func nodeSeries(mfs map[string]*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	mf := mfs[name]
	if mf == nil {
		return out
	}
	for _, m := range mf.Metric {
		key := ""
		for _, l := range m.Label {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		out[key] = nodeValue(m)
	}
	return out
}

// digits is how both exporters print a value.
func digits(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestSameFiguresAsNodeExporter feeds the parity fixture to Debian's
// node_exporter and to the system collector, and compares every metric
// whose name promises the same thing, digit for digit as each prints it.
// CPU seconds: node_exporter has one series per CPU and mode, the sum of
// which is compared in ticks (USER_HZ, the resolution of /proc/stat), since
// a float sum of 0.01 steps is not exact.
func TestSameFiguresAsNodeExporter(t *testing.T) {
	proc, err := filepath.Abs(parityProc)
	if err != nil {
		t.Fatal(err)
	}
	ne := scrapeNodeExporter(t, proc, filepath.Join(filepath.Dir(proc), "sys"))
	got := parityCollect(t, parityProc)

	compared := 0
	same := func(what string, ours, theirs float64) {
		t.Helper()
		compared++
		if digits(ours) != digits(theirs) {
			t.Errorf("%s: panther %s, node_exporter %s", what, digits(ours), digits(theirs))
		}
	}
	// Families without labels.
	for panther, node := range map[string]string{
		"panther_load1": "node_load1", "panther_load5": "node_load5", "panther_load15": "node_load15",
		"panther_memory_total_bytes":     "node_memory_MemTotal_bytes",
		"panther_memory_available_bytes": "node_memory_MemAvailable_bytes",
		"panther_memory_free_bytes":      "node_memory_MemFree_bytes",
		"panther_memory_buffers_bytes":   "node_memory_Buffers_bytes",
		"panther_memory_cached_bytes":    "node_memory_Cached_bytes",
		"panther_swap_total_bytes":       "node_memory_SwapTotal_bytes",
		"panther_swap_free_bytes":        "node_memory_SwapFree_bytes",
		"panther_boot_timestamp_seconds": "node_boot_time_seconds",
	} {
		theirs, ok := nodeSeries(ne, node, "")[""]
		if !ok {
			t.Errorf("node_exporter has no %s", node)
			continue
		}
		same(panther+" / "+node, got.Value(t, panther, nil), theirs)
	}

	// Pressure: one node_exporter family per resource.
	for _, p := range []struct{ panther, resource, node string }{
		{"panther_pressure_waiting_seconds_total", "cpu", "node_pressure_cpu_waiting_seconds_total"},
		{"panther_pressure_waiting_seconds_total", "memory", "node_pressure_memory_waiting_seconds_total"},
		{"panther_pressure_waiting_seconds_total", "io", "node_pressure_io_waiting_seconds_total"},
		{"panther_pressure_stalled_seconds_total", "memory", "node_pressure_memory_stalled_seconds_total"},
		{"panther_pressure_stalled_seconds_total", "io", "node_pressure_io_stalled_seconds_total"},
	} {
		theirs, ok := nodeSeries(ne, p.node, "")[""]
		if !ok {
			t.Errorf("node_exporter has no %s", p.node)
			continue
		}
		same(p.node, got.Value(t, p.panther, map[string]string{"resource": p.resource}), theirs)
	}

	// CPU: per-CPU series summed, in ticks; guest from node_cpu_guest_seconds_total.
	ticks := map[string]float64{}
	cpuIDs := map[string]bool{}
	for _, m := range ne["node_cpu_seconds_total"].GetMetric() {
		var mode string
		for _, l := range m.Label {
			switch l.GetName() {
			case "mode":
				mode = l.GetValue()
			case "cpu":
				cpuIDs[l.GetValue()] = true
			}
		}
		ticks[mode] += math.Round(nodeValue(m) * 100)
	}
	for _, m := range ne["node_cpu_guest_seconds_total"].GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "mode" {
				ticks[map[string]string{"user": "guest", "nice": "guest_nice"}[l.GetValue()]] += math.Round(nodeValue(m) * 100)
			}
		}
	}
	for _, mode := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"} {
		theirs, ok := ticks[mode]
		if !ok {
			t.Errorf("node_exporter has no CPU mode %s", mode)
			continue
		}
		ours := got.Value(t, "panther_cpu_seconds_total", map[string]string{"mode": mode})
		same("cpu ticks "+mode, math.Round(ours*100), theirs)
		if digits(ours) != digits(theirs/100) {
			t.Errorf("cpu %s: panther prints %s, the ticks are %s/100", mode, digits(ours), digits(theirs))
		}
	}
	same("panther_cpus / count(node_cpu_seconds_total by cpu)", got.Value(t, "panther_cpus", nil), float64(len(cpuIDs)))

	// Per device: disks and network interfaces both exporters keep.
	perDevice := func(pairs map[string]string, wantDevices string, allowedExtra map[string]bool) {
		t.Helper()
		for panther, node := range pairs {
			ours := map[string]float64{}
			for _, s := range got.Series(panther, nil) {
				ours[s.Labels["device"]] = s.Value
			}
			theirs := nodeSeries(ne, node, "device")
			var devs []string
			for dev, v := range ours {
				devs = append(devs, dev)
				tv, ok := theirs[dev]
				if !ok {
					t.Errorf("%s{device=%q}: node_exporter has no %s for it", panther, dev, node)
					continue
				}
				same(fmt.Sprintf("%s / %s{device=%q}", panther, node, dev), v, tv)
			}
			sort.Strings(devs)
			if strings.Join(devs, ",") != wantDevices {
				t.Errorf("%s: devices %s, want %s", panther, strings.Join(devs, ","), wantDevices)
			}
			for dev := range theirs {
				if _, ok := ours[dev]; !ok && !allowedExtra[dev] {
					t.Errorf("%s{device=%q}: only node_exporter has it, which is no difference docs/migrating.md names", node, dev)
				}
			}
		}
	}
	// node_exporter keeps mmcblk partitions and those of sdaa and later
	// disks; 1.5 keeps zram too. docs/migrating.md says so.
	perDevice(map[string]string{
		"panther_disk_read_bytes_total":       "node_disk_read_bytes_total",
		"panther_disk_written_bytes_total":    "node_disk_written_bytes_total",
		"panther_disk_io_time_seconds_total":  "node_disk_io_time_seconds_total",
		"panther_disk_reads_completed_total":  "node_disk_reads_completed_total",
		"panther_disk_writes_completed_total": "node_disk_writes_completed_total",
	}, "dm-0,hda,mmcblk0,mmcblk0boot0,mmcblk0boot1,nvme0n1,sda,sdaa,vda,xvda",
		map[string]bool{"mmcblk0p1": true, "mmcblk0p2": true, "sdaa1": true, "zram0": true})
	perDevice(map[string]string{
		"panther_network_receive_bytes_total":   "node_network_receive_bytes_total",
		"panther_network_transmit_bytes_total":  "node_network_transmit_bytes_total",
		"panther_network_receive_errors_total":  "node_network_receive_errs_total",
		"panther_network_transmit_errors_total": "node_network_transmit_errs_total",
		"panther_network_receive_drop_total":    "node_network_receive_drop_total",
		"panther_network_transmit_drop_total":   "node_network_transmit_drop_total",
	}, "eth0,ifb0,ifb1", nil)

	// node_exporter leaves these out by default too; make sure the
	// fixture's mmcblk partitions reached it, so the difference is real.
	if _, ok := nodeSeries(ne, "node_disk_read_bytes_total", "device")["mmcblk0p1"]; !ok {
		t.Error("node_exporter did not report mmcblk0p1: the documented difference no longer holds")
	}
	t.Logf("%d figures compared with node_exporter", compared)
	if compared < 80 {
		t.Errorf("only %d figures compared", compared)
	}
}
