//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

// expectedStages works out `systemd-analyze time` from the seed's Manager
// properties with systemd's arithmetic (src/analyze/analyze-time-data.c),
// in µs; total in a container or after a soft reboot is the exporter's
// documented extension (manager start to finish).
func expectedStages(s fakesystemd.Seed) map[string]uint64 {
	m := s.Manager
	fw, ld, rd, us, fin := m["FirmwareTimestampMonotonic"], m["LoaderTimestampMonotonic"],
		m["InitRDTimestampMonotonic"], m["UserspaceTimestampMonotonic"], m["FinishTimestampMonotonic"]
	out := map[string]uint64{}
	switch {
	case m["SoftRebootStartTimestampMonotonic"] > 0:
		sr := m["SoftRebootStartTimestampMonotonic"]
		out["soft_reboot"] = us - sr
		if fin > 0 {
			out["userspace"] = fin - us
			out["total"] = fin - sr
		}
	case m["SecurityStartTimestampMonotonic"] > 0: // a host
		if fw > 0 {
			out["firmware"] = fw - ld
		}
		if ld > 0 {
			out["loader"] = ld
		}
		if rd > 0 {
			out["kernel"] = rd
			out["initrd"] = us - rd
		} else {
			out["kernel"] = us
		}
		if fin > 0 {
			out["userspace"] = fin - us
			out["total"] = fw + fin
		}
	default: // a container: everything counts from userspace_time
		if fin > 0 {
			out["userspace"] = fin - us
			out["total"] = fin - us
		}
	}
	return out
}

// expectedBlame is acquire_time_data's activation time per unit (the
// reverse offset cancels out in the differences), without the units blame
// leaves out.
func expectedBlame(s fakesystemd.Seed) map[string]uint64 {
	sr := s.Manager["SoftRebootStartTimestampMonotonic"]
	out := map[string]uint64{}
	for _, u := range s.Units {
		if (u.ActiveEnter > 0 && u.ActiveEnter < sr) || (u.InactiveExit > 0 && u.InactiveExit < sr) {
			continue
		}
		deact := u.InactiveEnter
		if sr > 0 && deact < sr {
			deact = 0
		}
		var d uint64
		switch {
		case u.ActiveEnter >= u.InactiveExit:
			d = u.ActiveEnter - u.InactiveExit
		case deact >= u.InactiveExit:
			d = deact - u.InactiveExit
		}
		if u.InactiveExit == 0 || d == 0 {
			continue
		}
		out[u.Name] = d
	}
	return out
}

func usec(s float64) uint64 { return uint64(math.Round(s * 1e6)) }

var timespanRE = regexp.MustCompile(`(\d+(?:\.\d+)?)(y|month|w|d|h|min|s|ms|us)`)

// parseTimespan reads systemd's format_timespan output ("1min 2.345s").
func parseTimespan(t testing.TB, s string) float64 {
	t.Helper()
	unit := map[string]float64{"y": 31557600, "month": 2629800, "w": 604800, "d": 86400, "h": 3600,
		"min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
	ms := timespanRE.FindAllStringSubmatch(s, -1)
	if len(ms) == 0 {
		t.Fatalf("not a timespan: %q", s)
	}
	var sum float64
	for _, m := range ms {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v * unit[m[2]]
	}
	return sum
}

// parseAnalyzeTime reads "Startup finished in A (firmware) + ... + X
// (userspace) = T" and "T reached after X in userspace." into seconds by
// stage ("total", "default_target").
func parseAnalyzeTime(t testing.TB, out string) map[string]float64 {
	t.Helper()
	res := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "Startup finished in "); ok {
			if a, b, ok := strings.Cut(rest, " = "); ok {
				res["total"] = parseTimespan(t, b)
				rest = a
			}
			for _, part := range strings.Split(rest, " + ") {
				i := strings.LastIndex(part, " (")
				stage := strings.TrimSuffix(part[i+2:], ")")
				res[strings.ReplaceAll(stage, " ", "_")] = parseTimespan(t, part[:i])
			}
		}
		if i := strings.Index(line, " reached after "); i > 0 {
			res["default_target"] = parseTimespan(t, strings.TrimSuffix(line[i+len(" reached after "):], " in userspace."))
		}
	}
	if len(res) == 0 {
		t.Fatalf("systemd-analyze time printed nothing to read:\n%s", out)
	}
	return res
}

