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
	"sync/atomic"
	"syscall"
	"time"

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

	// open holds the open files of the units reported last, by cgroup
	// directory: at most maxOpen units, so at most maxOpen*filesPerUnit
	// (11) descriptors; 300 units (the default cap) keep 3,300 open.
	open     map[string]*unitFiles
	maxOpen  int
	reported map[string]bool  // cgroup directories of the units reported last
	now      func() time.Time // when to look for absent files again; tests set it
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
	u.open, u.reported, u.maxOpen, u.now = map[string]*unitFiles{}, map[string]bool{}, u.max, time.Now
	// Keep files open within half of the descriptor limit, leaving the rest
	// to connections and the other collectors; units beyond it are read
	// with open, read and close on every scrape.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		if n := int(min(lim.Cur/2, 1<<20)) / filesPerUnit; n < u.maxOpen {
			u.maxOpen = n
			logger.Info("the open file limit is too low to keep every unit's cgroup files open; the others are reopened on every scrape",
				"limit", lim.Cur, "kept_open_units", n, "max_units", u.max, "files_per_unit", filesPerUnit)
		}
	}
	return u, nil
}

// closeAll closes every unit's open files.
func (u *Units) closeAll() {
	for dir, f := range u.open {
		f.close()
		delete(u.open, dir)
	}
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
	samples                      []prometheus.Metric
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
		u.closeAll()
		return errors.Join(errs...)
	}
	all, sets := u.read(ctx, list)
	var keep []bool // nil: every unit
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
		keep = make([]bool, len(all))
		for _, i := range order[:u.max] {
			keep[i] = true
		}
	}
	// Keep the files of the units reported open for the next scrape; close
	// those of units gone or left out.
	clear(u.reported)
	for i, un := range list {
		if keep == nil || keep[i] {
			u.reported[un.dir] = true
		}
		if f := sets[i]; f != nil && (keep == nil || keep[i]) {
			u.open[un.dir] = f
			continue
		} else if f != nil {
			f.close()
		}
		delete(u.open, un.dir)
	}
	drop := 0
	if keep != nil {
		var ks []stats
		for i := range all {
			if keep[i] {
				ks = append(ks, all[i])
			}
		}
		drop = len(all) - u.max
		all = ks
	}
	if drop != u.lastOmitted && drop > 0 {
		u.logger.Warn("more units than --collector.units.max-units; those using the least memory are left out",
			"units", len(all)+drop, "max", u.max, "omitted", drop)
	}
	u.lastOmitted = drop
	ch <- omitted.Const(float64(drop))
	for _, s := range all {
		if s.err != nil {
			errs = append(errs, s.err)
		}
		for _, m := range s.samples {
			ch <- m
		}
	}
	return errors.Join(errs...)
}

// unitSamples builds the samples of one unit from what was read (also after an
// error in one of its files: what could be read is kept). The readers build
// them, in parallel: at 300 units this is a few thousand samples.
func unitSamples(n string, s *stats) []prometheus.Metric {
	if s.gone {
		return nil
	}
	ms := make([]prometheus.Metric, 0, 16)
	add := func(m prometheus.Metric) { ms = append(ms, m) }
	if s.hasMemory {
		add(memory.Const(float64(s.memory), n))
	}
	if s.hasPeak {
		add(memoryPeak.Const(float64(s.peak), n))
	}
	if s.hasLimit {
		add(memoryLimit.Const(float64(s.limit), n))
	}
	if s.hasSwap {
		add(swap.Const(float64(s.swap), n))
	}
	if s.cpuUsec != noValue {
		add(cpuSeconds.Const(float64(s.cpuUsec)/1e6, n))
	}
	if s.hasIO {
		add(ioRead.Const(float64(s.io.rbytes), n))
		add(ioWritten.Const(float64(s.io.wbytes), n))
	}
	if s.hasTasks {
		add(tasks.Const(float64(s.tasks), n))
	}
	if s.oomKills != noValue {
		add(oomKills.Const(float64(s.oomKills), n))
	}
	for r, res := range resources {
		if !s.hasPSI[r] {
			continue
		}
		add(pressureSome.Const(float64(s.psi[r].some)/1e6, n, res))
		if s.psi[r].hasFull {
			add(pressureFull.Const(float64(s.psi[r].full)/1e6, n, res))
		}
	}
	return ms
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

// read reads every unit on up to GOMAXPROCS goroutines (at most 4): the
// files are small and the cost is the system calls, which run on every
// core. Units keep their files open between scrapes (unitFiles) while there
// is room under u.maxOpen units; the others are opened, read and closed.
// It returns what each unit gave and its open files (nil: none kept),
// for Update to keep or close.
func (u *Units) read(ctx context.Context, list []unit) ([]stats, []*unitFiles) {
	now := u.now()
	// Close the files of units no longer listed first, to make room.
	listed := make(map[string]bool, len(list))
	for _, un := range list {
		listed[un.dir] = true
	}
	for dir, f := range u.open {
		if !listed[dir] {
			f.close()
			delete(u.open, dir)
		}
	}
	sets := make([]*unitFiles, len(list))
	persist := make([]bool, len(list))
	for i, un := range list {
		f := u.open[un.dir]
		if f != nil && f.ctl != un.controllers { // its parent enabled or disabled a controller
			f.close()
			delete(u.open, un.dir)
			f = nil
		}
		sets[i], persist[i] = f, f != nil
	}
	// The room left goes first to units reported last time (with more
	// units than max-units, those left out would only be closed again),
	// then in list order.
	room := u.maxOpen - len(u.open)
	for pass := range 2 {
		for i, un := range list {
			if room > 0 && !persist[i] && (pass == 1 || u.reported[un.dir]) {
				persist[i], room = true, room-1
			}
		}
	}

	out := make([]stats, len(list))
	one := func(i int, buf *[]byte) {
		if ctx.Err() != nil {
			out[i] = stats{err: fmt.Errorf("%s: %w", list[i].dir, ctx.Err()), cpuUsec: noValue, oomKills: noValue}
			return
		}
		out[i], sets[i] = readOne(list[i], sets[i], buf, now)
		out[i].samples = unitSamples(list[i].name, &out[i])
		if !persist[i] && sets[i] != nil {
			sets[i].close()
			sets[i] = nil
		}
	}
	// Each reader takes the next unit not taken yet: on a loaded machine
	// one whose thread is descheduled holds up only the unit it reads.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4, len(list)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := int(next.Add(1) - 1); i < len(list); i = int(next.Add(1) - 1) {
				one(i, &buf)
			}
		}()
	}
	wg.Wait()
	return out, sets
}

