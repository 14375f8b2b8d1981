// Package hwmon reports temperatures: every hwmon temperature sensor with
// the thresholds the driver gives (/sys/class/hwmon), the thermal zones
// with their critical trip point (/sys/class/thermal), and how often the
// CPUs throttled themselves for heat (Intel's thermal_throttle counters).
// These are node_exporter's hwmon and thermal_zone collectors and the
// throttle part of its cpu collector.
//
// CPUs, their topology and throttle counters are read with
// prometheus/procfs's sysfs package. procfs has no hwmon reader, so hwmon is
// read here, as node_exporter does; thermal zones too, because procfs's
// reader opens five files per zone on every call where two are needed.
package hwmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/sysfile"
)

const name = "hwmon"

var (
	temperature = collector.Gauge(name, "hwmon_temperature_celsius",
		"Temperature of an hwmon sensor (tempN_input). chip is the driver's name plus its device (coretemp-coretemp.0, k10temp-0000:00:18.3, nvme-nvme0), or the hwmonN directory when the driver gives no name, sensor the driver's label (Package id 0, Tctl, Composite) or tempN when it has none.",
		"chip", "sensor")
	temperatureCrit = collector.Gauge(name, "hwmon_temperature_critical_celsius",
		"Critical temperature of an hwmon sensor as the driver gives it (tempN_crit); hardware shuts down or throttles hard there.",
		"chip", "sensor")
	temperatureMax = collector.Gauge(name, "hwmon_temperature_max_celsius",
		"High (max) temperature of an hwmon sensor as the driver gives it (tempN_max).",
		"chip", "sensor")
	zoneTemperature = collector.Gauge(name, "thermal_zone_temperature_celsius",
		"Temperature of a thermal zone (/sys/class/thermal/thermal_zoneN/temp); sensor is the zone's directory name, type the zone type (acpitz, x86_pkg_temp, ...).",
		"sensor", "type")
	zoneCritical = collector.Gauge(name, "thermal_zone_critical_celsius",
		"Temperature of a thermal zone's critical trip point, where the kernel shuts the machine down.",
		"sensor", "type")
	throttles = collector.Counter(name, "cpu_thermal_throttles_total",
		"Times the CPUs throttled for heat since boot, per physical core (type=core) or per package (type=package), summed over cores and packages (Intel thermal_throttle counters).",
		"type")
)

func init() {
	collector.Register(name, true, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg)
	})
}

// Hwmon is the hwmon collector.
//
// What the kernel fixes when a device registers (a chip's name and
// device, a sensor's label, a zone's type and which of its trip points is
// the critical one, a CPU's core and package) is read once and kept; a
// scrape reads only the values. That halves the files opened per scrape.
type Hwmon struct {
	cfg    collector.Config
	logger *slog.Logger
	sys    sysfs.FS

	mu      sync.Mutex
	topo    map[string]string    // CPU directory -> "package/core"
	zoneFix map[string]zoneFixed // zone directory -> its fixed part
	chips   chipCache
}

type zoneFixed struct {
	typ      string
	critTemp string // path of the critical trip point's temperature, "" if none
}

// New returns the collector reading under cfg.SysPath.
func New(cfg collector.Config) (*Hwmon, error) {
	fs, err := sysfs.NewFS(cfg.SysPath)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Hwmon{cfg: cfg, logger: logger, sys: fs, topo: map[string]string{}, zoneFix: map[string]zoneFixed{}, chips: chipCache{}}, nil
}

// Update reads the three sources; a chip, zone or CPU that cannot be read
// is named in the error and the others are still sent.
func (h *Hwmon) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	chips, err := h.chips.read(h.cfg.Sys("class/hwmon"))
	errs = append(errs, err)
	for _, c := range chips {
		for _, s := range c.Sensors {
			ch <- temperature.Const(s.Input, c.Name, s.Label)
			if s.Crit != nil {
				ch <- temperatureCrit.Const(*s.Crit, c.Name, s.Label)
			}
			if s.Max != nil {
				ch <- temperatureMax.Const(*s.Max, c.Name, s.Label)
			}
		}
	}
	errs = append(errs, h.zones(ch), h.throttles(ch))
	return errors.Join(errs...)
}

