// Package units collects per-unit resource use from the cgroup v2 hierarchy
// that systemd keeps (the layout NixOS uses): memory in use and its peak,
// the memory limit, swap, CPU seconds, bytes read and written, tasks, OOM
// kills and pressure stall totals of every service, scope and slice under
// system.slice, of init.scope, and a summary of each user's
// user.slice/user-UID.slice. It also reports the host's OOM kills from
// /proc/vmstat, so a kill outside any unit is seen too.
//
// Everything is read from the cgroup files under --path.sysfs
// (fs/cgroup): no D-Bus round trip per unit. Podman's container scopes
// (machine.slice/libpod-*.scope) are the podman collector's.
package units

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

const name = "units"

// Defaults. Podman's scopes are left to the podman collector; conmon's
// scopes are Podman's too.
const (
	defExclude  = `^libpod-.+\.scope$`
	defMaxUnits = 300
)

var (
	memory = collector.Gauge(name, "unit_memory_bytes",
		"Memory the unit's cgroup uses now (memory.current; what systemctl shows as MemoryCurrent), page cache included.", "unit")
	memoryPeak = collector.Gauge(name, "unit_memory_peak_bytes",
		"Highest memory use of the unit's cgroup since it was created (memory.peak; kernel 5.19 and later).", "unit")
	memoryLimit = collector.Gauge(name, "unit_memory_limit_bytes",
		"Hard memory limit of the unit's cgroup (memory.max, MemoryMax=); left out when there is none.", "unit")
	swap = collector.Gauge(name, "unit_swap_bytes",
		"Swap the unit's cgroup uses (memory.swap.current).", "unit")
	cpuSeconds = collector.Counter(name, "unit_cpu_seconds_total",
		"CPU time the unit's cgroup used, user and system (cpu.stat usage_usec; systemctl's CPUUsageNSec).", "unit")
	ioRead = collector.Counter(name, "unit_io_read_bytes_total",
		"Bytes the unit's cgroup read from block devices, summed over devices (io.stat rbytes; systemctl's IOReadBytes).", "unit")
	ioWritten = collector.Counter(name, "unit_io_written_bytes_total",
		"Bytes the unit's cgroup wrote to block devices, summed over devices (io.stat wbytes; systemctl's IOWriteBytes).", "unit")
	tasks = collector.Gauge(name, "unit_tasks",
		"Tasks (threads) in the unit's cgroup (pids.current; systemctl's TasksCurrent).", "unit")
	oomKills = collector.Counter(name, "unit_oom_kills_total",
		"Processes of the unit's cgroup or its children the kernel OOM killer killed (memory.events oom_kill).", "unit")
	pressureSome = collector.Counter(name, "unit_pressure_waiting_seconds_total",
		"Time at least one task of the unit waited for the resource (cpu, memory, io): the 'some' total of <resource>.pressure.", "unit", "resource")
	pressureFull = collector.Counter(name, "unit_pressure_stalled_seconds_total",
		"Time all non-idle tasks of the unit stalled on the resource at once: the 'full' total of <resource>.pressure.", "unit", "resource")
	omitted = collector.Gauge(name, "units_omitted",
		"Units found but left out because there were more than --collector.units.max-units (those using the least memory are left out).")
	hostOOMKills = collector.Counter(name, "oom_kills_total",
		"Processes the kernel OOM killer killed on the host since boot, inside a unit or not (/proc/vmstat oom_kill).")
)

// Options are the units collector's flags.
type Options struct {
	Include, Exclude string // regexps on the unit name
	MaxUnits         int
}

var flags Options

func init() {
	kingpin.Flag("collector.units.include", "Regexp of unit names to report (empty: all).").
		Default("").StringVar(&flags.Include)
	kingpin.Flag("collector.units.exclude", "Regexp of unit names to leave out (default: Podman's container scopes, which the podman collector reports).").
		Default(defExclude).StringVar(&flags.Exclude)
	kingpin.Flag("collector.units.max-units", "Report at most this many units (about 15 series each); beyond it those using the least memory are left out and counted in panther_units_omitted.").
		Default(fmt.Sprint(defMaxUnits)).IntVar(&flags.MaxUnits)
	collector.Register(name, true, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg, flags)
	})
}

// Units is the units collector.
type Units struct {
	logger           *slog.Logger
	root             string // the cgroup v2 mount
	vmstat           string
	include, exclude *regexp.Regexp
	max              int

	mu          sync.Mutex
	notV2       bool // last run found no cgroup v2 hierarchy (logged once)
	lastOmitted int
}

