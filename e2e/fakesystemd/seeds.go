package fakesystemd

import (
	"fmt"
	"strings"
)

// The seeds below are shaped after real machines: their timestamps are in
// the ranges systemd-analyze shows on such machines, and the property sets
// are those of the systemd versions they run (Server is Debian 12's
// systemd 252, which has no SoftRebootStartTimestampMonotonic).

// spec is a unit started at start ms after the manager's start taking took
// ms; state as ListUnits shows it.
type spec struct {
	name        string
	start, took uint64 // ms
	active, sub string
}

// units builds units whose activation began at base µs.
func units(base uint64, specs []spec) []Unit {
	var out []Unit
	for _, s := range specs {
		u := Unit{Name: s.name, Description: describe(s.name), LoadState: "loaded", ActiveState: s.active, SubState: s.sub}
		if s.active != "inactive" || s.took > 0 {
			u.InactiveExit = base + s.start*1000
		}
		switch s.active {
		case "active", "reloading":
			u.ActiveEnter = u.InactiveExit + s.took*1000
		case "activating":
			// started, not yet up
		case "failed":
			// failed while starting: never active, inactive (failed) after took
			u.InactiveEnter = u.InactiveExit + s.took*1000
			u.Result = "exit-code"
		case "inactive":
			if s.took > 0 { // a oneshot that ran and exited
				u.ActiveEnter = u.InactiveExit + s.took*1000
				u.ActiveExit = u.ActiveEnter
				u.InactiveEnter = u.ActiveEnter
			}
		}
		out = append(out, u)
	}
	return out
}

func describe(name string) string {
	base := name[:strings.LastIndexByte(name, '.')]
	return strings.ToUpper(base[:1]) + base[1:]
}

// maintenance are the NixOS maintenance timers and their services, last
// run at lastRun (realtime µs), next at next.
func maintenance(base, lastRun, next uint64) []Unit {
	timers := []struct{ timer, service, result string }{
		{"nix-gc.timer", "nix-gc.service", "success"},
		{"nix-optimise.timer", "nix-optimise.service", "success"},
		{"btrfs-scrub-home.timer", "btrfs-scrub-home.service", "exit-code"},
		{"snapper-timeline.timer", "snapper-timeline.service", "success"},
	}
	var out []Unit
	for i, t := range timers {
		out = append(out,
			Unit{Name: t.timer, Description: describe(t.timer), LoadState: "loaded", ActiveState: "active", SubState: "waiting",
				InactiveExit: base + 2000, ActiveEnter: base + 2000, TimerUnit: t.service,
				LastTriggerUSec: lastRun + uint64(i)*60_000_000, NextElapseRealtime: next + uint64(i)*3_600_000_000},
			Unit{Name: t.service, Description: describe(t.service), LoadState: "loaded", ActiveState: "inactive", SubState: "dead",
				Result: t.result},
		)
	}
	// A timer on a monotonic schedule (OnUnitActiveSec), e.g. tmpfiles clean.
	out = append(out, Unit{Name: "systemd-tmpfiles-clean.timer", Description: "Daily Cleanup of Temporary Directories",
		LoadState: "loaded", ActiveState: "active", SubState: "waiting", InactiveExit: base + 2100, ActiveEnter: base + 2100,
		TimerUnit: "systemd-tmpfiles-clean.service", NextElapseMonotonic: base + 900_000_000})
	return out
}

var desktopUnits = []spec{
	{"systemd-journald.service", 10, 95, "active", "running"},
	{"systemd-udevd.service", 40, 210, "active", "running"},
	{"systemd-udev-trigger.service", 45, 1480, "active", "exited"},
	{"systemd-tmpfiles-setup.service", 300, 42, "active", "exited"},
	{"systemd-remount-fs.service", 20, 31, "active", "exited"},
	{"systemd-modules-load.service", 12, 120, "active", "exited"},
	{"systemd-random-seed.service", 340, 18, "active", "exited"},
	{"systemd-logind.service", 1900, 154, "active", "running"},
	{"systemd-timesyncd.service", 1850, 97, "active", "running"},
	{"systemd-resolved.service", 1850, 233, "active", "running"},
	{"dbus.service", 1890, 61, "active", "running"},
	{"NetworkManager.service", 1900, 812, "active", "running"},
	{"NetworkManager-wait-online.service", 2720, 5314, "active", "exited"},
	{"nix-daemon.service", 1960, 23, "active", "running"},
	{"nscd.service", 1910, 45, "active", "running"},
	{"firewall.service", 1880, 688, "active", "exited"},
	{"home-manager-alice.service", 2100, 3021, "active", "exited"},
	{"display-manager.service", 2400, 402, "active", "running"},
	{"bluetooth.service", 1950, 139, "active", "running"},
	{"upower.service", 2500, 177, "active", "running"},
	{"accounts-daemon.service", 1950, 266, "active", "running"},
	{"polkit.service", 1960, 158, "active", "running"},
	{"podman.socket", 1800, 1, "active", "listening"},
	{"dbus.socket", 1800, 2, "active", "listening"},
	{"boot.mount", 600, 71, "active", "mounted"},
	{"home.mount", 610, 23, "active", "mounted"},
	{"nix-store.mount", 605, 9, "active", "mounted"},
	{"systemd-fsck@dev-disk-by\\x2duuid-1234\\x2dABCD.service", 400, 185, "active", "exited"},
	{"dev-nvme0n1p2.swap", 700, 139, "active", "active"},
	{"sysinit.target", 900, 0, "active", "active"},
	{"basic.target", 1800, 0, "active", "active"},
	{"multi-user.target", 7000, 0, "active", "active"},
	{"graphical.target", 8034, 0, "active", "active"},
	{"cups.service", 0, 0, "inactive", "dead"},
	{"logrotate.service", 1950, 412, "inactive", "dead"},
	{"fwupd-refresh.service", 2700, 930, "failed", "failed"},
}