// Chip is one hwmon device.
type Chip struct {
	Name    string
	Sensors []Sensor
}

// Sensor is one temperature input of a chip, in degrees Celsius.
type Sensor struct {
	Label     string
	Input     float64
	Crit, Max *float64
}

// chipCache keeps what each hwmonN directory's file list fixes: the
// chip's name, its sensors' labels and which limit files they have, keyed
// by the directory and its file list: a device that goes and comes back
// under the same number with other files is read afresh.
type chipCache map[string]chipFixed

type chipFixed struct {
	files []string // the directory's file names
	name  string   // chip label value
	temps []temp   // tempN_input files, in N order
	err   error
}

// temp is one tempN_input of a chip and the paths a scrape reads for it.
type temp struct {
	n                int
	label            string // the driver's label, or tempN
	input, crit, max string // paths; crit and max "" when absent
}

// ReadChips reads every hwmonN directory under dir. A directory that does
// not exist means no hwmon at all (a VM, a server without sensors).
func ReadChips(dir string) ([]Chip, error) { return chipCache{}.read(dir) }

func (cc chipCache) read(dir string) ([]Chip, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var chips []Chip
	var errs []error
	seen := map[string]int{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "hwmon") {
			continue
		}
		c, err := cc.readChip(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
		}
		if c.Name == "" {
			continue
		}
		seen[c.Name]++
		chips = append(chips, c)
	}
	// Two chips that name themselves alike and have no device to tell them
	// apart: number them in directory order so neither hides the other.
	n := map[string]int{}
	for i := range chips {
		if seen[chips[i].Name] > 1 {
			n[chips[i].Name]++
			chips[i].Name = fmt.Sprintf("%s-%d", chips[i].Name, n[chips[i].Name]-1)
		}
	}
	return chips, errors.Join(errs...)
}

// readChip reads one hwmonN directory: its name, its device and every
// tempN_input. A sensor that cannot be read now (EIO/ENODATA/ENXIO/EAGAIN:
// a GPU or disk asleep, a sensor not ready) is left out without error, as
// `sensors` does; a file that reads but is not a number is an error that
// names it, and the chip's other sensors stay.
func readChip(dir string) (Chip, error) { return chipCache{}.readChip(dir) }

func (cc chipCache) readChip(dir string) (Chip, error) {
	f, err := os.Open(dir)
	if err != nil {
		return Chip{}, fmt.Errorf("%s: %w", dir, errors.Unwrap(err))
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return Chip{}, fmt.Errorf("%s: %w", dir, errors.Unwrap(err))
	}
	sort.Strings(names)
	fixed, ok := cc[dir]
	if !ok || !slices.Equal(fixed.files, names) {
		fixed = readChipFixed(dir, names)
		fixed.files = names
		cc[dir] = fixed
	}
	if fixed.err != nil {
		return Chip{}, fixed.err
	}
	c := Chip{Name: fixed.name, Sensors: make([]Sensor, 0, len(fixed.temps))}
	ns := make([]int, 0, len(fixed.temps)) // each sensor's N
	var errs []error
	dup := false
	for _, t := range fixed.temps {
		input, err := readMilli(t.input)
		if err != nil {
			if !unavailable(err) {
				errs = append(errs, err)
			}
			continue
		}
		s := Sensor{Label: t.label, Input: input}
		for _, limit := range []struct {
			path string
			into **float64
		}{{t.crit, &s.Crit}, {t.max, &s.Max}} {
			if limit.path == "" {
				continue
			}
			v, err := readMilli(limit.path)
			switch {
			case err == nil:
				*limit.into = &v
			case errors.Is(err, os.ErrNotExist), unavailable(err):
			default:
				errs = append(errs, err)
			}
		}
		for _, o := range c.Sensors {
			dup = dup || o.Label == s.Label
		}
		c.Sensors = append(c.Sensors, s)
		ns = append(ns, t.n)
	}
	if dup { // one label on two inputs: keep both apart
		count := map[string]int{}
		for _, s := range c.Sensors {
			count[s.Label]++
		}
		for i, s := range c.Sensors {
			if count[s.Label] > 1 {
				c.Sensors[i].Label = fmt.Sprintf("%s (temp%d)", s.Label, ns[i])
			}
		}
	}
	return c, errors.Join(errs...)
}

