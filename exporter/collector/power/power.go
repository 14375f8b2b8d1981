// Package power reports /sys/class/power_supply: whether AC (and USB-C
// power) is online, and for each battery its charge, its health (how much
// it holds when full against what it was designed for), its charge cycles
// and its status. node_exporter's powersupplyclass collector reads the same
// files.
//
// The files are read here, not with procfs's sysfs.PowerSupplyClass: that
// fails the whole class when one supply has an unreadable file and drops a
// garbled value without a word, where a bad battery file must be an error
// naming that battery while the others are still reported.
package power

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/sysfile"
)

const name = "power"

var (
	online = collector.Gauge(name, "power_supply_online",
		"1 when a power source (AC adapter, USB-C/USB power) is connected and supplying, 0 when not (power_supply online file).",
		"supply")
	capacity = collector.Gauge(name, "battery_capacity_ratio",
		"Charge of a battery, 0..1 of what it holds when full (capacity file / 100).", "supply")
	health = collector.Gauge(name, "battery_health_ratio",
		"What a battery holds when full against what it was designed to hold (energy_full / energy_full_design, or charge_full / charge_full_design); wear lowers it.",
		"supply")
	cycles = collector.Gauge(name, "battery_cycles",
		"Charge cycles a battery has counted (cycle_count); absent when the firmware does not count.", "supply")
	status = collector.Gauge(name, "battery_status",
		"1 for the battery's current status (state: charging, discharging, full, not_charging, unknown), 0 for the others.",
		"supply", "state")
)

// states are the values of the kernel's status file, as label values.
var states = map[string]string{
	"Charging":     "charging",
	"Discharging":  "discharging",
	"Full":         "full",
	"Not charging": "not_charging",
	"Unknown":      "unknown",
}

func init() {
	collector.Register(name, true, func(cfg collector.Config) (collector.Collector, error) {
		return &Power{cfg: cfg}, nil
	})
}

// Power is the power collector.
type Power struct{ cfg collector.Config }

// Update reads every supply; one that cannot be read is named in the
// error and the others are still sent.
func (p *Power) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	supplies, err := ReadSupplies(p.cfg.Sys("class/power_supply"))
	for _, s := range supplies {
		if s.Online != nil {
			ch <- online.Const(*s.Online, s.Name)
		}
		if s.Type != "Battery" {
			continue
		}
		if s.Capacity != nil {
			ch <- capacity.Const(*s.Capacity, s.Name)
		}
		if s.Health != nil {
			ch <- health.Const(*s.Health, s.Name)
		}
		if s.Cycles != nil {
			ch <- cycles.Const(*s.Cycles, s.Name)
		}
		if s.Status != "" {
			for _, st := range sortedStates() {
				v := 0.0
				if st == s.Status {
					v = 1
				}
				ch <- status.Const(v, s.Name, st)
			}
		}
	}
	return err
}

func sortedStates() []string {
	out := make([]string, 0, len(states))
	for _, v := range states {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Supply is what the collector reads of one power supply.
type Supply struct {
	Name     string
	Type     string // Mains, Battery, USB, ...
	Online   *float64
	Capacity *float64 // 0..1
	Health   *float64 // 0..1
	Cycles   *float64
	Status   string // a value of states
}

// ReadSupplies reads every supply under dir. No directory: a host without
// supplies (a server, a VM).
func ReadSupplies(dir string) ([]Supply, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Supply
	var errs []error
	for _, e := range entries {
		s, err := readSupply(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
		}
		if s.Type == "" {
			continue
		}
		// What could be read of a supply with one bad file is kept.
		s.Name = e.Name()
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// readSupply reads one supply directory. Files a supply lacks are left
// out; files the driver cannot read now (EIO, ENODATA, ENODEV: a battery
// being removed, an EC that does not answer) too; a file that reads but
// is not what the kernel writes is an error naming the file.
func readSupply(dir string) (Supply, error) {
	var s Supply
	var err error
	if s.Type, err = readString(dir, "type"); err != nil {
		return s, err
	}
	if s.Type == "" {
		return s, fmt.Errorf("%s: no type", dir)
	}
	var errs []error
	num := func(file string) *float64 {
		v, err := readNumber(dir, file)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	s.Online = num("online")
	if s.Type == "Battery" {
		// Peripheral batteries (scope Device: mice, headsets) also report
		// online, meaning connected; only the host's power sources keep it.
		s.Online = nil
		if c := num("capacity"); c != nil {
			v := *c / 100
			s.Capacity = &v
		}
		s.Cycles = num("cycle_count")
		full, design := num("energy_full"), num("energy_full_design")
		if full == nil || design == nil {
			full, design = num("charge_full"), num("charge_full_design")
		}
		if full != nil && design != nil && *design > 0 {
			v := *full / *design
			s.Health = &v
		}
		st, err := readString(dir, "status")
		switch {
		case err != nil:
			errs = append(errs, err)
		case st == "":
		default:
			var ok bool
			if s.Status, ok = states[st]; !ok {
				errs = append(errs, fmt.Errorf("%s/status: not a known battery status", dir))
			}
		}
	}
	return s, errors.Join(errs...)
}

// readString reads a one-line file; "" when it is absent or unreadable now.
func readString(dir, file string) (string, error) {
	b, err := sysfile.Read(filepath.Join(dir, file))
	if err != nil {
		if gone(err) {
			return "", nil
		}
		return "", fmt.Errorf("%s/%s: %w", dir, file, errors.Unwrap(err))
	}
	v := strings.TrimSpace(string(b))
	if strings.ContainsAny(v, "\n\x00") || len(v) > 64 {
		return "", fmt.Errorf("%s/%s: not a one-line value", dir, file)
	}
	return v, nil
}

// readNumber reads an integer file; nil when it is absent or unreadable now.
func readNumber(dir, file string) (*float64, error) {
	b, err := sysfile.Read(filepath.Join(dir, file))
	if err != nil {
		if gone(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s/%s: %w", dir, file, errors.Unwrap(err))
	}
	v, err := ParseNumber(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", dir, file, err)
	}
	return &v, nil
}

// ParseNumber parses a power_supply integer attribute (µWh, µAh, %, count).
func ParseNumber(b []byte) (float64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, errors.New("not a whole number")
	}
	return float64(v), nil
}

func gone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENODATA) ||
		errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.EAGAIN) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL)
}
