// Package boot exports what `systemd-analyze time` and `systemd-analyze
// blame` print, the health of the units and the timers of the maintenance
// jobs, read from the systemd manager over D-Bus (godbus/dbus).
//
// The boot timestamps are read once per boot, after the boot finished (until
// then on every scrape; a new /proc/sys/kernel/random/boot_id starts over);
// the unit list, blame and timers at most once per
// --collector.boot.unit-refresh-interval. Blame needs one GetAll per unit:
// a refresh reads only units that are new or changed state since they were
// last read, and every tenth refresh reads all of them (to catch a unit
// restarted back into the same state). A lost bus connection fails the
// scrape and is made again on the next one.
//
// It speaks to systemd with godbus directly rather than through go-systemd's
// dbus package (which is in the dependency tree): that package makes one
// blocking round trip per unit's properties, where this collector pipelines
// the GetAll calls of a refresh (up to 64 in flight on one connection), and
// it opens a second connection that subscribes to job signals this
// collector has no use for.
package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/godbus/dbus/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pantheros/monitoring/exporter/collector"
)

// DefaultTimersInclude matches the timers of pantherOS's maintenance jobs:
// nix-gc, nix-optimise, btrfs scrub (NixOS services.btrfs.autoScrub names
// them btrfs-scrub-<fs>), and snapshot timers (snapper, btrbk, anything
// with "snapshot" in its name).
const DefaultTimersInclude = `^(nix-gc|nix-optimise|btrfs-scrub.*|snapper-.*|btrbk.*|.*snapshot.*)\.timer$`

// Options are the boot collector's flags.
type Options struct {
	DBusAddress     string        // empty: the system bus
	BlameTop        int           // slowest N units of blame
	BlameInclude    string        // regexp of units always in blame
	TimersInclude   string        // regexp of timer units to export
	RefreshInterval time.Duration // unit list refreshed at most this often
	// FullRefreshEvery: every this many refreshes, re-read the timestamps
	// of every unit; in between only of units that are new or whose state
	// changed. 0 means 10.
	FullRefreshEvery int
}

var flags Options

func init() {
	kingpin.Flag("collector.boot.dbus-address",
		"D-Bus address of the bus systemd is on (empty: the system bus, $DBUS_SYSTEM_BUS_ADDRESS or unix:path=/run/dbus/system_bus_socket).").
		Default("").StringVar(&flags.DBusAddress)
	kingpin.Flag("collector.boot.blame-top", "How many of the slowest units (systemd-analyze blame) to export.").
		Default("20").IntVar(&flags.BlameTop)
	kingpin.Flag("collector.boot.blame-include", "Regexp of units whose activation time is exported even when not among the slowest.").
		Default("").StringVar(&flags.BlameInclude)
	kingpin.Flag("collector.boot.timers-include", "Regexp of timer units to export the last and next trigger and last result of.").
		Default(DefaultTimersInclude).StringVar(&flags.TimersInclude)
	kingpin.Flag("collector.boot.unit-refresh-interval", "Read the unit list, blame and timers at most this often.").
		Default("30s").DurationVar(&flags.RefreshInterval)
	collector.Register("boot", true, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg, flags)
	})
}

var (
	stageDuration = collector.Gauge("boot", "boot_stage_duration_seconds",
		"Boot stage durations as `systemd-analyze time` computes them: firmware, loader, kernel, initrd, soft_reboot, userspace, total (in a container or after a soft reboot: manager start to finish).", "stage")
	phaseDuration = collector.Gauge("boot", "boot_phase_duration_seconds",
		"The manager's own start-up steps (security, generators, units_load and their initrd_ twins), where systemd records them.", "stage")
	bootFinished = collector.Gauge("boot", "boot_finished",
		"1 when the manager finished booting (FinishTimestampMonotonic set), 0 while `systemd-analyze time` says bootup is not yet finished.")
	defaultTarget = collector.Gauge("boot", "boot_default_target_seconds",
		"Time from the userspace start until default.target was reached.")
	unitActivation = collector.Gauge("boot", "boot_unit_activation_seconds",
		"Activation time of a unit as `systemd-analyze blame` computes it, for the slowest units and those included by name.", "unit")
	unitsByState = collector.Gauge("boot", "systemd_units",
		"Loaded units by ActiveState (ListUnits), every unit type counted, device units included; 0 for a state no unit is in.", "state")
	unitFailed = collector.Gauge("boot", "systemd_unit_failed",
		"1 for each loaded unit whose ActiveState is failed (ListUnits); units not failed have no series.", "unit")
	timerLast = collector.Gauge("boot", "systemd_timer_last_trigger_timestamp_seconds",
		"When the timer last triggered (LastTriggerUSec), 0 if never.", "unit")
	timerNext = collector.Gauge("boot", "systemd_timer_next_trigger_timestamp_seconds",
		"When the timer triggers next (as systemctl list-timers computes it); absent when it will not.", "unit")
	timerResult = collector.Gauge("boot", "systemd_timer_last_result",
		"1 labelled with the Result of the service the timer starts (success, exit-code, signal, timeout, ...).", "unit", "service", "result")
)

