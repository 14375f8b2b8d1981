package boot

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

// loadProps reads a fixture of Manager properties as GetAll returns them:
// numbers become t (uint64), strings s.
func loadProps(t testing.TB, name string) map[string]dbus.Variant {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var raw map[string]any
	if err := d.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]dbus.Variant{}
	for k, v := range raw {
		switch v := v.(type) {
		case json.Number:
			u, err := strconv.ParseUint(v.String(), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			out[k] = dbus.MakeVariant(u)
		case string:
			out[k] = dbus.MakeVariant(v)
		}
	}
	return out
}

func durations(ds []Duration) map[string]uint64 {
	m := map[string]uint64{}
	for _, d := range ds {
		m[d.Name] = d.Usec
	}
	return m
}

func names(ds []Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// Each expected figure is worked out here with systemd's arithmetic
// (src/analyze/analyze-time-data.c) from the fixture's numbers.
func TestAnalyzeMachines(t *testing.T) {
	cases := []struct {
		fixture  string
		context  Context
		finished bool
		stages   map[string]uint64 // in systemd-analyze's order below
		order    []string
		phases   map[string]uint64
	}{
		{
			fixture: "laptop.json", context: Host, finished: true,
			order: []string{"firmware", "loader", "kernel", "initrd", "userspace", "total"},
			stages: map[string]uint64{
				"firmware":  9675000 - 2513000,  // firmware_time - loader_time
				"loader":    2513000,            // loader_time
				"kernel":    1234567,            // kernel_done_time = initrd_time
				"initrd":    4435890 - 1234567,  // userspace_time - initrd_time
				"userspace": 16781234 - 4435890, // finish_time - userspace_time
				"total":     9675000 + 16781234, // firmware_time + finish_time
			},
			phases: map[string]uint64{
				"initrd_security":   1249876 - 1240011,
				"initrd_generators": 1331234 - 1290000,
				"initrd_units_load": 1372050 - 1331300,
				"security":          4452871 - 4441203,
				"generators":        4587390 - 4510222,
				"units_load":        4690777 - 4587501,
			},
		},
		{
			fixture: "server-252.json", context: Host, finished: true,
			order: []string{"kernel", "userspace", "total"},
			stages: map[string]uint64{
				"kernel":    1890123,            // no initrd: kernel_done_time = userspace_time
				"userspace": 25101234 - 1890123, // finish - userspace
				"total":     0 + 25101234,       // firmware_time (0) + finish_time
			},
			phases: map[string]uint64{
				"security":   1893870 - 1893002,
				"generators": 2004913 - 1950447,
				"units_load": 2061498 - 2005010,
			},
		},
		{
			fixture: "container.json", context: Container, finished: true,
			order: []string{"userspace", "total"},
			stages: map[string]uint64{
				// reverse_offset = userspace_time; userspace_time := 0;
				// finish_time -= reverse_offset.
				"userspace": 525290789 - 523456789,
				"total":     525290789 - 523456789,
			},
			phases: map[string]uint64{
				"generators": 523478245 - 523466900,
				"units_load": 523497589 - 523478289,
			},
		},
		{
			fixture: "booting.json", context: Host, finished: false,
			order: []string{"firmware", "loader", "kernel", "initrd"},
			stages: map[string]uint64{
				"firmware": 9675000 - 2513000,
				"loader":   2513000,
				"kernel":   1234567,
				"initrd":   4435890 - 1234567,
			},
			phases: map[string]uint64{
				"initrd_security":   1249876 - 1240011,
				"initrd_generators": 1331234 - 1290000,
				"initrd_units_load": 1372050 - 1331300,
				"security":          4452871 - 4441203,
				"generators":        4587390 - 4510222,
				"units_load":        4690777 - 4587501,
			},
		},
		{
			fixture: "soft-reboot.json", context: SoftReboot, finished: true,
			order: []string{"soft_reboot", "userspace", "total"},
			stages: map[string]uint64{
				// firmware..initrd zeroed; reverse_offset = softreboot_start;
				// userspace_time and finish_time -= reverse_offset.
				"soft_reboot": 1523000,           // userspace_time (after offset)
				"userspace":   6102345,           // finish - userspace
				"total":       1523000 + 6102345, // finish_time (after offset)
			},
			phases: map[string]uint64{
				// security times are not offset by systemd (it does not use
				// them after a soft reboot); generators and units load are.
				"security":   4452871 - 4441203,
				"generators": 70000,
				"units_load": 1760000 - 1670100,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			raw, missing := ParseBootTimes(loadProps(t, c.fixture))
			a := Analyze(raw)
			if a.Context != c.context {
				t.Errorf("context %v, want %v", a.Context, c.context)
			}
			if a.Finished != c.finished {
				t.Errorf("finished %v, want %v", a.Finished, c.finished)
			}
			if got := names(a.Stages); !slices.Equal(got, c.order) {
				t.Errorf("stages %v, want %v", got, c.order)
			}
			for k, v := range durations(a.Stages) {
				if c.stages[k] != v {
					t.Errorf("stage %s = %d µs, want %d", k, v, c.stages[k])
				}
			}
			got := durations(a.Phases)
			if len(got) != len(c.phases) {
				t.Errorf("phases %v, want %v", got, c.phases)
			}
			for k, v := range c.phases {
				if got[k] != v {
					t.Errorf("phase %s = %d µs, want %d", k, got[k], v)
				}
			}
			if c.fixture == "server-252.json" {
				want := []string{"SoftRebootStartTimestampMonotonic",
					"InitRDSecurityStartTimestampMonotonic", "InitRDSecurityFinishTimestampMonotonic",
					"InitRDGeneratorsStartTimestampMonotonic", "InitRDGeneratorsFinishTimestampMonotonic",
					"InitRDUnitsLoadStartTimestampMonotonic", "InitRDUnitsLoadFinishTimestampMonotonic"}
				if !slices.Equal(missing, want) {
					t.Errorf("missing %v, want %v", missing, want)
				}
			}
		})
	}
}

func TestMistypedPropertySkipped(t *testing.T) {
	props := loadProps(t, "laptop.json")
	props["LoaderTimestampMonotonic"] = dbus.MakeVariant("2513000") // not a t
	raw, missing := ParseBootTimes(props)
	if raw.Loader != 0 || !slices.Contains(missing, "LoaderTimestampMonotonic") {
		t.Fatalf("mistyped property not skipped: %d %v", raw.Loader, missing)
	}
	a := Analyze(raw)
	// No loader: firmware = firmware_time - 0, and no loader stage.
	if d := durations(a.Stages); d["firmware"] != 9675000 || slices.Contains(names(a.Stages), "loader") {
		t.Fatalf("stages %v", a.Stages)
	}
}

func TestDefaultTargetReached(t *testing.T) {
	for _, c := range []struct {
		fixture   string
		activated uint64
		want      uint64
		ok        bool
	}{
		{"laptop.json", 4435890 + 8034000, 8034000, true},                    // activated - userspace_time
		{"container.json", 523456789 + 1830000, 1830000, true},               // activated - reverse_offset
		{"soft-reboot.json", 86400000000 + 1523000 + 6000000, 6000000, true}, // activated - (userspace + reverse_offset)
		{"laptop.json", 0, 0, false},                                         // never reached
		{"laptop.json", usecInfinity, 0, false},
	} {
		raw, _ := ParseBootTimes(loadProps(t, c.fixture))
		got, ok := Analyze(raw).DefaultTargetReached(c.activated)
		if got != c.want || ok != c.ok {
			t.Errorf("%s %d: %d %v, want %d %v", c.fixture, c.activated, got, ok, c.want, c.ok)
		}
	}
}

func TestBlame(t *testing.T) {
	laptop, _ := ParseBootTimes(loadProps(t, "laptop.json"))
	container, _ := ParseBootTimes(loadProps(t, "container.json"))
	soft, _ := ParseBootTimes(loadProps(t, "soft-reboot.json"))
	for _, c := range []struct {
		name string
		raw  BootTimes
		u    UnitTimes
		want uint64
		ok   bool
	}{
		{"running service", laptop, UnitTimes{Activating: 6335890, Activated: 7147890}, 812000, true},
		{"failed while starting", laptop, UnitTimes{Activating: 7135890, Deactivated: 8065890}, 930000, true},
		{"oneshot ran and exited", laptop, UnitTimes{Activating: 6385890, Activated: 6797890, Deactivating: 6797890, Deactivated: 6797890}, 412000, true},
		{"never started", laptop, UnitTimes{}, 0, false},
		{"still activating", laptop, UnitTimes{Activating: 7155890}, 0, false},
		{"target (0 s)", laptop, UnitTimes{Activating: 12469890, Activated: 12469890}, 0, false},
		// container: times less reverse_offset, the difference is the same.
		{"container service", container, UnitTimes{Activating: 523756789, Activated: 524168789}, 412000, true},
		// soft reboot: a unit last activated before it is left out.
		{"before soft reboot", soft, UnitTimes{Activating: 1500000, Activated: 1810000}, 0, false},
		{"after soft reboot", soft, UnitTimes{Activating: 86400000000 + 2000000, Activated: 86400000000 + 2500000, Deactivated: 1000}, 500000, true},
	} {
		got, ok := Analyze(c.raw).Blame(c.u)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %d %v, want %d %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestSelectBlame(t *testing.T) {
	all := []blamed{{"a.service", 5}, {"b.service", 50}, {"c.mount", 7}, {"d.service", 50}, {"e.service", 1}}
	got := SelectBlame(all, 2, regexp.MustCompile(`^e\.`))
	want := []blamed{{"b.service", 50}, {"d.service", 50}, {"e.service", 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := SelectBlame(all, 0, nil); len(got) != 0 {
		t.Fatalf("top 0: %v", got)
	}
}

func TestNextElapse(t *testing.T) {
	const nowRT, nowMono = 1_795_600_000_000_000, 5_000_000_000
	for _, c := range []struct{ rt, mono, want uint64 }{
		{1_795_700_000_000_000, 0, 1_795_700_000_000_000}, // calendar only
		{0, nowMono + 900_000_000, nowRT + 900_000_000},   // monotonic only
		{nowRT + 100, nowMono + 900_000_000, nowRT + 100}, // both: the earlier
		{0, nowMono - 1_000_000, nowRT - 1_000_000},       // monotonic in the past
		{0, 0, 0}, // none
	} {
		if got := NextElapse(nowRT, nowMono, c.rt, c.mono); got != c.want {
			t.Errorf("NextElapse(%d, %d) = %d, want %d", c.rt, c.mono, got, c.want)
		}
	}
}

// The object paths systemd gives these units (busctl tree org.freedesktop.systemd1).
func TestUnitPath(t *testing.T) {
	for name, want := range map[string]string{
		"default.target": "/org/freedesktop/systemd1/unit/default_2etarget",
		"nix-gc.timer":   "/org/freedesktop/systemd1/unit/nix_2dgc_2etimer",
		"systemd-fsck@dev-disk-by\\x2duuid-1234.service": "/org/freedesktop/systemd1/unit/systemd_2dfsck_40dev_2ddisk_2dby_5cx2duuid_2d1234_2eservice",
		"-.mount":           "/org/freedesktop/systemd1/unit/_2d_2emount",
		"1password.service": "/org/freedesktop/systemd1/unit/_31password_2eservice",
	} {
		if got := UnitPath(name); string(got) != want {
			t.Errorf("UnitPath(%q) = %s, want %s", name, got, want)
		}
	}
}

// FuzzAnalyze feeds arbitrary Manager timestamps (as a D-Bus peer could
// send them): Analyze must not panic, and no span may exceed the largest
// input (no unsigned wrap-around).
func FuzzAnalyze(f *testing.F) {
	for _, fx := range []string{"laptop.json", "server-252.json", "container.json", "booting.json", "soft-reboot.json"} {
		raw, _ := ParseBootTimes(loadProps(f, fx))
		f.Add(encodeTimes(raw), uint64(raw.Userspace+1000))
	}
	f.Fuzz(func(t *testing.T, data []byte, activated uint64) {
		props := map[string]dbus.Variant{}
		var max uint64
		for i, p := range bootProperties {
			if len(data) < 8*(i+1) {
				break
			}
			v := binary.LittleEndian.Uint64(data[8*i:])
			max = maxU(max, v)
			props[p.name] = dbus.MakeVariant(v)
		}
		a := Analyze(mustParse(props))
		for _, d := range append(a.Stages, a.Phases...) {
			if d.Name == "total" {
				continue // firmware + finish
			}
			if d.Usec > max {
				t.Fatalf("%s = %d > largest input %d", d.Name, d.Usec, max)
			}
		}
		a.DefaultTargetReached(activated)
		a.Blame(UnitTimes{activated, activated / 2, activated / 3, max})
	})
}

func mustParse(props map[string]dbus.Variant) BootTimes {
	t, _ := ParseBootTimes(props)
	return t
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func encodeTimes(raw BootTimes) []byte {
	var b []byte
	for _, p := range bootProperties {
		b = binary.LittleEndian.AppendUint64(b, *p.field(&raw))
	}
	return b
}

func TestFixturesAreJSONObjects(t *testing.T) {
	ents, _ := os.ReadDir("testdata")
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && len(loadProps(t, e.Name())) < 10 {
			t.Errorf("%s: too few properties", e.Name())
		}
	}
}