// New builds the collector; it fails only on bad flags.
func New(cfg collector.Config, o Options) (*Units, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u := &Units{logger: logger, root: cfg.Sys("fs", "cgroup"), vmstat: cfg.Proc("vmstat"), max: o.MaxUnits}
	var err error
	if o.Include != "" {
		if u.include, err = regexp.Compile(o.Include); err != nil {
			return nil, fmt.Errorf("--collector.units.include: %w", err)
		}
	}
	if o.Exclude != "" {
		if u.exclude, err = regexp.Compile(o.Exclude); err != nil {
			return nil, fmt.Errorf("--collector.units.exclude: %w", err)
		}
	}
	if u.max < 1 {
		return nil, fmt.Errorf("--collector.units.max-units: %d, want at least 1", o.MaxUnits)
	}
	return u, nil
}

// unit is one cgroup to read.
type unit struct {
	name        string
	dir         string
	controllers controllers // enabled for it by its parent
}

// controllers are the cgroup v2 controllers a parent enables for its
// children (cgroup.subtree_control). cpu.stat exists without any.
type controllers struct{ memory, io, pids bool }

// stats is what one unit's files gave.
type stats struct {
	memory, peak, limit, swap    uint64
	hasMemory, hasPeak, hasLimit bool
	hasSwap, hasIO, hasTasks     bool
	cpuUsec                      uint64
	io                           ioStat
	tasks, oomKills              uint64
	psi                          [3]pressure
	hasPSI                       [3]bool
	gone                         bool // the cgroup vanished while read (the unit stopped)
	err                          error
}

var resources = [3]string{"cpu", "memory", "io"}

// Update reads the host's OOM kills and every unit.
func (u *Units) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	if err := u.updateHost(ch); err != nil {
		errs = append(errs, err)
	}
	list, err := u.list()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if list == nil {
		return errors.Join(errs...)
	}
	all := u.read(ctx, list)
	drop := 0
	if len(all) > u.max {
		// Keep the units using the most memory: those are the ones asked about.
		order := make([]int, len(all))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			ma, mb := all[a].memory, all[b].memory
			switch {
			case ma > mb:
				return -1
			case ma < mb:
				return 1
			}
			return strings.Compare(list[a].name, list[b].name)
		})
		keep := make([]bool, len(all))
		for _, i := range order[:u.max] {
			keep[i] = true
		}
		var kl []unit
		var ks []stats
		for i := range all {
			if keep[i] {
				kl, ks = append(kl, list[i]), append(ks, all[i])
			}
		}
		drop = len(all) - u.max
		list, all = kl, ks
	}
	if drop != u.lastOmitted && drop > 0 {
		u.logger.Warn("more units than --collector.units.max-units; those using the least memory are left out",
			"units", len(all)+drop, "max", u.max, "omitted", drop)
	}
	u.lastOmitted = drop
	ch <- omitted.Const(float64(drop))
	for i, s := range all {
		if s.err != nil {
			errs = append(errs, s.err)
		}
		send(ch, list[i].name, &s)
	}
	return errors.Join(errs...)
}

// send emits what was read of one unit (also after an error in one of its
// files: what could be read is kept).
func send(ch chan<- prometheus.Metric, n string, s *stats) {
	if s.gone {
		return
	}
	if s.hasMemory {
		ch <- memory.Const(float64(s.memory), n)
	}
	if s.hasPeak {
		ch <- memoryPeak.Const(float64(s.peak), n)
	}
	if s.hasLimit {
		ch <- memoryLimit.Const(float64(s.limit), n)
	}
	if s.hasSwap {
		ch <- swap.Const(float64(s.swap), n)
	}
	if s.cpuUsec != noValue {
		ch <- cpuSeconds.Const(float64(s.cpuUsec)/1e6, n)
	}
	if s.hasIO {
		ch <- ioRead.Const(float64(s.io.rbytes), n)
		ch <- ioWritten.Const(float64(s.io.wbytes), n)
	}
	if s.hasTasks {
		ch <- tasks.Const(float64(s.tasks), n)
	}
	if s.oomKills != noValue {
		ch <- oomKills.Const(float64(s.oomKills), n)
	}
	for r, res := range resources {
		if !s.hasPSI[r] {
			continue
		}
		ch <- pressureSome.Const(float64(s.psi[r].some)/1e6, n, res)
		if s.psi[r].hasFull {
			ch <- pressureFull.Const(float64(s.psi[r].full)/1e6, n, res)
		}
	}
}