// parseBlame reads `systemd-analyze blame` lines "  1min 2.345s unit".
func parseBlame(t testing.TB, out string) (map[string]float64, []string) {
	t.Helper()
	res := map[string]float64{}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		unit := f[len(f)-1]
		res[unit] = parseTimespan(t, strings.Join(f[:len(f)-1], " "))
		order = append(order, unit)
	}
	return res, order
}

// closeToPrinted: systemd-analyze prints with millisecond accuracy,
// truncating.
func closeToPrinted(metric, printed float64) bool {
	d := metric - printed
	return d > -1e-9 && d < 1e-3+1e-9
}

func TestBootMachines(t *testing.T) {
	serial(t)
	requireRoot(t)
	bus := startDBus(t)
	for _, seed := range []fakesystemd.Seed{fakesystemd.Laptop(), fakesystemd.Server(), fakesystemd.Container(),
		fakesystemd.Booting(), fakesystemd.SoftRebooted()} {
		t.Run(seed.Name, func(t *testing.T) {
			fake := startFakeSystemd(t, bus, seed)
			defer fake.Close()
			e := startBootExporter(t, bus, "--collector.boot.blame-include=^(nix-daemon|dbus)\\.service$")
			var fams Families
			eventually(t, 10*time.Second, "boot collector succeeds", func() error {
				fams = e.Scrape(t)
				if v, ok := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "boot"}); !ok || v != 1 {
					return fmt.Errorf("success=%v (%v)", v, ok)
				}
				return nil
			})
			finished := seed.Manager["FinishTimestampMonotonic"] > 0
			if seed.Name == "laptop" {
				body, err := e.Get("/metrics")
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(requireTool(t, "promtool"), "check", "metrics")
				cmd.Stdin = strings.NewReader(body)
				if out, _ := cmd.CombinedOutput(); len(out) != 0 {
					t.Errorf("promtool check metrics:\n%s", out)
				}
			}

			// Stages, worked out with systemd's arithmetic.
			want := expectedStages(seed)
			got := map[string]uint64{}
			for _, m := range fams.Series("panther_boot_stage_duration_seconds", nil) {
				got[Labels(m)["stage"]] = usec(MetricValue(m))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("stages (µs):\n got %v\nwant %v", got, want)
			}
			if v, _ := fams.Value("panther_boot_finished", nil); (v == 1) != finished {
				t.Errorf("panther_boot_finished = %v, boot finished: %v", v, finished)
			}

			// Phases where both ends are set.
			m := seed.Manager
			phase := func(name, start, finish string) {
				s, f := m[start+"TimestampMonotonic"], m[finish+"TimestampMonotonic"]
				v, ok := fams.Value("panther_boot_phase_duration_seconds", map[string]string{"stage": name})
				if s > 0 && f > 0 {
					if !ok || usec(v) != f-s {
						t.Errorf("phase %s = %v (%v), want %d µs", name, v, ok, f-s)
					}
				} else if ok {
					t.Errorf("phase %s exported without its timestamps", name)
				}
			}
			phase("generators", "GeneratorsStart", "GeneratorsFinish")
			phase("units_load", "UnitsLoadStart", "UnitsLoadFinish")
			if seed.Name == "soft-reboot" {
				// systemd zeroes the initrd times after a soft reboot: they
				// are the first boot's.
				if _, ok := fams.Value("panther_boot_phase_duration_seconds", map[string]string{"stage": "initrd_security"}); ok {
					t.Error("initrd phase exported after a soft reboot")
				}
			} else {
				phase("initrd_security", "InitRDSecurityStart", "InitRDSecurityFinish")
				phase("initrd_generators", "InitRDGeneratorsStart", "InitRDGeneratorsFinish")
				phase("initrd_units_load", "InitRDUnitsLoadStart", "InitRDUnitsLoadFinish")
			}
			if seed.Name != "container" {
				phase("security", "SecurityStart", "SecurityFinish")
			}

			// Units by state and each failed unit, from the seed.
			states := map[string]int{}
			failed := map[string]bool{}
			for _, u := range seed.Units {
				states[u.ActiveState]++
				if u.ActiveState == "failed" {
					failed[u.Name] = true
				}
			}
			for st, n := range states {
				if v, ok := fams.Value("panther_systemd_units", map[string]string{"state": st}); !ok || int(v) != n {
					t.Errorf("panther_systemd_units{state=%q} = %v (%v), want %d", st, v, ok, n)
				}
			}
			gotFailed := map[string]bool{}
			for _, s := range fams.Series("panther_systemd_unit_failed", nil) {
				gotFailed[Labels(s)["unit"]] = true
			}
			if fmt.Sprint(gotFailed) != fmt.Sprint(failed) {
				t.Errorf("failed units %v, want %v", gotFailed, failed)
			}

			// Blame: the 20 slowest plus the included ones.
			wantBlame := expectedBlame(seed)
			type ut struct {
				name string
				d    uint64
			}
			var sorted []ut
			for n, d := range wantBlame {
				sorted = append(sorted, ut{n, d})
			}
			sort.Slice(sorted, func(i, j int) bool {
				if sorted[i].d != sorted[j].d {
					return sorted[i].d > sorted[j].d
				}
				return sorted[i].name < sorted[j].name
			})
			wantSel := map[string]uint64{}
			for i, x := range sorted {
				if i < 20 || x.name == "nix-daemon.service" || x.name == "dbus.service" {
					wantSel[x.name] = x.d
				}
			}
			gotBlame := map[string]uint64{}
			for _, s := range fams.Series("panther_boot_unit_activation_seconds", nil) {
				gotBlame[Labels(s)["unit"]] = usec(MetricValue(s))
			}
			if fmt.Sprint(gotBlame) != fmt.Sprint(wantSel) {
				t.Errorf("blame (µs):\n got %v\nwant %v", gotBlame, wantSel)
			}

			// Maintenance timers: last/next trigger and the result of their service.
			results := map[string]string{}
			for _, u := range seed.Units {
				results[u.Name] = u.Result
			}
			nTimers := 0
			for _, u := range seed.Units {
				if !strings.HasSuffix(u.Name, ".timer") || u.Name == "systemd-tmpfiles-clean.timer" {
					continue
				}
				nTimers++
				l := map[string]string{"unit": u.Name}
				if v, ok := fams.Value("panther_systemd_timer_last_trigger_timestamp_seconds", l); !ok || usec(v) != u.LastTriggerUSec {
					t.Errorf("%s last trigger %v (%v), want %d µs", u.Name, v, ok, u.LastTriggerUSec)
				}
				if v, ok := fams.Value("panther_systemd_timer_next_trigger_timestamp_seconds", l); !ok || usec(v) != u.NextElapseRealtime {
					t.Errorf("%s next trigger %v (%v), want %d µs", u.Name, v, ok, u.NextElapseRealtime)
				}
				res := results[u.TimerUnit]
				if res == "" {
					res = "success"
				}
				l = map[string]string{"unit": u.Name, "service": u.TimerUnit, "result": res}
				if v, ok := fams.Value("panther_systemd_timer_last_result", l); !ok || v != 1 {
					t.Errorf("%s result %v: %v (%v)", u.Name, l, v, ok)
				}
			}
			if n := len(fams.Series("panther_systemd_timer_last_trigger_timestamp_seconds", nil)); n != nTimers {
				t.Errorf("%d timers exported, want the %d maintenance timers", n, nTimers)
			}

			// The real systemd-analyze (Debian's 252) on the same fake.
			compareWithSystemdAnalyze(t, bus, seed, fams)
		})
	}
}