// readOne reads one unit through its open files f, opening them when f is
// nil. It returns the files to keep (nil when the unit is gone).
func readOne(un unit, f *unitFiles, buf *[]byte, now time.Time) (stats, *unitFiles) {
	gone := stats{gone: true, cpuUsec: noValue, oomKills: noValue}
	for attempt := 0; attempt < 2; attempt++ {
		if f == nil {
			var vanished bool
			if f, vanished = openUnit(un.dir, un.controllers, now); vanished {
				return gone, nil
			}
		} else if now.After(f.retry) {
			f.openAbsent(now)
		}
		s, stale := readUnit(f, buf)
		if !stale {
			return s, f
		}
		// The cgroup was removed under the open files: the unit stopped,
		// or was restarted into a new cgroup of the same name. Reopen once.
		f.close()
		f = nil
	}
	return gone, nil
}

// required tells the files a unit with their controller must have; the
// others may be absent: memory.peak before kernel 5.19,
// memory.swap.current without swap accounting, *.pressure without PSI.
var required = [filesPerUnit]bool{
	fCPUStat: true, fMemCurrent: true, fMemMax: true, fMemEvents: true, fIOStat: true, fPids: true,
}

// readUnit reads the files of one unit. A file of an enabled controller
// that is missing, truncated or garbled is an error naming it; the unit's
// other files are still read. stale is true when the cgroup was removed
// under the open files.
func readUnit(f *unitFiles, buf *[]byte) (s stats, stale bool) {
	s = stats{cpuUsec: noValue, oomKills: noValue}
	var errs []error
	file := func(i int) []byte {
		if stale || !f.ctl.has(i) {
			return nil
		}
		b, st, err := f.read(i, buf)
		switch {
		case err == nil:
			return b
		case st:
			stale = true
		case f.fd[i] < 0 && !required[i] &&
			(errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EOPNOTSUPP)):
		default:
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(f.dir, fileNames[i]), err))
		}
		return nil
	}
	bad := func(i int, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(f.dir, fileNames[i]), err))
	}
	value := func(i int, dst *uint64, has *bool) {
		if b := file(i); b != nil {
			v, ok, err := parseValue(b)
			if err != nil {
				bad(i, err)
			} else {
				*dst, *has = v, ok
			}
		}
	}
	if b := file(fCPUStat); b != nil {
		if err := parseKeyed(b, []string{"usage_usec"}, func(_ int, v uint64) { s.cpuUsec = v }); err != nil {
			bad(fCPUStat, err)
			s.cpuUsec = noValue
		}
	}
	value(fMemCurrent, &s.memory, &s.hasMemory)
	value(fMemPeak, &s.peak, &s.hasPeak)
	value(fMemMax, &s.limit, &s.hasLimit) // "max": no limit, no series
	value(fSwap, &s.swap, &s.hasSwap)
	if b := file(fMemEvents); b != nil {
		if err := parseKeyed(b, []string{"oom_kill"}, func(_ int, v uint64) { s.oomKills = v }); err != nil {
			bad(fMemEvents, err)
			s.oomKills = noValue
		}
	}
	if b := file(fIOStat); b != nil { // empty: no I/O yet
		st, err := parseIOStat(b)
		if err != nil {
			bad(fIOStat, err)
		} else {
			s.io, s.hasIO = st, true
		}
	}
	value(fPids, &s.tasks, &s.hasTasks)
	for r := range resources {
		i := fCPUPressure + r
		if b := file(i); b != nil {
			p, err := parsePressure(b)
			if err != nil {
				bad(i, err)
			} else {
				s.psi[r], s.hasPSI[r] = p, true
			}
		}
	}
	if stale {
		return stats{gone: true, cpuUsec: noValue, oomKills: noValue}, true
	}
	s.err = errors.Join(errs...)
	return s, false
}