// noValue marks a counter that was not read.
const noValue = ^uint64(0)

// updateHost sends the host's OOM kills from /proc/vmstat (kernel 4.13 and
// later have oom_kill).
func (u *Units) updateHost(ch chan<- prometheus.Metric) error {
	b, err := os.ReadFile(u.vmstat)
	if err != nil {
		return err
	}
	var v uint64
	if err := parseKeyed(b, []string{"oom_kill"}, func(_ int, x uint64) { v = x }); err != nil {
		return fmt.Errorf("%s: %w", u.vmstat, err)
	}
	ch <- hostOOMKills.Const(float64(v))
	return nil
}

// list finds the units to read. A host without a cgroup v2 hierarchy at
// fs/cgroup (cgroup v1 or hybrid) has none: nil and no error, said once.
func (u *Units) list() ([]unit, error) {
	rootCtl, err := readControllers(filepath.Join(u.root, "cgroup.subtree_control"))
	if errors.Is(err, fs.ErrNotExist) {
		if !u.notV2 {
			u.logger.Debug("no cgroup v2 hierarchy (cgroup v1 or hybrid); no per-unit metrics", "path", u.root)
		}
		u.notV2 = true
		return nil, nil
	}
	u.notV2 = false
	if err != nil {
		return nil, err
	}
	var list []unit
	var errs []error
	if fi, err := os.Stat(filepath.Join(u.root, "init.scope")); err == nil && fi.IsDir() {
		list = u.add(list, unit{name: "init.scope", dir: filepath.Join(u.root, "init.scope"), controllers: rootCtl})
	}
	// Every unit under system.slice; slices are reported and walked into.
	var walk func(dir string, ctl controllers)
	walk = func(dir string, ctl controllers) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // a slice that went away is no error
				errs = append(errs, err)
			}
			return
		}
		for _, e := range entries {
			if !e.IsDir() || !isUnitName(e.Name()) {
				continue
			}
			d := filepath.Join(dir, e.Name())
			list = u.add(list, unit{name: e.Name(), dir: d, controllers: ctl})
			if strings.HasSuffix(e.Name(), ".slice") {
				sub, err := readControllers(filepath.Join(d, "cgroup.subtree_control"))
				if err != nil {
					if !errors.Is(err, fs.ErrNotExist) {
						errs = append(errs, err)
					}
					continue
				}
				walk(d, sub)
			}
		}
	}
	sys := filepath.Join(u.root, "system.slice")
	if sysCtl, err := readControllers(filepath.Join(sys, "cgroup.subtree_control")); err == nil {
		walk(sys, sysCtl)
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	// One summary per user: user.slice/user-UID.slice, not walked into.
	us := filepath.Join(u.root, "user.slice")
	if usCtl, err := readControllers(filepath.Join(us, "cgroup.subtree_control")); err == nil {
		entries, err := os.ReadDir(us)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "user-") && strings.HasSuffix(e.Name(), ".slice") {
				list = u.add(list, unit{name: e.Name(), dir: filepath.Join(us, e.Name()), controllers: usCtl})
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return list, errors.Join(errs...)
}

// add appends un to list when the include and exclude flags keep it.
func (u *Units) add(list []unit, un unit) []unit {
	if u.include != nil && !u.include.MatchString(un.name) {
		return list
	}
	if u.exclude != nil && u.exclude.MatchString(un.name) {
		return list
	}
	return append(list, un)
}

// isUnitName tells unit cgroups from other directories a service may make
// in a delegated subtree: systemd names them <name>.<type>.
func isUnitName(n string) bool {
	for _, suf := range []string{".service", ".scope", ".slice", ".socket", ".mount", ".swap"} {
		if strings.HasSuffix(n, suf) && len(n) > len(suf) {
			return true
		}
	}
	return false
}

// readControllers reads a cgroup.subtree_control ("cpu io memory pids").
func readControllers(p string) (controllers, error) {
	var c controllers
	b, err := os.ReadFile(p)
	if err != nil {
		return c, err
	}
	for _, f := range strings.Fields(string(b)) {
		switch f {
		case "memory":
			c.memory = true
		case "io":
			c.io = true
		case "pids":
			c.pids = true
		}
	}
	return c, nil
}

// read reads every unit, spread over a few goroutines: the files are small
// and the cost is the system calls.
func (u *Units) read(ctx context.Context, list []unit) []stats {
	out := make([]stats, len(list))
	workers := min(runtime.GOMAXPROCS(0), 4, len(list))
	if workers <= 1 {
		buf := make([]byte, 4096)
		for i := range list {
			out[i] = readUnit(list[i], &buf)
		}
		return out
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := w; i < len(list); i += workers {
				if ctx.Err() != nil {
					out[i] = stats{err: fmt.Errorf("%s: %w", list[i].dir, ctx.Err()), cpuUsec: noValue, oomKills: noValue}
					continue
				}
				out[i] = readUnit(list[i], &buf)
			}
		}()
	}
	wg.Wait()
	return out
}