// Laptop is a UEFI NixOS laptop booted through systemd-boot with a systemd
// initrd, on systemd 256: "Startup finished in 7.162s (firmware) + 2.513s
// (loader) + 1.234567s (kernel) + 3.201323s (initrd) + 12.345344s
// (userspace) = 26.456234s".
func Laptop() Seed {
	const user = 4_435_890
	return Seed{
		Name:           "laptop",
		Version:        "256.10",
		Virtualization: "",
		DefaultTarget:  "graphical.target",
		Manager: map[string]uint64{
			"FirmwareTimestampMonotonic":               9_675_000,
			"LoaderTimestampMonotonic":                 2_513_000,
			"KernelTimestamp":                          1_795_593_600_000_000,
			"InitRDTimestampMonotonic":                 1_234_567,
			"UserspaceTimestampMonotonic":              user,
			"FinishTimestampMonotonic":                 16_781_234,
			"SecurityStartTimestampMonotonic":          4_441_203,
			"SecurityFinishTimestampMonotonic":         4_452_871,
			"GeneratorsStartTimestampMonotonic":        4_510_222,
			"GeneratorsFinishTimestampMonotonic":       4_587_390,
			"UnitsLoadStartTimestampMonotonic":         4_587_501,
			"UnitsLoadFinishTimestampMonotonic":        4_690_777,
			"SoftRebootStartTimestampMonotonic":        0,
			"InitRDSecurityStartTimestampMonotonic":    1_240_011,
			"InitRDSecurityFinishTimestampMonotonic":   1_249_876,
			"InitRDGeneratorsStartTimestampMonotonic":  1_290_000,
			"InitRDGeneratorsFinishTimestampMonotonic": 1_331_234,
			"InitRDUnitsLoadStartTimestampMonotonic":   1_331_300,
			"InitRDUnitsLoadFinishTimestampMonotonic":  1_372_050,
		},
		Units: append(units(user, desktopUnits), maintenance(user, 1_795_600_000_000_000, 1_795_700_000_000_000)...),
	}
}

// Server is a BIOS server without an initrd on Debian 12's systemd 252:
// no firmware or loader times, no initrd, and none of the properties
// systemd 252 lacks (SoftRebootStart, the InitRD* phases).
func Server() Seed {
	const user = 1_890_123
	specs := []spec{
		{"systemd-journald.service", 8, 61, "active", "running"},
		{"systemd-udevd.service", 30, 144, "active", "running"},
		{"systemd-udev-trigger.service", 31, 902, "active", "exited"},
		{"systemd-networkd.service", 1300, 211, "active", "running"},
		{"systemd-networkd-wait-online.service", 1520, 20012, "active", "exited"},
		{"ssh.service", 1400, 88, "active", "running"},
		{"prometheus-node-exporter.service", 1400, 34, "active", "running"},
		{"postgresql.service", 1500, 1741, "active", "running"},
		{"nix-daemon.service", 1400, 19, "active", "running"},
		{"var-lib.mount", 500, 1203, "active", "mounted"},
		{"multi-user.target", 23200, 0, "active", "active"},
		{"rsyslog.service", 1400, 0, "inactive", "dead"},
	}
	return Seed{
		Name:          "server",
		Version:       "252.38-1~deb12u1",
		DefaultTarget: "multi-user.target",
		Manager: map[string]uint64{
			"FirmwareTimestampMonotonic":         0,
			"LoaderTimestampMonotonic":           0,
			"KernelTimestamp":                    1_795_593_600_000_000,
			"InitRDTimestampMonotonic":           0,
			"UserspaceTimestampMonotonic":        user,
			"FinishTimestampMonotonic":           25_101_234,
			"SecurityStartTimestampMonotonic":    1_893_002,
			"SecurityFinishTimestampMonotonic":   1_893_870,
			"GeneratorsStartTimestampMonotonic":  1_950_447,
			"GeneratorsFinishTimestampMonotonic": 2_004_913,
			"UnitsLoadStartTimestampMonotonic":   2_005_010,
			"UnitsLoadFinishTimestampMonotonic":  2_061_498,
		},
		Units: append(units(user, specs), maintenance(user, 1_795_600_000_000_000, 1_795_700_000_000_000)...),
	}
}

