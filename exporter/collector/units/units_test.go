package units

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pantheros/monitoring/exporter/collector"
)

const fixture = "testdata/nixos"

// samples runs one Update and returns its samples keyed by
// name{label="value",...}.
func samples(t testing.TB, u *Units) (map[string]float64, error) {
	t.Helper()
	ch := make(chan prometheus.Metric, 4096)
	err := u.Update(context.Background(), ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if werr := m.Write(&d); werr != nil {
			t.Fatal(werr)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		var ls []string
		for _, l := range d.Label {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		sort.Strings(ls)
		key := name
		if len(ls) > 0 {
			key += "{" + strings.Join(ls, ",") + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("%s sent twice", key)
		}
		if d.Counter != nil {
			out[key] = d.GetCounter().GetValue()
		} else {
			out[key] = d.GetGauge().GetValue()
		}
	}
	return out, err
}

func newUnits(t testing.TB, root string, o Options) *Units {
	t.Helper()
	if o.MaxUnits == 0 {
		o.MaxUnits = defMaxUnits
	}
	if o.Exclude == "" {
		o.Exclude = defExclude
	}
	u, err := New(collector.Config{SysPath: filepath.Join(root, "sys"), ProcPath: filepath.Join(root, "proc"),
		Logger: slog.New(slog.DiscardHandler)}, o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// showBlocks parses the recorded `systemctl show -p Id,MemoryCurrent,...`
// output: blocks of Key=Value lines separated by blank lines.
func showBlocks(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	cur := map[string]string{}
	flush := func() {
		if len(cur) > 0 {
			out[cur["Id"]] = cur
		}
		cur = map[string]string{}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			t.Fatalf("%s: line %q", path, sc.Text())
		}
		cur[k] = v
	}
	flush()
	return out
}

func unitKey(metric, unit string) string { return fmt.Sprintf("%s{unit=%q}", metric, unit) }

// The collector's figures are what systemd itself reports for the same
// units: MemoryCurrent, CPUUsageNSec, IOReadBytes, IOWriteBytes and
// TasksCurrent, "[not set]" where the controller is off.
func TestMatchesSystemctlShow(t *testing.T) {
	got, err := samples(t, newUnits(t, fixture, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	show := showBlocks(t, filepath.Join(fixture, "systemctl-show.txt"))
	if len(show) < 20 {
		t.Fatalf("only %d units in systemctl-show.txt", len(show))
	}
	for id, props := range show {
		for prop, metric := range map[string]string{
			"MemoryCurrent": "panther_unit_memory_bytes",
			"CPUUsageNSec":  "panther_unit_cpu_seconds_total",
			"IOReadBytes":   "panther_unit_io_read_bytes_total",
			"IOWriteBytes":  "panther_unit_io_written_bytes_total",
			"TasksCurrent":  "panther_unit_tasks",
		} {
			v, ok := got[unitKey(metric, id)]
			if props[prop] == "[not set]" {
				if ok {
					t.Errorf("%s: %s is not set, but %s = %v", id, prop, metric, v)
				}
				continue
			}
			want, err := strconv.ParseUint(props[prop], 10, 64)
			if err != nil {
				t.Fatalf("%s %s=%q", id, prop, props[prop])
			}
			w := float64(want)
			if prop == "CPUUsageNSec" {
				w /= 1e9
			}
			if !ok || v != w {
				t.Errorf("%s: %s = %v (present %v), systemctl says %s=%v", id, metric, v, ok, prop, props[prop])
			}
		}
	}
	// Every unit reported is one systemctl was asked about, and the other way round.
	reported := map[string]bool{}
	for k := range got {
		if strings.HasPrefix(k, "panther_unit_cpu_seconds_total{") {
			u := strings.TrimSuffix(strings.TrimPrefix(k, `panther_unit_cpu_seconds_total{unit="`), `"}`)
			u = strings.ReplaceAll(u, `\\`, `\`)
			reported[u] = true
		}
	}
	for u := range reported {
		if show[u] == nil {
			t.Errorf("unit %s reported but not in systemctl-show.txt", u)
		}
	}
	for u := range show {
		if !reported[u] {
			t.Errorf("unit %s of systemctl-show.txt not reported", u)
		}
	}
}

// What systemctl show does not print: peak, limit, swap, OOM kills, PSI,
// the host's OOM kills; and what is left out.
func TestFixtureDetails(t *testing.T) {
	got, err := samples(t, newUnits(t, fixture, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	const MiB = 1 << 20
	pg := "postgresql.service"
	for k, want := range map[string]float64{
		unitKey("panther_unit_memory_peak_bytes", pg):                                       1073741824 - 4096,
		unitKey("panther_unit_memory_limit_bytes", pg):                                      1073741824,
		unitKey("panther_unit_memory_limit_bytes", "panther-exporter.service"):              256 * MiB,
		unitKey("panther_unit_swap_bytes", pg):                                              64 * MiB,
		unitKey("panther_unit_oom_kills_total", pg):                                         1,
		unitKey("panther_unit_oom_kills_total", "sshd.service"):                             0,
		`panther_unit_pressure_waiting_seconds_total{resource="memory",unit="` + pg + `"}`:  0.345678,
		`panther_unit_pressure_stalled_seconds_total{resource="memory",unit="` + pg + `"}`:  0.115226,
		`panther_unit_pressure_waiting_seconds_total{resource="io",unit="user-1000.slice"}`: 0.123456,
		"panther_oom_kills_total":                                                           2,
		"panther_units_omitted":                                                             0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	for k := range got {
		for _, never := range []string{"libpod-", "user@1000.service", "session-3.scope", "app.slice", `unit="system.slice"`, `unit="machine.slice"`, `unit="user.slice"`} {
			if strings.Contains(k, never) {
				t.Errorf("%s reported", k)
			}
		}
	}
	// No limit: no series.
	if _, ok := got[unitKey("panther_unit_memory_limit_bytes", "sshd.service")]; ok {
		t.Error("sshd.service has memory.max=max but a limit series")
	}
}

// copyFixture copies the fixture into a temporary directory to break it.
func copyFixture(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(fixture)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A missing, garbled or truncated file is an error naming it; that unit's
// other figures and every other unit stay.
func TestBadFiles(t *testing.T) {
	root := copyFixture(t)
	sys := filepath.Join(root, "sys/fs/cgroup/system.slice")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(sys, "sshd.service/memory.current")))
	must(os.WriteFile(filepath.Join(sys, "nginx.service/cpu.stat"), []byte("usage_usec twelve\nuser_usec 1\n"), 0o644))
	must(os.WriteFile(filepath.Join(sys, "dbus.service/io.stat"), []byte("259:0 rbytes=2097152 wbytes=0 rios=512 wi"), 0o644))
	must(os.WriteFile(filepath.Join(sys, "nscd.service/memory.pressure"), []byte("some avg10=0.00 avg60=0.00 avg300=0.00\n"), 0o644))
	must(os.WriteFile(filepath.Join(sys, "dhcpcd.service/pids.current"), nil, 0o644))
	must(os.WriteFile(filepath.Join(sys, "podman.service/memory.events"), []byte("low 0\nhigh 0\nmax 0\noom 0\n"), 0o644))
	got, err := samples(t, newUnits(t, root, Options{}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"sshd.service/memory.current: open",
		"nginx.service/cpu.stat: usage_usec: not a number",
		"dbus.service/io.stat: truncated",
		"nscd.service/memory.pressure: line 1: no total",
		"dhcpcd.service/pids.current: empty file",
		"podman.service/memory.events: no oom_kill line",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "twelve") {
		t.Error("error quotes the file's content")
	}
	// The broken files' metrics are missing, the units' others are there.
	for k, present := range map[string]bool{
		unitKey("panther_unit_memory_bytes", "sshd.service"):                                 false,
		unitKey("panther_unit_cpu_seconds_total", "sshd.service"):                            true,
		unitKey("panther_unit_cpu_seconds_total", "nginx.service"):                           false,
		unitKey("panther_unit_memory_bytes", "nginx.service"):                                true,
		unitKey("panther_unit_io_read_bytes_total", "dbus.service"):                          false,
		unitKey("panther_unit_tasks", "dbus.service"):                                        true,
		`panther_unit_pressure_waiting_seconds_total{resource="memory",unit="nscd.service"}`: false,
		`panther_unit_pressure_waiting_seconds_total{resource="cpu",unit="nscd.service"}`:    true,
		unitKey("panther_unit_tasks", "dhcpcd.service"):                                      false,
		unitKey("panther_unit_oom_kills_total", "podman.service"):                            false,
		unitKey("panther_unit_memory_bytes", "podman.service"):                               true,
		unitKey("panther_unit_memory_bytes", "nix-daemon.service"):                           true,
		"panther_oom_kills_total":                                                            true,
	} {
		if _, ok := got[k]; ok != present {
			t.Errorf("%s present %v, want %v", k, ok, present)
		}
	}
	if got[unitKey("panther_unit_memory_bytes", "nix-daemon.service")] != 412<<20+8192 {
		t.Error("an intact unit's value changed")
	}
}

// A unit whose cgroup vanished (it stopped between listing and reading) is
// left out without an error; a missing /proc/vmstat is an error naming it
// and the units are still read.
func TestVanishedAndNoVmstat(t *testing.T) {
	root := copyFixture(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(root, "proc/vmstat")))
	u := newUnits(t, root, Options{})
	list, err := u.list()
	must(err)
	var nginx unit
	for _, un := range list {
		if un.name == "nginx.service" {
			nginx = un
		}
	}
	must(os.RemoveAll(nginx.dir))
	if s, f := readOne(nginx, nil, new(make([]byte, 16)), time.Now()); !s.gone || s.err != nil || f != nil {
		t.Errorf("vanished unit: gone %v err %v files %v", s.gone, s.err, f)
	}
	got, err := samples(t, u)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "proc/vmstat")) || strings.Contains(err.Error(), "nginx") {
		t.Errorf("error %v: want one naming proc/vmstat only", err)
	}
	if _, ok := got[unitKey("panther_unit_memory_bytes", "sshd.service")]; !ok {
		t.Error("units not read without /proc/vmstat")
	}
}

// On cgroup v1 or hybrid hosts (like the development machines) there is no
// v2 hierarchy at fs/cgroup: only the host's OOM kills, no error.
func TestNotCgroupV2(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys/fs/cgroup/unified/system.slice"), 0o755)
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/vmstat"), []byte("pgfault 1\noom_kill 0\n"), 0o644)
	got, err := samples(t, newUnits(t, root, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["panther_oom_kills_total"] != 0 {
		t.Errorf("got %v, want only panther_oom_kills_total 0", got)
	}
}

func TestMaxUnits(t *testing.T) {
	all, err := samples(t, newUnits(t, fixture, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	type um struct {
		unit string
		mem  float64
	}
	var mems []um
	for k, v := range all {
		if u, ok := strings.CutPrefix(k, `panther_unit_cpu_seconds_total{unit="`); ok {
			mems = append(mems, um{strings.TrimSuffix(u, `"}`), all[`panther_unit_memory_bytes{unit="`+strings.TrimSuffix(u, `"}`)+`"}`]})
			_ = v
		}
	}
	sort.Slice(mems, func(i, j int) bool { return mems[i].mem > mems[j].mem })
	got, err := samples(t, newUnits(t, fixture, Options{MaxUnits: 5}))
	if err != nil {
		t.Fatal(err)
	}
	if got["panther_units_omitted"] != float64(len(mems)-5) {
		t.Errorf("omitted %v, want %d", got["panther_units_omitted"], len(mems)-5)
	}
	n := 0
	for _, m := range mems {
		if _, ok := got[unitKey("panther_unit_cpu_seconds_total", m.unit)]; ok {
			n++
			if m.mem < mems[4].mem {
				t.Errorf("%s (%v bytes) kept over a bigger unit", m.unit, m.mem)
			}
		}
	}
	if n != 5 {
		t.Errorf("%d units kept, want 5", n)
	}
}

func TestIncludeExclude(t *testing.T) {
	got, err := samples(t, newUnits(t, fixture, Options{Include: `^(nix|user)-`, Exclude: `^user-1001`}))
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for k := range got {
		if u, ok := strings.CutPrefix(k, `panther_unit_cpu_seconds_total{unit="`); ok {
			units = append(units, strings.TrimSuffix(u, `"}`))
		}
	}
	sort.Strings(units)
	if strings.Join(units, " ") != "nix-daemon.service nix-gc.service user-1000.slice" {
		t.Errorf("units %v", units)
	}
	if _, err := New(collector.Config{}, Options{Include: "(", MaxUnits: 1}); err == nil || !strings.Contains(err.Error(), "--collector.units.include") {
		t.Errorf("bad include: %v", err)
	}
	if _, err := New(collector.Config{}, Options{MaxUnits: 0}); err == nil || !strings.Contains(err.Error(), "max-units") {
		t.Errorf("max-units 0: %v", err)
	}
}