// readChipFixed reads what a chip keeps while it exists: its name, its
// device, its sensors' labels and which limit files each has.
func readChipFixed(dir string, files []string) chipFixed {
	nameB, err := os.ReadFile(filepath.Join(dir, "name"))
	chipName := strings.TrimSpace(string(nameB))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A driver that gives no name (node_exporter's fixture hwmon4, some
		// out-of-tree GPU drivers): name the chip after its directory, as
		// node_exporter does, rather than drop its sensors.
		chipName = filepath.Base(dir)
	case err != nil:
		return chipFixed{err: fmt.Errorf("%s: no chip name: %w", dir, errors.Unwrap(err))}
	}
	if chipName == "" || strings.ContainsAny(chipName, "\n\x00") || len(chipName) > 64 {
		return chipFixed{err: fmt.Errorf("%s/name: not a chip name", dir)}
	}
	if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
		chipName += "-" + filepath.Base(dev)
	}
	has := make(map[string]bool, len(files))
	for _, f := range files {
		has[f] = true
	}
	fx := chipFixed{name: chipName}
	for _, f := range files {
		prefix, ok := strings.CutSuffix(f, "_input")
		if !ok || !strings.HasPrefix(prefix, "temp") {
			continue
		}
		digits := prefix[len("temp"):]
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue // as ^temp(\d+)_input$
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			continue
		}
		t := temp{n: n, label: prefix, input: filepath.Join(dir, f)}
		if has[prefix+"_label"] {
			if b, err := os.ReadFile(filepath.Join(dir, prefix+"_label")); err == nil {
				if l := strings.TrimSpace(string(b)); l != "" && len(l) <= 64 && !strings.ContainsAny(l, "\n\x00") {
					t.label = l
				}
			}
		}
		if has[prefix+"_crit"] {
			t.crit = filepath.Join(dir, prefix+"_crit")
		}
		if has[prefix+"_max"] {
			t.max = filepath.Join(dir, prefix+"_max")
		}
		fx.temps = append(fx.temps, t)
	}
	sort.Slice(fx.temps, func(i, j int) bool { return fx.temps[i].n < fx.temps[j].n })
	return fx
}

// readMilli reads a millidegree Celsius file as degrees.
func readMilli(path string) (float64, error) {
	b, err := sysfile.Read(path)
	if err != nil {
		return 0, err
	}
	v, err := ParseMilli(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ParseMilli parses an integer number of thousandths (sysfs millidegrees).
func ParseMilli(b []byte) (float64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, errors.New("not a whole number of millidegrees")
	}
	return float64(v) / 1000, nil
}

// unavailable tells a sensor the driver cannot read right now.
func unavailable(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENODATA) ||
		errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENODEV)
}