func compareWithSystemdAnalyze(t *testing.T, bus *DBus, seed fakesystemd.Seed, fams Families) {
	t.Helper()
	if seed.Name == "soft-reboot" {
		// systemd 252 predates soft-reboot (v254) and reads those times as
		// a first boot; the expected figures above are systemd 254+'s.
		return
	}
	out, err := systemdAnalyze(t, bus, "time")
	if seed.Manager["FinishTimestampMonotonic"] == 0 {
		// systemd-analyze says so on stderr, which the error carries.
		if err == nil || !strings.Contains(err.Error(), "Bootup is not yet finished") {
			t.Errorf("systemd-analyze time on an unfinished boot: %v\n%s", err, out)
		}
		return
	}
	if err != nil {
		t.Fatalf("systemd-analyze time: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze time:\n%s", out)
	printed := parseAnalyzeTime(t, out)
	for stage, p := range printed {
		var v float64
		var ok bool
		if stage == "default_target" {
			v, ok = fams.Value("panther_boot_default_target_seconds", nil)
		} else {
			v, ok = fams.Value("panther_boot_stage_duration_seconds", map[string]string{"stage": stage})
		}
		if !ok || !closeToPrinted(v, p) {
			t.Errorf("systemd-analyze time says %s = %gs, exporter %g (%v)\n%s", stage, p, v, ok, out)
		}
	}
	// Stages the exporter has and systemd-analyze prints: the same set,
	// but for the container's total (the exporter's extension).
	for _, s := range fams.Series("panther_boot_stage_duration_seconds", nil) {
		st := Labels(s)["stage"]
		if _, ok := printed[st]; !ok && !(seed.Name == "container" && st == "total") {
			t.Errorf("exporter has stage %s that systemd-analyze time does not print:\n%s", st, out)
		}
	}

	out, err = systemdAnalyze(t, bus, "blame")
	if err != nil {
		t.Fatalf("systemd-analyze blame: %v\n%s", err, out)
	}
	blame, order := parseBlame(t, out)
	t.Logf("systemd-analyze blame: %d units, first %v", len(order), order[:min(3, len(order))])
	exported := fams.Series("panther_boot_unit_activation_seconds", nil)
	for _, s := range exported {
		u := Labels(s)["unit"]
		p, ok := blame[u]
		if !ok || !closeToPrinted(MetricValue(s), p) {
			t.Errorf("blame %s: exporter %g, systemd-analyze %g (%v)", u, MetricValue(s), p, ok)
		}
	}
	// The slowest 20 are systemd-analyze blame's first 20 lines.
	for i := 0; i < 20 && i < len(order); i++ {
		if _, ok := fams.Value("panther_boot_unit_activation_seconds", map[string]string{"unit": order[i]}); !ok {
			t.Errorf("blame line %d (%s) is not exported", i+1, order[i])
		}
	}
}

// A boot that finishes while the exporter watches: not finished, then the
// stages appear; after that the Manager is not asked again (read once per
// boot), and the unit list at most once per refresh interval.
func TestBootFinishesWhileWatched(t *testing.T) {
	serial(t)
	requireRoot(t)
	bus := startDBus(t)
	fake := startFakeSystemd(t, bus, fakesystemd.Booting())
	e := startBootExporter(t, bus, "--collector.boot.unit-refresh-interval=2s")
	fams := e.Scrape(t)
	if v, ok := fams.Value("panther_boot_finished", nil); !ok || v != 0 {
		t.Fatalf("panther_boot_finished = %v (%v) while booting", v, ok)
	}
	if _, ok := fams.Value("panther_boot_stage_duration_seconds", map[string]string{"stage": "userspace"}); ok {
		t.Fatal("userspace stage exported before the boot finished")
	}
	if _, ok := fams.Value("panther_boot_default_target_seconds", nil); ok {
		t.Fatal("default target time exported before it was reached")
	}
	if v, _ := fams.Value("panther_systemd_units", map[string]string{"state": "activating"}); v == 0 {
		t.Fatal("no activating units while booting")
	}

	laptop := fakesystemd.Laptop()
	for _, u := range laptop.Units {
		u := u
		fake.UpdateUnit(u.Name, func(x *fakesystemd.Unit) { *x = u })
	}
	fake.FinishBoot(laptop.Manager["FinishTimestampMonotonic"])
	eventually(t, 10*time.Second, "boot finished", func() error {
		fams = e.Scrape(t)
		v, _ := fams.Value("panther_boot_finished", nil)
		d, ok := fams.Value("panther_boot_default_target_seconds", nil)
		if v != 1 || !ok {
			return fmt.Errorf("finished=%v default target=%v", v, ok)
		}
		if usec(d) != 8_034_000 {
			t.Fatalf("default target reached after %v s, want 8.034", d)
		}
		return nil
	})
	if v, _ := fams.Value("panther_boot_stage_duration_seconds", map[string]string{"stage": "total"}); usec(v) != expectedStages(laptop)["total"] {
		t.Errorf("total %v", v)
	}
	// Units whose state changed (activating -> active) are read again:
	// their blame appears with the finished boot's figure.
	eventually(t, 10*time.Second, "blame of a unit that finished activating", func() error {
		v, ok := e.Scrape(t).Value("panther_boot_unit_activation_seconds", map[string]string{"unit": "NetworkManager-wait-online.service"})
		if !ok || usec(v) != expectedBlame(laptop)["NetworkManager-wait-online.service"] {
			return fmt.Errorf("%v (%v)", v, ok)
		}
		return nil
	})

	// Read once per boot: further scrapes do not ask for the Manager's
	// properties, and a change there is not seen.
	before := fake.Calls()
	fake.FinishBoot(99_000_000)
	for range 5 {
		e.Scrape(t)
	}
	after := fake.Calls()
	if after["org.freedesktop.DBus.Properties.GetAll"] > before["org.freedesktop.DBus.Properties.GetAll"]+len(laptop.Units)+10 {
		// only a unit refresh (one GetAll per unit) may have happened
		t.Errorf("GetAll calls %d -> %d over 5 scrapes", before["org.freedesktop.DBus.Properties.GetAll"], after["org.freedesktop.DBus.Properties.GetAll"])
	}
	if v, _ := e.Scrape(t).Value("panther_boot_stage_duration_seconds", map[string]string{"stage": "userspace"}); usec(v) != expectedStages(laptop)["userspace"] {
		t.Errorf("boot times re-read after the boot finished: userspace %v", v)
	}
	if l := after["org.freedesktop.systemd1.Manager.ListUnits"] - before["org.freedesktop.systemd1.Manager.ListUnits"]; l > 1 {
		t.Errorf("ListUnits called %d times in 5 quick scrapes with a 2s refresh interval", l)
	}

	// A unit fails: it shows within the refresh interval.
	fake.Fail("nix-daemon.service", "signal")
	eventually(t, 10*time.Second, "failed unit shows", func() error {
		if v, ok := e.Scrape(t).Value("panther_systemd_unit_failed", map[string]string{"unit": "nix-daemon.service"}); !ok || v != 1 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// fdCount is the number of open files of a process.
func fdCount(t testing.TB, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// D-Bus absent, then killed and restarted again and again: the collector
// fails, reconnects, and leaks neither file descriptors nor goroutines.
func TestBootDBusRestart(t *testing.T) {
	serial(t)
	requireRoot(t)
	bus := startDBus(t)
	bus.Kill() // absent at start
	e := startBootExporter(t, bus, "--collector.boot.unit-refresh-interval=1s")
	success := func() float64 {
		v, _ := e.Scrape(t).Value("panther_scrape_collector_success", map[string]string{"collector": "boot"})
		return v
	}
	if s := success(); s != 0 {
		t.Fatalf("success %v without a bus", s)
	}
	if _, ok := e.Scrape(t).Value("panther_systemd_units", map[string]string{"state": "active"}); ok {
		t.Fatal("unit counts exported without a bus")
	}
	if !strings.Contains(e.Output(), bus.Socket) {
		t.Errorf("the log does not name the bus socket:\n%s", e.Output())
	}

	var fake *fakesystemd.Fake
	up := func() {
		bus.Restart()
		var err error
		fake, err = fakesystemd.Start(bus.Address, fakesystemd.Laptop())
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "boot collector recovers", func() error {
			if s := success(); s != 1 {
				return fmt.Errorf("success %v", s)
			}
			return nil
		})
	}
	down := func() {
		bus.Kill()
		fake.Close()
		eventually(t, 10*time.Second, "boot collector fails", func() error {
			if s := success(); s != 0 {
				return fmt.Errorf("success %v", s)
			}
			return nil
		})
	}
	goroutines := func() float64 {
		v, _ := e.Scrape(t).Value("go_goroutines", nil)
		return v
	}
	up()
	// The manager leaves the bus while the bus stays: failure, then
	// recovery on the same connection.
	fake.Close()
	eventually(t, 10*time.Second, "boot collector fails without the manager", func() error {
		if s := success(); s != 0 {
			return fmt.Errorf("success %v", s)
		}
		return nil
	})
	var err error
	if fake, err = fakesystemd.Start(bus.Address, fakesystemd.Laptop()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "boot collector recovers with the manager back", func() error {
		if s := success(); s != 1 {
			return fmt.Errorf("success %v", s)
		}
		return nil
	})
	// The baseline after the first connection.
	baseFD, baseG := fdCount(t, e.Cmd.Process.Pid), goroutines()
	for i := range 5 {
		down()
		up()
		fd, g := fdCount(t, e.Cmd.Process.Pid), goroutines()
		t.Logf("cycle %d: fds %d (base %d), goroutines %v (base %v)", i+1, fd, baseFD, g, baseG)
		if fd > baseFD+1 || g > baseG+2 {
			t.Errorf("cycle %d: fds %d (base %d), goroutines %v (base %v): leak", i+1, fd, baseFD, g, baseG)
		}
	}
	fake.Close()
}
