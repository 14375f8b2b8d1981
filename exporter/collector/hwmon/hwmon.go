// Package hwmon reports temperatures: every hwmon temperature sensor with
// the thresholds the driver gives (/sys/class/hwmon), the thermal zones
// with their critical trip point (/sys/class/thermal), and how often the
// CPUs throttled themselves for heat (Intel's thermal_throttle counters).
// These are node_exporter's hwmon and thermal_zone collectors and the
// throttle part of its cpu collector.
//
// Thermal zones and throttle counters are read with prometheus/procfs's
// sysfs package; procfs has no hwmon reader, so hwmon is read here, as
// node_exporter does.
package hwmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/pantheros/monitoring/exporter/collector"
)

const name = "hwmon"

var (
	temperature = collector.Gauge(name, "hwmon_temperature_celsius",
		"Temperature of an hwmon sensor (tempN_input). chip is the driver's name plus its device (coretemp-coretemp.0, k10temp-0000:00:18.3, nvme-nvme0), sensor the driver's label (Package id 0, Tctl, Composite) or tempN when it has none.",
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
type Hwmon struct {
	cfg    collector.Config
	logger *slog.Logger
	sys    sysfs.FS
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
	return &Hwmon{cfg: cfg, logger: logger, sys: fs}, nil
}

// Update reads the three sources; a chip, zone or CPU that cannot be read
// is named in the error and the others are still sent.
func (h *Hwmon) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	var errs []error
	chips, err := ReadChips(h.cfg.Sys("class/hwmon"))
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

var tempInput = regexp.MustCompile(`^temp(\d+)_input$`)

// ReadChips reads every hwmonN directory under dir. A directory that does
// not exist means no hwmon at all (a VM, a server without sensors).
func ReadChips(dir string) ([]Chip, error) {
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
		c, err := readChip(filepath.Join(dir, e.Name()))
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
func readChip(dir string) (Chip, error) {
	nameB, err := os.ReadFile(filepath.Join(dir, "name"))
	if err != nil {
		return Chip{}, fmt.Errorf("%s: no chip name: %w", dir, errors.Unwrap(err))
	}
	chipName := strings.TrimSpace(string(nameB))
	if chipName == "" || strings.ContainsAny(chipName, "\n\x00") || len(chipName) > 64 {
		return Chip{}, fmt.Errorf("%s/name: not a chip name", dir)
	}
	if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
		chipName += "-" + filepath.Base(dev)
	}
	c := Chip{Name: chipName}
	files, err := os.ReadDir(dir)
	if err != nil {
		return c, fmt.Errorf("%s: %w", dir, errors.Unwrap(err))
	}
	type indexed struct {
		n int
		s Sensor
	}
	var sensors []indexed
	var errs []error
	labels := map[string]int{}
	for _, f := range files {
		m := tempInput.FindStringSubmatch(f.Name())
		if m == nil {
			continue
		}
		prefix := "temp" + m[1]
		input, err := readMilli(filepath.Join(dir, f.Name()))
		if err != nil {
			if !unavailable(err) {
				errs = append(errs, err)
			}
			continue
		}
		s := Sensor{Label: prefix, Input: input}
		if b, err := os.ReadFile(filepath.Join(dir, prefix+"_label")); err == nil {
			if l := strings.TrimSpace(string(b)); l != "" && len(l) <= 64 && !strings.ContainsAny(l, "\n\x00") {
				s.Label = l
			}
		}
		for _, limit := range []struct {
			suffix string
			into   **float64
		}{{"_crit", &s.Crit}, {"_max", &s.Max}} {
			v, err := readMilli(filepath.Join(dir, prefix+limit.suffix))
			switch {
			case err == nil:
				*limit.into = &v
			case errors.Is(err, os.ErrNotExist), unavailable(err):
			default:
				errs = append(errs, err)
			}
		}
		labels[s.Label]++
		n, _ := strconv.Atoi(m[1])
		sensors = append(sensors, indexed{n, s})
	}
	sort.Slice(sensors, func(i, j int) bool { return sensors[i].n < sensors[j].n })
	for _, is := range sensors {
		s := is.s
		if labels[s.Label] > 1 { // one label on two inputs: keep both apart
			s.Label = fmt.Sprintf("%s (temp%d)", s.Label, is.n)
		}
		c.Sensors = append(c.Sensors, s)
	}
	return c, errors.Join(errs...)
}

// readMilli reads a millidegree Celsius file as degrees.
func readMilli(path string) (float64, error) {
	b, err := os.ReadFile(path)
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

func (h *Hwmon) zones(ch chan<- prometheus.Metric) error {
	zones, err := h.sys.ClassThermalZoneStats()
	if err != nil {
		return fmt.Errorf("%s: %w", h.cfg.Sys("class/thermal"), err)
	}
	var errs []error
	for _, z := range zones {
		dir := h.cfg.Sys("class/thermal", "thermal_zone"+z.Name)
		sensor := "thermal_zone" + z.Name
		if z.ReadErrors != nil {
			// A zone whose temp cannot be read (a sensor asleep) is left
			// out; anything else names the zone, without the file's bytes.
			if !unavailable(z.ReadErrors) {
				errs = append(errs, fmt.Errorf("%s: unreadable zone", dir))
			}
			continue
		}
		ch <- zoneTemperature.Const(float64(z.Temp)/1000, sensor, z.Type)
		crit, err := criticalTrip(dir)
		if err != nil {
			errs = append(errs, err)
		}
		if crit != nil {
			ch <- zoneCritical.Const(*crit, sensor, z.Type)
		}
	}
	return errors.Join(errs...)
}

// criticalTrip returns the temperature of the zone's trip point of type
// "critical", nil when it has none.
func criticalTrip(dir string) (*float64, error) {
	types, _ := filepath.Glob(filepath.Join(dir, "trip_point_*_type"))
	sort.Strings(types)
	for _, tp := range types {
		b, err := os.ReadFile(tp)
		if err != nil || strings.TrimSpace(string(b)) != "critical" {
			continue
		}
		v, err := readMilli(strings.TrimSuffix(tp, "_type") + "_temp")
		if err != nil {
			if unavailable(err) || errors.Is(err, os.ErrNotExist) {
				return nil, nil
			}
			return nil, err
		}
		return &v, nil
	}
	return nil, nil
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
		t, err := c.ThermalThrottle()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/thermal_throttle: unreadable counters", c))
			continue
		}
		topo, err := c.Topology()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/topology: %w", c, errors.Unwrap(err)))
			continue
		}
		cores[topo.PhysicalPackageID+"/"+topo.CoreID] = t.CoreThrottleCount
		packages[topo.PhysicalPackageID] = t.PackageThrottleCount
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