// readUnit reads the files of one unit. A file of an enabled controller
// that is missing, truncated or garbled is an error naming it; the unit's
// other files are still read. Optional files (memory.peak before 5.19,
// memory.swap.current without swap accounting, *.pressure without PSI) may
// be absent.
func readUnit(un unit, buf *[]byte) stats {
	s := stats{cpuUsec: noValue, oomKills: noValue}
	var errs []error
	file := func(f string, required bool) []byte {
		p := filepath.Join(un.dir, f)
		b, err := readFile(p, buf)
		if err == nil {
			return b
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EOPNOTSUPP) {
			if _, derr := os.Stat(un.dir); errors.Is(derr, fs.ErrNotExist) {
				s.gone = true
				return nil
			}
			if !required {
				return nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
		return nil
	}
	bad := func(f string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(un.dir, f), err))
	}
	if b := file("cpu.stat", true); b != nil {
		if err := parseKeyed(b, []string{"usage_usec"}, func(_ int, v uint64) { s.cpuUsec = v }); err != nil {
			bad("cpu.stat", err)
			s.cpuUsec = noValue
		}
	}
	if un.controllers.memory && !s.gone {
		if b := file("memory.current", true); b != nil {
			v, _, err := parseValue(b)
			if err != nil {
				bad("memory.current", err)
			} else {
				s.memory, s.hasMemory = v, true
			}
		}
		if b := file("memory.peak", false); b != nil {
			v, _, err := parseValue(b)
			if err != nil {
				bad("memory.peak", err)
			} else {
				s.peak, s.hasPeak = v, true
			}
		}
		if b := file("memory.max", true); b != nil {
			v, ok, err := parseValue(b)
			if err != nil {
				bad("memory.max", err)
			} else {
				s.limit, s.hasLimit = v, ok
			}
		}
		if b := file("memory.swap.current", false); b != nil {
			v, _, err := parseValue(b)
			if err != nil {
				bad("memory.swap.current", err)
			} else {
				s.swap, s.hasSwap = v, true
			}
		}
		if b := file("memory.events", true); b != nil {
			if err := parseKeyed(b, []string{"oom_kill"}, func(_ int, v uint64) { s.oomKills = v }); err != nil {
				bad("memory.events", err)
				s.oomKills = noValue
			}
		}
	}
	if un.controllers.io && !s.gone {
		if b := file("io.stat", true); b != nil { // empty: no I/O yet
			st, err := parseIOStat(b)
			if err != nil {
				bad("io.stat", err)
			} else {
				s.io, s.hasIO = st, true
			}
		}
	}
	if un.controllers.pids && !s.gone {
		if b := file("pids.current", true); b != nil {
			v, _, err := parseValue(b)
			if err != nil {
				bad("pids.current", err)
			} else {
				s.tasks, s.hasTasks = v, true
			}
		}
	}
	for r, res := range resources {
		if s.gone {
			break
		}
		f := res + ".pressure"
		if b := file(f, false); b != nil {
			p, err := parsePressure(b)
			if err != nil {
				bad(f, err)
			} else {
				s.psi[r], s.hasPSI[r] = p, true
			}
		}
	}
	if s.gone {
		return stats{gone: true, cpuUsec: noValue, oomKills: noValue}
	}
	s.err = errors.Join(errs...)
	return s
}

// readFile reads a small file into *buf (grown when needed) with plain
// system calls: open, read, close, and nothing else. The result aliases
// *buf. A file read as empty returns a non-nil empty slice.
func readFile(p string, buf *[]byte) ([]byte, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	b := *buf
	n := 0
	for {
		if n == len(b) {
			b = append(b, make([]byte, len(b))...)
			*buf = b
		}
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if m == 0 {
			return b[:n:n], nil
		}
		n += m
		// A read that left more than half of a page-sized buffer free was
		// the whole file: sysfs and cgroup files are generated in one go
		// and no line is that long. This saves the read that returns 0.
		if free := len(b) - n; free >= 2048 && m < free {
			return b[:n:n], nil
		}
	}
}
