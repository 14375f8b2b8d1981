package boot

import (
	"math"

	"github.com/godbus/dbus/v5"
)

// usecInfinity is systemd's USEC_INFINITY, "never" in a timestamp.
const usecInfinity = math.MaxUint64

// timestampIsSet is systemd's timestamp_is_set().
func timestampIsSet(t uint64) bool { return t > 0 && t != usecInfinity }

// BootTimes are the manager's boot timestamps, in µs of CLOCK_MONOTONIC (the
// firmware and loader ones count backwards from the kernel start). A
// property the running systemd lacks stays 0, as it does in
// systemd-analyze's bus_map_all_properties.
type BootTimes struct {
	Firmware, Loader, Kernel, InitRD, Userspace, Finish uint64

	SecurityStart, SecurityFinish     uint64
	GeneratorsStart, GeneratorsFinish uint64
	UnitsLoadStart, UnitsLoadFinish   uint64
	SoftRebootStart                   uint64

	InitRDSecurityStart, InitRDSecurityFinish     uint64
	InitRDGeneratorsStart, InitRDGeneratorsFinish uint64
	InitRDUnitsLoadStart, InitRDUnitsLoadFinish   uint64
}

// bootProperties maps the Manager properties systemd-analyze reads
// (src/analyze/analyze-time-data.c, acquire_boot_times) to BootTimes.
var bootProperties = []struct {
	name  string
	field func(*BootTimes) *uint64
}{
	{"FirmwareTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.Firmware }},
	{"LoaderTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.Loader }},
	{"KernelTimestamp", func(t *BootTimes) *uint64 { return &t.Kernel }},
	{"InitRDTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRD }},
	{"UserspaceTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.Userspace }},
	{"FinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.Finish }},
	{"SecurityStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.SecurityStart }},
	{"SecurityFinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.SecurityFinish }},
	{"SoftRebootStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.SoftRebootStart }},
	{"GeneratorsStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.GeneratorsStart }},
	{"GeneratorsFinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.GeneratorsFinish }},
	{"UnitsLoadStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.UnitsLoadStart }},
	{"UnitsLoadFinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.UnitsLoadFinish }},
	{"InitRDSecurityStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRDSecurityStart }},
	{"InitRDSecurityFinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRDSecurityFinish }},
	{"InitRDGeneratorsStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRDGeneratorsStart }},
	{"InitRDGeneratorsFinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRDGeneratorsFinish }},
	{"InitRDUnitsLoadStartTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRDUnitsLoadStart }},
	{"InitRDUnitsLoadFinishTimestampMonotonic", func(t *BootTimes) *uint64 { return &t.InitRDUnitsLoadFinish }},
}

// ParseBootTimes reads the Manager's properties (as GetAll returns them).
// Properties that are absent (an older systemd) or not of type t are
// skipped and listed in missing.
func ParseBootTimes(props map[string]dbus.Variant) (t BootTimes, missing []string) {
	for _, p := range bootProperties {
		v, ok := props[p.name]
		if !ok {
			missing = append(missing, p.name)
			continue
		}
		u, ok := v.Value().(uint64)
		if !ok {
			missing = append(missing, p.name)
			continue
		}
		*p.field(&t) = u
	}
	return t, missing
}

// Context is how the boot is seen, the cases of acquire_boot_times.
type Context int

const (
	// Host: a system manager outside a container (SecurityStart is set).
	Host Context = iota
	// Container: a system manager in a container; times count from its start.
	Container
	// SoftReboot: userspace was restarted with systemctl soft-reboot; the
	// firmware, loader, kernel and initrd times are from the previous boot.
	SoftReboot
)

func (c Context) String() string {
	switch c {
	case Container:
		return "container"
	case SoftReboot:
		return "soft-reboot"
	}
	return "host"
}

// Duration is one named span, in µs.
type Duration struct {
	Name string
	Usec uint64
}

// Analysis is what systemd-analyze makes of BootTimes.
type Analysis struct {
	Context  Context
	Finished bool // FinishTimestampMonotonic is set; else "Bootup is not yet finished"
	// Times after systemd's adjustments: zeroed fields, reverse offset taken
	// off, KernelDone set on a host.
	Times         BootTimes
	KernelDone    uint64
	ReverseOffset uint64
	// Stages as `systemd-analyze time` prints them, in its order: firmware,
	// loader, kernel, initrd, soft_reboot, userspace, total. Only those it
	// prints (see Analyze for total).
	Stages []Duration
	// Phases are the manager's own steps that `systemd-analyze plot` draws:
	// security, generators, units_load and their initrd_ twins, where both
	// ends are set.
	Phases []Duration
}

// subtract is systemd's subtract_timestamp, made total: systemd asserts
// a >= b, here a smaller a (inconsistent input) becomes 0.
func subtract(a *uint64, b uint64) {
	if *a == 0 {
		return
	}
	if *a < b {
		*a = 0
		return
	}
	*a -= b
}

// Analyze applies acquire_boot_times and pretty_boot_time of
// src/analyze/analyze-time-data.c for the system manager.
//
// Where systemd prints "= total" (a host boot: firmware + finish), total is
// that. In a container or after a soft reboot systemd prints no total; there
// total is the whole span from the manager's (re)start to finish, which
// equals the userspace (+ soft_reboot) stages, so that dashboards always
// have one figure. Spans that would be negative (inconsistent input, where
// systemd's unsigned arithmetic would print nonsense) are left out.
func Analyze(raw BootTimes) Analysis {
	t := raw
	a := Analysis{}
	switch {
	case timestampIsSet(t.SoftRebootStart):
		a.Context = SoftReboot
		t.Firmware, t.Loader, t.Kernel, t.InitRD = 0, 0, 0, 0
		t.InitRDSecurityStart, t.InitRDSecurityFinish = 0, 0
		t.InitRDGeneratorsStart, t.InitRDGeneratorsFinish = 0, 0
		t.InitRDUnitsLoadStart, t.InitRDUnitsLoadFinish = 0, 0
		a.ReverseOffset = t.SoftRebootStart
		if timestampIsSet(t.Finish) {
			subtract(&t.Finish, a.ReverseOffset)
		}
		subtract(&t.Userspace, a.ReverseOffset)
		subtract(&t.GeneratorsStart, a.ReverseOffset)
		subtract(&t.GeneratorsFinish, a.ReverseOffset)
		subtract(&t.UnitsLoadStart, a.ReverseOffset)
		subtract(&t.UnitsLoadFinish, a.ReverseOffset)
	case timestampIsSet(t.SecurityStart):
		a.Context = Host
		if t.InitRD > 0 {
			a.KernelDone = t.InitRD
		} else {
			a.KernelDone = t.Userspace
		}
	default:
		a.Context = Container
		a.ReverseOffset = t.Userspace
		t.Firmware, t.Loader, t.Kernel, t.InitRD = 0, 0, 0, 0
		t.Userspace, t.SecurityStart, t.SecurityFinish = 0, 0, 0
		if t.Finish > 0 {
			subtract(&t.Finish, a.ReverseOffset)
		}
		subtract(&t.GeneratorsStart, a.ReverseOffset)
		subtract(&t.GeneratorsFinish, a.ReverseOffset)
		subtract(&t.UnitsLoadStart, a.ReverseOffset)
		subtract(&t.UnitsLoadFinish, a.ReverseOffset)
	}
	a.Times = t
	a.Finished = t.Finish > 0 && t.Finish != usecInfinity

	add := func(name string, from, to uint64) {
		if to >= from {
			a.Stages = append(a.Stages, Duration{name, to - from})
		}
	}
	if timestampIsSet(t.Firmware) {
		add("firmware", t.Loader, t.Firmware)
	}
	if timestampIsSet(t.Loader) {
		add("loader", 0, t.Loader)
	}
	if timestampIsSet(a.KernelDone) {
		add("kernel", 0, a.KernelDone)
	}
	if timestampIsSet(t.InitRD) {
		add("initrd", t.InitRD, t.Userspace)
	}
	if timestampIsSet(t.SoftRebootStart) {
		add("soft_reboot", 0, t.Userspace)
	}
	if a.Finished {
		add("userspace", t.Userspace, t.Finish)
		if timestampIsSet(a.KernelDone) {
			if t.Firmware <= math.MaxUint64-t.Finish {
				add("total", 0, t.Firmware+t.Finish)
			}
		} else {
			add("total", 0, t.Finish)
		}
	}

	phase := func(name string, start, finish uint64) {
		if timestampIsSet(start) && timestampIsSet(finish) && finish >= start {
			a.Phases = append(a.Phases, Duration{name, finish - start})
		}
	}
	phase("initrd_security", t.InitRDSecurityStart, t.InitRDSecurityFinish)
	phase("initrd_generators", t.InitRDGeneratorsStart, t.InitRDGeneratorsFinish)
	phase("initrd_units_load", t.InitRDUnitsLoadStart, t.InitRDUnitsLoadFinish)
	phase("security", t.SecurityStart, t.SecurityFinish)
	phase("generators", t.GeneratorsStart, t.GeneratorsFinish)
	phase("units_load", t.UnitsLoadStart, t.UnitsLoadFinish)
	return a
}

// DefaultTargetReached is the "default.target reached after X in
// userspace" of pretty_boot_time: activated is default.target's
// ActiveEnterTimestampMonotonic. ok is false when systemd prints no time.
func (a Analysis) DefaultTargetReached(activated uint64) (usec uint64, ok bool) {
	if !timestampIsSet(activated) {
		return 0, false
	}
	t := a.Times
	var base uint64
	if timestampIsSet(t.SoftRebootStart) && timestampIsSet(t.Userspace) {
		base = t.Userspace + a.ReverseOffset
	} else if timestampIsSet(t.Userspace) {
		base = t.Userspace
	} else {
		base = a.ReverseOffset
	}
	if activated < base {
		return 0, false
	}
	return activated - base, true
}

// UnitTimes are a unit's org.freedesktop.systemd1.Unit timestamps, in µs of
// CLOCK_MONOTONIC.
type UnitTimes struct {
	Activating   uint64 // InactiveExitTimestampMonotonic
	Activated    uint64 // ActiveEnterTimestampMonotonic
	Deactivating uint64 // ActiveExitTimestampMonotonic
	Deactivated  uint64 // InactiveEnterTimestampMonotonic
}

// unitProperties are the Unit properties blame reads.
var unitProperties = []struct {
	name  string
	field func(*UnitTimes) *uint64
}{
	{"InactiveExitTimestampMonotonic", func(t *UnitTimes) *uint64 { return &t.Activating }},
	{"ActiveEnterTimestampMonotonic", func(t *UnitTimes) *uint64 { return &t.Activated }},
	{"ActiveExitTimestampMonotonic", func(t *UnitTimes) *uint64 { return &t.Deactivating }},
	{"InactiveEnterTimestampMonotonic", func(t *UnitTimes) *uint64 { return &t.Deactivated }},
}

// ParseUnitTimes reads a unit's properties; absent or mistyped ones stay 0.
func ParseUnitTimes(props map[string]dbus.Variant) UnitTimes {
	var t UnitTimes
	for _, p := range unitProperties {
		if v, ok := props[p.name]; ok {
			if u, ok := v.Value().(uint64); ok {
				*p.field(&t) = u
			}
		}
	}
	return t
}

// Blame is a unit's activation time as acquire_time_data computes it and
// `systemd-analyze blame` prints it; ok is false for a unit blame leaves out
// (never activated, activated before a soft reboot, or a time of 0).
func (a Analysis) Blame(u UnitTimes) (usec uint64, ok bool) {
	sr := a.Times.SoftRebootStart
	if (u.Activated > 0 && u.Activated < sr) || (u.Activating > 0 && u.Activating < sr) {
		return 0, false
	}
	off := a.ReverseOffset
	subtract(&u.Activating, off)
	subtract(&u.Activated, off)
	if timestampIsSet(sr) {
		for _, p := range []*uint64{&u.Deactivating, &u.Deactivated} {
			if *p < off {
				*p = 0
			} else {
				subtract(p, off)
			}
		}
	} else {
		subtract(&u.Deactivating, off)
		subtract(&u.Deactivated, off)
	}
	var t uint64
	switch {
	case u.Activated >= u.Activating:
		t = u.Activated - u.Activating
	case u.Deactivated >= u.Activating:
		t = u.Deactivated - u.Activating
	}
	if u.Activating == 0 || t == 0 {
		return 0, false
	}
	return t, true
}