// Container is a systemd 256 system manager in a container (nspawn or
// podman --systemd) started 8 min after the host: no security or firmware
// times, and every time counts from the container's userspace start.
func Container() Seed {
	const user = 523_456_789
	specs := []spec{
		{"systemd-journald.service", 12, 41, "active", "running"},
		{"systemd-networkd.service", 200, 71, "active", "running"},
		{"nginx.service", 300, 412, "active", "running"},
		{"systemd-tmpfiles-setup.service", 100, 29, "active", "exited"},
		{"multi-user.target", 1830, 0, "active", "active"},
	}
	return Seed{
		Name:           "container",
		Version:        "256.10",
		Virtualization: "podman",
		DefaultTarget:  "multi-user.target",
		Manager: map[string]uint64{
			"FirmwareTimestampMonotonic":         0,
			"LoaderTimestampMonotonic":           0,
			"KernelTimestamp":                    1_795_593_600_000_000,
			"InitRDTimestampMonotonic":           0,
			"UserspaceTimestampMonotonic":        user,
			"FinishTimestampMonotonic":           user + 1_834_000,
			"SecurityStartTimestampMonotonic":    0,
			"SecurityFinishTimestampMonotonic":   0,
			"GeneratorsStartTimestampMonotonic":  user + 10_111,
			"GeneratorsFinishTimestampMonotonic": user + 21_456,
			"UnitsLoadStartTimestampMonotonic":   user + 21_500,
			"UnitsLoadFinishTimestampMonotonic":  user + 40_800,
			"SoftRebootStartTimestampMonotonic":  0,
		},
		Units: units(user, specs),
	}
}

// Booting is the Laptop 3 s into userspace: FinishTimestampMonotonic is 0,
// graphical.target not reached, NetworkManager-wait-online still
// activating. FinishBoot(16_781_234) and activating the rest makes it the
// Laptop.
func Booting() Seed {
	s := Laptop()
	s.Name = "booting"
	s.Manager["FinishTimestampMonotonic"] = 0
	now := s.Manager["UserspaceTimestampMonotonic"] + 3_000_000
	for i := range s.Units {
		u := &s.Units[i]
		if u.InactiveExit > now {
			*u = Unit{Name: u.Name, Description: u.Description, LoadState: "loaded", ActiveState: "inactive", SubState: "dead",
				TimerUnit: u.TimerUnit}
			continue
		}
		if u.ActiveEnter > now || u.InactiveEnter > now {
			u.ActiveEnter, u.ActiveExit, u.InactiveEnter, u.Result = 0, 0, 0, ""
			u.ActiveState, u.SubState = "activating", "start"
		}
	}
	return s
}

// SoftRebooted is the Laptop a day after boot, after `systemctl
// soft-reboot`: the firmware..initrd times are the first boot's, userspace
// restarted at SoftRebootStart.
func SoftRebooted() Seed {
	s := Laptop()
	s.Name = "soft-reboot"
	const sr = 86_400_000_000
	s.Manager["SoftRebootStartTimestampMonotonic"] = sr
	s.Manager["UserspaceTimestampMonotonic"] = sr + 1_523_000
	s.Manager["FinishTimestampMonotonic"] = sr + 1_523_000 + 6_102_345
	s.Manager["GeneratorsStartTimestampMonotonic"] = sr + 1_600_000
	s.Manager["GeneratorsFinishTimestampMonotonic"] = sr + 1_670_000
	s.Manager["UnitsLoadStartTimestampMonotonic"] = sr + 1_670_100
	s.Manager["UnitsLoadFinishTimestampMonotonic"] = sr + 1_760_000
	user := s.Manager["UserspaceTimestampMonotonic"]
	s.Units = append(units(user, desktopUnits), maintenance(user, 1_795_600_000_000_000, 1_795_700_000_000_000)...)
	// A unit activated before the soft reboot and not since: blame skips it.
	s.Units = append(s.Units, Unit{Name: "systemd-fsck-root.service", Description: "File System Check on Root Device",
		LoadState: "loaded", ActiveState: "active", SubState: "exited", InactiveExit: 1_500_000, ActiveEnter: 1_810_000})
	return s
}

// Workstation is the Laptop with n units in all (n >= 50), the size of a
// NixOS workstation (about 300), for benchmarks.
func Workstation(n int) Seed {
	s := Laptop()
	s.Name = fmt.Sprintf("workstation-%d", n)
	user := s.Manager["UserspaceTimestampMonotonic"]
	var specs []spec
	for i := 0; len(s.Units)+len(specs) < n; i++ {
		kinds := []struct{ suffix, active, sub string }{
			{".service", "active", "running"}, {".service", "active", "exited"}, {".mount", "active", "mounted"},
			{".device", "active", "plugged"}, {".service", "inactive", "dead"}, {".socket", "active", "listening"},
		}
		k := kinds[i%len(kinds)]
		took := uint64(0)
		if k.active == "active" {
			took = uint64(5 + (i*37)%900)
		}
		specs = append(specs, spec{fmt.Sprintf("extra-%03d%s", i, k.suffix), uint64(500 + (i*53)%6000), took, k.active, k.sub})
	}
	s.Units = append(s.Units, units(user, specs)...)
	return s
}