// unitStates are always exported for panther_systemd_units, 0 when none.
var unitStates = []string{"active", "activating", "deactivating", "failed", "inactive", "maintenance", "reloading", "refreshing"}

const (
	busName     = "org.freedesktop.systemd1"
	managerPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIfc  = "org.freedesktop.systemd1.Manager"
	unitIfc     = "org.freedesktop.systemd1.Unit"
	timerIfc    = "org.freedesktop.systemd1.Timer"
	serviceIfc  = "org.freedesktop.systemd1.Service"
	propsGetAll = "org.freedesktop.DBus.Properties.GetAll"
	propsGet    = "org.freedesktop.DBus.Properties.Get"
	// inFlight bounds the calls pipelined on the connection (dbus-daemon
	// limits pending replies per connection).
	inFlight = 64
)

// Boot is the boot collector.
type Boot struct {
	cfg      collector.Config
	logger   *slog.Logger
	opts     Options
	blameInc *regexp.Regexp
	timerInc *regexp.Regexp

	mu     sync.Mutex
	conn   *dbus.Conn
	bootID string
	boot   *bootState          // nil until read; kept once finished
	units  []prometheus.Metric // unit list, blame and timer metrics of the last refresh
	unitAt time.Time
	// unitTimes caches each unit's timestamps by object path, with the
	// state they were read in; refreshes counts unit refreshes.
	unitTimes map[dbus.ObjectPath]cachedUnit
	refreshes int
}

type cachedUnit struct {
	active, sub string
	times       UnitTimes
}

type bootState struct {
	analysis Analysis
	defTgt   uint64
	defOK    bool
}

// New builds the collector; it fails only on bad flags. It does not connect:
// the first scrape does.
func New(cfg collector.Config, o Options) (*Boot, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Boot{cfg: cfg, logger: cfg.Logger, opts: o}
	var err error
	if o.BlameInclude != "" {
		if b.blameInc, err = regexp.Compile(o.BlameInclude); err != nil {
			return nil, fmt.Errorf("--collector.boot.blame-include: %w", err)
		}
	}
	if o.TimersInclude != "" {
		if b.timerInc, err = regexp.Compile(o.TimersInclude); err != nil {
			return nil, fmt.Errorf("--collector.boot.timers-include: %w", err)
		}
	}
	if b.opts.FullRefreshEvery <= 0 {
		b.opts.FullRefreshEvery = 10
	}
	if o.BlameTop < 0 {
		return nil, fmt.Errorf("--collector.boot.blame-top: %d < 0", o.BlameTop)
	}
	return b, nil
}

// Close drops the bus connection.
func (b *Boot) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropConn()
	return nil
}

func (b *Boot) address() string {
	if b.opts.DBusAddress != "" {
		return b.opts.DBusAddress
	}
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return "unix:path=/run/dbus/system_bus_socket"
}

func (b *Boot) dropConn() {
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
}

// connect returns the live connection, dialling a new one when there is
// none. Dialling is bounded by ctx: the connection's own context is
// cancelled (closing it) if ctx ends first.
func (b *Boot) connect(ctx context.Context) (*dbus.Conn, error) {
	if b.conn != nil && b.conn.Connected() {
		return b.conn, nil
	}
	b.dropConn()
	connCtx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	conn, err := dbus.Connect(b.address(), dbus.WithContext(connCtx))
	if !stop() {
		// ctx ended while dialling: the connection is closed.
		if conn != nil {
			conn.Close()
		}
		cancel()
		return nil, fmt.Errorf("connect %s: %w", b.address(), ctx.Err())
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connect %s: %w", b.address(), safeErr(err))
	}
	// Closing conn cancels connCtx's child; cancel connCtx then too.
	context.AfterFunc(conn.Context(), cancel)
	b.conn = conn
	return conn, nil
}