// zones reads each thermal zone's temperature; its type and critical trip
// point are read once. (procfs's ClassThermalZoneStats reads five files per
// zone on every call, policy and mode included, which nothing here uses.)
func (h *Hwmon) zones(ch chan<- prometheus.Metric) error {
	dirs, err := filepath.Glob(h.cfg.Sys("class/thermal/thermal_zone[0-9]*"))
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, dir := range dirs {
		seen[dir] = true
		z, ok := h.zoneFix[dir]
		if !ok {
			b, err := os.ReadFile(filepath.Join(dir, "type"))
			if err != nil {
				if !unavailable(err) && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("%s: unreadable zone", dir))
				}
				continue
			}
			z.typ = strings.TrimSpace(string(b))
			if z.typ == "" || strings.ContainsAny(z.typ, "\n\x00") || len(z.typ) > 64 {
				errs = append(errs, fmt.Errorf("%s/type: not a zone type", dir))
				continue
			}
			z.critTemp = criticalTrip(dir)
			h.zoneFix[dir] = z
		}
		temp, err := readMilli(filepath.Join(dir, "temp"))
		if err != nil {
			// A zone whose sensor is asleep is left out.
			if !unavailable(err) {
				errs = append(errs, fmt.Errorf("%s: unreadable zone", dir))
			}
			continue
		}
		sensor := filepath.Base(dir)
		ch <- zoneTemperature.Const(temp, sensor, z.typ)
		if z.critTemp == "" {
			continue
		}
		crit, err := readMilli(z.critTemp)
		switch {
		case err == nil:
			ch <- zoneCritical.Const(crit, sensor, z.typ)
		case unavailable(err), errors.Is(err, os.ErrNotExist):
		default:
			errs = append(errs, err)
		}
	}
	for dir := range h.zoneFix {
		if !seen[dir] {
			delete(h.zoneFix, dir)
		}
	}
	return errors.Join(errs...)
}

// criticalTrip returns the path of the temperature of the zone's trip
// point of type "critical", "" when it has none.
func criticalTrip(dir string) string {
	types, _ := filepath.Glob(filepath.Join(dir, "trip_point_*_type"))
	sort.Strings(types)
	for _, tp := range types {
		b, err := os.ReadFile(tp)
		if err == nil && strings.TrimSpace(string(b)) == "critical" {
			return strings.TrimSuffix(tp, "_type") + "_temp"
		}
	}
	return ""
}

// readCount reads a thermal_throttle counter. (procfs's
// CPU.ThermalThrottle reads the same two files through os.ReadFile, five
// more system calls each; see sysfile.)
func readCount(path string) (uint64, error) {
	b, err := sysfile.Read(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// throttles sums the counters over distinct cores and packages: every
// logical CPU of a core repeats its core's count, and every CPU of a
// package its package's. Absent on AMD and in VMs: nothing is sent.
func (h *Hwmon) throttles(ch chan<- prometheus.Metric) error {
	cpus, err := h.sys.CPUs()
	if err != nil {
		return err
	}
	cores := map[string]uint64{}
	packages := map[string]uint64{}
	var errs []error
	for _, c := range cpus {
		// The topology first: a core's second thread repeats the count
		// its first one gave, so it is not read again.
		key, ok := h.topo[string(c)]
		if !ok {
			topo, err := c.Topology()
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/topology: %w", c, errors.Unwrap(err)))
				continue
			}
			key = topo.PhysicalPackageID + "/" + topo.CoreID
			h.topo[string(c)] = key
		}
		if _, done := cores[key]; done {
			continue
		}
		core, err := readCount(filepath.Join(string(c), "thermal_throttle", "core_throttle_count"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		pkg, _, _ := strings.Cut(key, "/")
		if _, done := packages[pkg]; err == nil && !done {
			// Every CPU of a package repeats its count: read it once.
			var n uint64
			if n, err = readCount(filepath.Join(string(c), "thermal_throttle", "package_throttle_count")); err == nil {
				packages[pkg] = n
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/thermal_throttle: unreadable counters", c))
			continue
		}
		cores[key] = core
	}
	if len(cores) > 0 {
		var core, pkg uint64
		for _, v := range cores {
			core += v
		}
		for _, v := range packages {
			pkg += v
		}
		ch <- throttles.Const(float64(core), "core")
		ch <- throttles.Const(float64(pkg), "package")
	}
	return errors.Join(errs...)
}