// callErr keeps D-Bus errors (the peer answered) and drops the connection
// on transport errors, so the next scrape reconnects.
func (b *Boot) callErr(err error) error {
	var de dbus.Error
	var dep *dbus.Error
	if !errors.As(err, &de) && !errors.As(err, &dep) {
		b.dropConn()
	} else if b.conn != nil && !b.conn.Connected() {
		b.dropConn()
	}
	return err
}

func (b *Boot) readBootID() string {
	id, err := os.ReadFile(b.cfg.Proc("sys", "kernel", "random", "boot_id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(id))
}

// Update implements collector.Collector.
func (b *Boot) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	b.mu.Lock()
	defer b.mu.Unlock()

	if id := b.readBootID(); id != b.bootID {
		b.bootID, b.boot, b.units, b.unitTimes = id, nil, nil, nil
	}
	var errs []error
	conn, err := b.connect(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if conn != nil && (b.boot == nil || !b.boot.analysis.Finished) {
		if st, err := b.readBoot(ctx, conn); err != nil {
			errs = append(errs, fmt.Errorf("boot timestamps via %s: %w", b.address(), safeErr(b.callErr(err))))
		} else {
			b.boot = st
		}
	}
	if b.boot != nil {
		b.sendBoot(ch)
	}
	if b.conn != nil && (b.units == nil || time.Since(b.unitAt) >= b.opts.RefreshInterval) {
		ms, err := b.readUnits(ctx, b.conn)
		if err != nil {
			b.units = nil
			errs = append(errs, fmt.Errorf("units via %s: %w", b.address(), safeErr(b.callErr(err))))
		} else {
			b.units, b.unitAt = ms, time.Now()
		}
	} else if b.conn == nil {
		b.units = nil // stale unit health is worse than none
	}
	for _, m := range b.units {
		ch <- m
	}
	return errors.Join(errs...)
}

func (b *Boot) sendBoot(ch chan<- prometheus.Metric) {
	a := b.boot.analysis
	fin := 0.0
	if a.Finished {
		fin = 1
	}
	ch <- bootFinished.Const(fin)
	for _, s := range a.Stages {
		ch <- stageDuration.Const(seconds(s.Usec), s.Name)
	}
	for _, p := range a.Phases {
		ch <- phaseDuration.Const(seconds(p.Usec), p.Name)
	}
	if b.boot.defOK {
		ch <- defaultTarget.Const(seconds(b.boot.defTgt))
	}
}

func seconds(usec uint64) float64 { return float64(usec) / 1e6 }

func (b *Boot) readBoot(ctx context.Context, conn *dbus.Conn) (*bootState, error) {
	var props map[string]dbus.Variant
	obj := conn.Object(busName, managerPath)
	if err := obj.CallWithContext(ctx, propsGetAll, 0, managerIfc).Store(&props); err != nil {
		return nil, err
	}
	raw, _ := ParseBootTimes(props)
	st := &bootState{analysis: Analyze(raw)}
	// default.target: an alias of the real target, which systemd resolves.
	var v dbus.Variant
	tgt := conn.Object(busName, UnitPath("default.target"))
	if err := tgt.CallWithContext(ctx, propsGet, 0, unitIfc, "ActiveEnterTimestampMonotonic").Store(&v); err == nil {
		if u, ok := v.Value().(uint64); ok {
			st.defTgt, st.defOK = st.analysis.DefaultTargetReached(u)
		}
	} else if !isDBusError(err) {
		return nil, err
	}
	return st, nil
}

func isDBusError(err error) bool {
	var de dbus.Error
	var dep *dbus.Error
	return errors.As(err, &de) || errors.As(err, &dep)
}

// unitStatus is one entry of ListUnits' a(ssssssouso).
type unitStatus struct {
	Name, Description, LoadState, ActiveState, SubState, Following string
	Path                                                           dbus.ObjectPath
	JobID                                                          uint32
	JobType                                                        string
	JobPath                                                        dbus.ObjectPath
}

type blamed struct {
	name string
	usec uint64
}

func (b *Boot) readUnits(ctx context.Context, conn *dbus.Conn) ([]prometheus.Metric, error) {
	var units []unitStatus
	mgr := conn.Object(busName, managerPath)
	if err := mgr.CallWithContext(ctx, managerIfc+".ListUnits", 0).Store(&units); err != nil {
		return nil, err
	}
	var out []prometheus.Metric
	counts := map[string]int{}
	for _, s := range unitStates {
		counts[s] = 0
	}
	byName := make(map[string]dbus.ObjectPath, len(units))
	var timers []unitStatus
	for _, u := range units {
		counts[u.ActiveState]++
		byName[u.Name] = u.Path
		if u.ActiveState == "failed" {
			out = append(out, unitFailed.Const(1, u.Name))
		}
		if b.timerInc != nil && strings.HasSuffix(u.Name, ".timer") && b.timerInc.MatchString(u.Name) {
			timers = append(timers, u)
		}
	}
	for s, n := range counts {
		out = append(out, unitsByState.Const(float64(n), s))
	}

	// Blame needs the boot analysis (its reverse offset); without it
	// (manager properties unreadable) blame is left out this round.
	if b.boot != nil && (b.opts.BlameTop > 0 || b.blameInc != nil) {
		bl, err := b.blame(ctx, conn, units)
		if err != nil {
			return nil, err
		}
		for _, x := range bl {
			out = append(out, unitActivation.Const(seconds(x.usec), x.name))
		}
	}
	if len(timers) > 0 {
		ms, err := b.timers(ctx, conn, timers, byName)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// pipeline makes n calls, at most inFlight at a time: start(i, done)
// sends call i with done as its channel, and fn gets each answered call as
// it arrives. A D-Bus error (the peer answered, e.g. the unit went away) is
// fn's to handle; a transport error stops new calls and is returned once
// the started ones are back.
func pipeline(n int, start func(i int, done chan *dbus.Call) *dbus.Call, fn func(i int, c *dbus.Call)) error {
	done := make(chan *dbus.Call, inFlight)
	index := make(map[*dbus.Call]int, inFlight)
	next, pending := 0, 0
	send := func() {
		index[start(next, done)] = next
		next++
		pending++
	}
	for next < n && next < inFlight {
		send()
	}
	var firstErr error
	for pending > 0 {
		c := <-done
		pending--
		i := index[c]
		delete(index, c)
		if c.Err != nil && !isDBusError(c.Err) {
			if firstErr == nil {
				firstErr = c.Err
			}
			continue
		}
		if next < n && firstErr == nil {
			send()
		}
		fn(i, c)
	}
	return firstErr
}

// getAll pipelines GetAll(iface) on paths; fn gets each answer (or the
// D-Bus error for that object).
func getAll(ctx context.Context, conn *dbus.Conn, paths []dbus.ObjectPath, iface string,
	fn func(i int, props map[string]dbus.Variant, err error)) error {
	return pipeline(len(paths), func(i int, done chan *dbus.Call) *dbus.Call {
		return conn.Object(busName, paths[i]).GoWithContext(ctx, propsGetAll, 0, done, iface)
	}, func(i int, c *dbus.Call) {
		var props map[string]dbus.Variant
		err := c.Store(&props)
		fn(i, props, err)
	})
}

// blame reads the timestamps of the units that need it (all on a full
// refresh, else those new or changed state since they were read) and
// computes blame from them all.
func (b *Boot) blame(ctx context.Context, conn *dbus.Conn, units []unitStatus) ([]blamed, error) {
	full := b.refreshes%b.opts.FullRefreshEvery == 0
	cache := make(map[dbus.ObjectPath]cachedUnit, len(units))
	var need []int
	for i, u := range units {
		c, ok := b.unitTimes[u.Path]
		if full || !ok || c.active != u.ActiveState || c.sub != u.SubState {
			need = append(need, i)
			continue
		}
		cache[u.Path] = c
	}
	paths := make([]dbus.ObjectPath, len(need))
	for j, i := range need {
		paths[j] = units[i].Path
	}
	err := getAll(ctx, conn, paths, unitIfc, func(j int, props map[string]dbus.Variant, err error) {
		if err != nil {
			return // the unit went away
		}
		u := units[need[j]]
		cache[u.Path] = cachedUnit{u.ActiveState, u.SubState, ParseUnitTimes(props)}
	})
	if err != nil {
		return nil, err
	}
	b.unitTimes = cache
	b.refreshes++
	a := b.boot.analysis
	var all []blamed
	for _, u := range units {
		if c, ok := cache[u.Path]; ok {
			if usec, ok := a.Blame(c.times); ok {
				all = append(all, blamed{u.Name, usec})
			}
		}
	}
	return SelectBlame(all, b.opts.BlameTop, b.blameInc), nil
}

// SelectBlame keeps the top slowest units plus those matching include,
// slowest first (ties by name, as blame's table sort is stable on ListUnits
// order, which is by name).
func SelectBlame(all []blamed, top int, include *regexp.Regexp) []blamed {
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].usec != all[j].usec {
			return all[i].usec > all[j].usec
		}
		return all[i].name < all[j].name
	})
	var out []blamed
	for i, x := range all {
		if i < top || (include != nil && include.MatchString(x.name)) {
			out = append(out, x)
		}
	}
	return out
}

func (b *Boot) timers(ctx context.Context, conn *dbus.Conn, timers []unitStatus, byName map[string]dbus.ObjectPath) ([]prometheus.Metric, error) {
	var out []prometheus.Metric
	var nowMono unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &nowMono)
	nowRealtime := uint64(time.Now().UnixMicro())
	nowMonotonic := uint64(nowMono.Nano() / 1000)

	paths := make([]dbus.ObjectPath, len(timers))
	for i, t := range timers {
		paths[i] = t.Path
	}
	services := make([]string, len(timers))
	err := getAll(ctx, conn, paths, timerIfc, func(i int, props map[string]dbus.Variant, err error) {
		if err != nil {
			return // the timer went away
		}
		name := timers[i].Name
		last, _ := props["LastTriggerUSec"].Value().(uint64)
		if last == usecInfinity {
			last = 0
		}
		out = append(out, timerLast.Const(seconds(last), name))
		nextRT, _ := props["NextElapseUSecRealtime"].Value().(uint64)
		nextMono, _ := props["NextElapseUSecMonotonic"].Value().(uint64)
		if next := NextElapse(nowRealtime, nowMonotonic, nextRT, nextMono); timestampIsSet(next) {
			out = append(out, timerNext.Const(seconds(next), name))
		}
		services[i], _ = props["Unit"].Value().(string)
	})
	if err != nil {
		return nil, err
	}
	// The Result of the service each timer starts.
	var idx []int
	for i, s := range services {
		if s != "" {
			idx = append(idx, i)
		}
	}
	err = pipeline(len(idx), func(j int, done chan *dbus.Call) *dbus.Call {
		svc := services[idx[j]]
		path, ok := byName[svc]
		if !ok {
			path = UnitPath(svc)
		}
		return conn.Object(busName, path).GoWithContext(ctx, propsGet, 0, done, serviceIfc, "Result")
	}, func(j int, c *dbus.Call) {
		var v dbus.Variant
		if c.Store(&v) != nil {
			return // not loaded, or not a service
		}
		if res, ok := v.Value().(string); ok && res != "" {
			i := idx[j]
			out = append(out, timerResult.Const(1, timers[i].Name, services[i], res))
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NextElapse is systemctl list-timers' calc_next_elapse: the next trigger in
// realtime µs from the timer's realtime and monotonic next elapse.
func NextElapse(nowRealtime, nowMonotonic, nextRealtime, nextMonotonic uint64) uint64 {
	if !timestampIsSet(nextMonotonic) {
		return nextRealtime
	}
	var converted uint64
	if nextMonotonic > nowMonotonic {
		converted = nowRealtime + (nextMonotonic - nowMonotonic)
	} else {
		d := nowMonotonic - nextMonotonic
		if d > nowRealtime {
			return nextRealtime
		}
		converted = nowRealtime - d
	}
	if timestampIsSet(nextRealtime) && nextRealtime < converted {
		return nextRealtime
	}
	return converted
}

// UnitPath is systemd's unit_dbus_path_from_name: the object path of a unit
// by name, escaped as bus_label_escape does.
func UnitPath(name string) dbus.ObjectPath {
	const hex = "0123456789abcdef"
	var sb strings.Builder
	sb.WriteString("/org/freedesktop/systemd1/unit/")
	if name == "" {
		sb.WriteByte('_')
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('_')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return dbus.ObjectPath(sb.String())
}
