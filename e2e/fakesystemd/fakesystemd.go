// Package fakesystemd serves a fake systemd manager, org.freedesktop.systemd1,
// on a D-Bus bus with godbus, for tests: nothing real can run systemd here.
// It speaks the real wire protocol and the real interfaces: the Manager
// (ListUnits, GetUnit and its timestamp properties), units
// (org.freedesktop.systemd1.Unit), timers (...Timer) and services
// (...Service), all through org.freedesktop.DBus.Properties Get/GetAll, so
// that systemd-analyze and systemctl can talk to it too.
//
// A Seed is the state of one kind of machine (Laptop, Server, Container,
// Booting, SoftRebooted, Workstation); Start serves it on a bus, and the
// methods of Fake change it as a test goes (FinishBoot, Fail, ...).
package fakesystemd

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

// Unit is one loaded unit.
type Unit struct {
	Name        string
	Description string
	LoadState   string // loaded, not-found, masked ...
	ActiveState string // active, inactive, failed, activating ...
	SubState    string // running, exited, dead, waiting, failed ...

	// Monotonic µs, as org.freedesktop.systemd1.Unit has them.
	InactiveExit  uint64 // InactiveExitTimestampMonotonic (activating)
	ActiveEnter   uint64 // ActiveEnterTimestampMonotonic (activated)
	ActiveExit    uint64 // ActiveExitTimestampMonotonic (deactivating)
	InactiveEnter uint64 // InactiveEnterTimestampMonotonic (deactivated)

	// Timers (name ends in .timer).
	TimerUnit           string // the unit the timer starts
	LastTriggerUSec     uint64 // realtime µs, 0 never
	NextElapseRealtime  uint64 // realtime µs, 0 none
	NextElapseMonotonic uint64 // monotonic µs, 0 none

	// Services (name ends in .service).
	Result string // success, exit-code, signal, timeout ...
}

// Seed is the state the fake starts with.
type Seed struct {
	Name string
	// Manager timestamp properties (FirmwareTimestampMonotonic, ...). A
	// property absent from the map is absent from the bus, as on a systemd
	// that predates it.
	Manager map[string]uint64
	// DefaultTarget is what default.target resolves to (graphical.target).
	DefaultTarget  string
	Version        string
	Virtualization string
	Units          []Unit
}

// Clone is a deep copy of s.
func (s Seed) Clone() Seed {
	c := s
	c.Manager = make(map[string]uint64, len(s.Manager))
	for k, v := range s.Manager {
		c.Manager[k] = v
	}
	c.Units = append([]Unit(nil), s.Units...)
	return c
}

const (
	busName     = "org.freedesktop.systemd1"
	managerPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIfc  = "org.freedesktop.systemd1.Manager"
	unitIfc     = "org.freedesktop.systemd1.Unit"
	timerIfc    = "org.freedesktop.systemd1.Timer"
	serviceIfc  = "org.freedesktop.systemd1.Service"
	propsIfc    = "org.freedesktop.DBus.Properties"
)

// Fake is a running fake manager.
type Fake struct {
	conn *dbus.Conn

	mu     sync.Mutex
	seed   Seed
	byName map[string]int
	byPath map[dbus.ObjectPath]int
	calls  map[string]int
}

// Start connects to the bus at address, takes the name
// org.freedesktop.systemd1 and serves seed. Close ends it.
func Start(address string, seed Seed) (*Fake, error) {
	conn, err := dbus.Connect(address)
	if err != nil {
		return nil, fmt.Errorf("fakesystemd: connect %s: %w", address, err)
	}
	f := &Fake{conn: conn, seed: seed.Clone(), calls: map[string]int{}}
	f.index()
	if err := conn.Export(manager{f}, managerPath, managerIfc); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.ExportSubtree(properties{f}, managerPath, propsIfc); err != nil {
		conn.Close()
		return nil, err
	}
	reply, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("fakesystemd: request name: %w", err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		return nil, fmt.Errorf("fakesystemd: %s is taken (%v)", busName, reply)
	}
	return f, nil
}

// Close leaves the bus.
func (f *Fake) Close() error { return f.conn.Close() }

// Connected reports whether the fake is still on its bus.
func (f *Fake) Connected() bool { return f.conn.Connected() }

func (f *Fake) index() {
	sort.SliceStable(f.seed.Units, func(i, j int) bool { return f.seed.Units[i].Name < f.seed.Units[j].Name })
	f.byName = make(map[string]int, len(f.seed.Units))
	f.byPath = make(map[dbus.ObjectPath]int, len(f.seed.Units))
	for i, u := range f.seed.Units {
		f.byName[u.Name] = i
		f.byPath[UnitPath(u.Name)] = i
	}
	if t, ok := f.byName[f.seed.DefaultTarget]; ok {
		f.byPath[UnitPath("default.target")] = t
	}
}

// Seed returns a copy of the current state.
func (f *Fake) Seed() Seed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seed.Clone()
}

// Calls returns how many times each method (Interface.Member) was called.
func (f *Fake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

// SetManager sets a Manager timestamp property (FinishTimestampMonotonic ...).
func (f *Fake) SetManager(name string, v uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seed.Manager[name] = v
}

// FinishBoot sets FinishTimestampMonotonic: the boot is over.
func (f *Fake) FinishBoot(finish uint64) { f.SetManager("FinishTimestampMonotonic", finish) }

// UpdateUnit changes the named unit with fn; it adds the unit when it is not
// loaded yet. Its ListUnits entry and properties change with it.
func (f *Fake) UpdateUnit(name string, fn func(*Unit)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.byName[name]
	if !ok {
		f.seed.Units = append(f.seed.Units, Unit{Name: name, LoadState: "loaded", ActiveState: "inactive", SubState: "dead"})
		f.index()
		i = f.byName[name]
	}
	fn(&f.seed.Units[i])
}

// Fail puts a unit in the failed state with a service Result (exit-code,
// signal, timeout ...).
func (f *Fake) Fail(name, result string) {
	f.UpdateUnit(name, func(u *Unit) {
		u.ActiveState, u.SubState, u.Result = "failed", "failed", result
	})
}

// SetState sets a unit's ActiveState and SubState.
func (f *Fake) SetState(name, active, sub string) {
	f.UpdateUnit(name, func(u *Unit) { u.ActiveState, u.SubState = active, sub })
}

// UnitPath is the object path of a unit, escaped as systemd's
// bus_label_escape does.
func UnitPath(name string) dbus.ObjectPath {
	var b strings.Builder
	b.WriteString("/org/freedesktop/systemd1/unit/")
	if name == "" {
		b.WriteString("_")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return dbus.ObjectPath(b.String())
}

// unitStatus is one ListUnits entry, (ssssssouso).
type unitStatus struct {
	Name, Description, LoadState, ActiveState, SubState, Following string
	Path                                                           dbus.ObjectPath
	JobID                                                          uint32
	JobType                                                        string
	JobPath                                                        dbus.ObjectPath
}

type manager struct{ f *Fake }

// ListUnits is org.freedesktop.systemd1.Manager.ListUnits.
func (m manager) ListUnits() ([]unitStatus, *dbus.Error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[managerIfc+".ListUnits"]++
	out := make([]unitStatus, 0, len(f.seed.Units))
	for _, u := range f.seed.Units {
		out = append(out, unitStatus{
			Name: u.Name, Description: u.Description, LoadState: u.LoadState,
			ActiveState: u.ActiveState, SubState: u.SubState,
			Path: UnitPath(u.Name), JobPath: "/",
		})
	}
	return out, nil
}

// GetUnit is org.freedesktop.systemd1.Manager.GetUnit.
func (m manager) GetUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[managerIfc+".GetUnit"]++
	if _, ok := f.byName[name]; !ok {
		return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{fmt.Sprintf("Unit %s not loaded.", name)})
	}
	return UnitPath(name), nil
}

type properties struct{ f *Fake }

func unknownProperty(name string) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"Unknown property " + name})
}

func unknownInterface(iface string) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"Unknown interface " + iface})
}

// Get is org.freedesktop.DBus.Properties.Get.
func (p properties) Get(msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	all, derr := p.getAll(msg, iface, "Get")
	if derr != nil {
		return dbus.Variant{}, derr
	}
	v, ok := all[name]
	if !ok {
		return dbus.Variant{}, unknownProperty(name)
	}
	return v, nil
}

// GetAll is org.freedesktop.DBus.Properties.GetAll.
func (p properties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	return p.getAll(msg, iface, "GetAll")
}

// Set is org.freedesktop.DBus.Properties.Set: every property here is
// read-only, as systemd's are.
func (p properties) Set(msg dbus.Message, iface, name string, v dbus.Variant) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.PropertyReadOnly", []any{"Property " + name + " is read-only"})
}

func (p properties) getAll(msg dbus.Message, iface, method string) (map[string]dbus.Variant, *dbus.Error) {
	f := p.f
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[propsIfc+"."+method]++
	if path == managerPath {
		if iface != managerIfc && iface != "" {
			return nil, unknownInterface(iface)
		}
		return f.managerProps(), nil
	}
	i, ok := f.byPath[path]
	if !ok {
		return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownObject", []any{"Unknown object " + string(path)})
	}
	u := f.seed.Units[i]
	switch {
	case iface == unitIfc:
		return unitProps(u), nil
	case iface == timerIfc && strings.HasSuffix(u.Name, ".timer"):
		return timerProps(u), nil
	case iface == serviceIfc && strings.HasSuffix(u.Name, ".service"):
		return serviceProps(u), nil
	case iface == "":
		all := unitProps(u)
		if strings.HasSuffix(u.Name, ".timer") {
			for k, v := range timerProps(u) {
				all[k] = v
			}
		}
		if strings.HasSuffix(u.Name, ".service") {
			for k, v := range serviceProps(u) {
				all[k] = v
			}
		}
		return all, nil
	}
	return nil, unknownInterface(iface)
}

func (f *Fake) managerProps() map[string]dbus.Variant {
	m := map[string]dbus.Variant{
		"Version":               dbus.MakeVariant(f.seed.Version),
		"Features":              dbus.MakeVariant("+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP"),
		"Virtualization":        dbus.MakeVariant(f.seed.Virtualization),
		"Architecture":          dbus.MakeVariant("x86-64"),
		"Tainted":               dbus.MakeVariant(""),
		"SystemState":           dbus.MakeVariant("running"),
		"NNames":                dbus.MakeVariant(uint32(len(f.seed.Units))),
		"NFailedUnits":          dbus.MakeVariant(uint32(0)),
		"NJobs":                 dbus.MakeVariant(uint32(0)),
		"Progress":              dbus.MakeVariant(float64(1)),
		"Environment":           dbus.MakeVariant([]string{"LANG=C.UTF-8", "PATH=/run/wrappers/bin:/run/current-system/sw/bin"}),
		"UnitPath":              dbus.MakeVariant([]string{"/etc/systemd/system", "/run/systemd/system", "/etc/systemd/system-generators"}),
		"DefaultStandardOutput": dbus.MakeVariant("journal"),
		"LogLevel":              dbus.MakeVariant("info"),
	}
	failed := uint32(0)
	for _, u := range f.seed.Units {
		if u.ActiveState == "failed" {
			failed++
		}
	}
	m["NFailedUnits"] = dbus.MakeVariant(failed)
	if fin, ok := f.seed.Manager["FinishTimestampMonotonic"]; !ok || fin == 0 {
		m["SystemState"] = dbus.MakeVariant("starting")
		m["Progress"] = dbus.MakeVariant(0.5)
	}
	for k, v := range f.seed.Manager {
		m[k] = dbus.MakeVariant(v)
		// Each XTimestampMonotonic has its realtime twin XTimestamp.
		if base, ok := strings.CutSuffix(k, "Monotonic"); ok {
			if _, set := f.seed.Manager[base]; !set {
				m[base] = dbus.MakeVariant(uint64(0))
			}
		}
	}
	return m
}

func unitProps(u Unit) map[string]dbus.Variant {
	none := []string{}
	return map[string]dbus.Variant{
		"Id":                              dbus.MakeVariant(u.Name),
		"Names":                           dbus.MakeVariant([]string{u.Name}),
		"Following":                       dbus.MakeVariant(""),
		"Requires":                        dbus.MakeVariant(none),
		"Requisite":                       dbus.MakeVariant(none),
		"Wants":                           dbus.MakeVariant([]string{}),
		"Upholds":                         dbus.MakeVariant(none),
		"Conflicts":                       dbus.MakeVariant([]string{"shutdown.target"}),
		"Before":                          dbus.MakeVariant([]string{"shutdown.target"}),
		"After":                           dbus.MakeVariant([]string{"sysinit.target", "basic.target"}),
		"Description":                     dbus.MakeVariant(u.Description),
		"LoadState":                       dbus.MakeVariant(u.LoadState),
		"ActiveState":                     dbus.MakeVariant(u.ActiveState),
		"SubState":                        dbus.MakeVariant(u.SubState),
		"FragmentPath":                    dbus.MakeVariant("/etc/systemd/system/" + u.Name),
		"UnitFileState":                   dbus.MakeVariant("enabled"),
		"InactiveExitTimestamp":           dbus.MakeVariant(realtime(u.InactiveExit)),
		"InactiveExitTimestampMonotonic":  dbus.MakeVariant(u.InactiveExit),
		"ActiveEnterTimestamp":            dbus.MakeVariant(realtime(u.ActiveEnter)),
		"ActiveEnterTimestampMonotonic":   dbus.MakeVariant(u.ActiveEnter),
		"ActiveExitTimestamp":             dbus.MakeVariant(realtime(u.ActiveExit)),
		"ActiveExitTimestampMonotonic":    dbus.MakeVariant(u.ActiveExit),
		"InactiveEnterTimestamp":          dbus.MakeVariant(realtime(u.InactiveEnter)),
		"InactiveEnterTimestampMonotonic": dbus.MakeVariant(u.InactiveEnter),
		"CanStart":                        dbus.MakeVariant(true),
		"CanStop":                         dbus.MakeVariant(true),
		"CanReload":                       dbus.MakeVariant(false),
		"RefuseManualStart":               dbus.MakeVariant(false),
		"StopWhenUnneeded":                dbus.MakeVariant(false),
		"Transient":                       dbus.MakeVariant(false),
		"ConditionResult":                 dbus.MakeVariant(true),
		"AssertResult":                    dbus.MakeVariant(true),
		"ConditionTimestampMonotonic":     dbus.MakeVariant(u.InactiveExit),
		"AssertTimestampMonotonic":        dbus.MakeVariant(u.InactiveExit),
		"InvocationID":                    dbus.MakeVariant(make([]byte, 16)),
		"CollectMode":                     dbus.MakeVariant("inactive"),
	}
}

// bootRealtime is the realtime (µs) of the fake machine's monotonic zero,
// 2026-11-25 08:00:00 UTC.
const bootRealtime = 1795593600000000

func realtime(mono uint64) uint64 {
	if mono == 0 {
		return 0
	}
	return bootRealtime + mono
}

func timerProps(u Unit) map[string]dbus.Variant {
	lastMono := uint64(0)
	if u.LastTriggerUSec > bootRealtime {
		lastMono = u.LastTriggerUSec - bootRealtime
	}
	return map[string]dbus.Variant{
		"Unit": dbus.MakeVariant(u.TimerUnit),
		"TimersMonotonic": dbus.MakeVariant([]struct {
			Base   string
			Value  uint64
			Elapse uint64
		}{}),
		"TimersCalendar": dbus.MakeVariant([]struct {
			Base   string
			Spec   string
			Elapse uint64
		}{{"OnCalendar", "weekly", u.NextElapseRealtime}}),
		"OnClockChange":            dbus.MakeVariant(false),
		"OnTimezoneChange":         dbus.MakeVariant(false),
		"NextElapseUSecRealtime":   dbus.MakeVariant(u.NextElapseRealtime),
		"NextElapseUSecMonotonic":  dbus.MakeVariant(u.NextElapseMonotonic),
		"LastTriggerUSec":          dbus.MakeVariant(u.LastTriggerUSec),
		"LastTriggerUSecMonotonic": dbus.MakeVariant(lastMono),
		"Result":                   dbus.MakeVariant("success"),
		"AccuracyUSec":             dbus.MakeVariant(uint64(60000000)),
		"RandomizedDelayUSec":      dbus.MakeVariant(uint64(0)),
		"FixedRandomDelay":         dbus.MakeVariant(false),
		"Persistent":               dbus.MakeVariant(true),
		"WakeSystem":               dbus.MakeVariant(false),
		"RemainAfterElapse":        dbus.MakeVariant(true),
	}
}

func serviceProps(u Unit) map[string]dbus.Variant {
	res := u.Result
	if res == "" {
		res = "success"
	}
	return map[string]dbus.Variant{
		"Type":                   dbus.MakeVariant("simple"),
		"Restart":                dbus.MakeVariant("no"),
		"Result":                 dbus.MakeVariant(res),
		"MainPID":                dbus.MakeVariant(uint32(0)),
		"ControlPID":             dbus.MakeVariant(uint32(0)),
		"ExecMainStartTimestamp": dbus.MakeVariant(realtime(u.InactiveExit)),
		"ExecMainExitTimestamp":  dbus.MakeVariant(realtime(u.InactiveEnter)),
		"ExecMainCode":           dbus.MakeVariant(int32(1)),
		"ExecMainStatus":         dbus.MakeVariant(int32(0)),
		"NRestarts":              dbus.MakeVariant(uint32(0)),
		"StatusText":             dbus.MakeVariant(""),
		"TimeoutStartUSec":       dbus.MakeVariant(uint64(90000000)),
		"TimeoutStopUSec":        dbus.MakeVariant(uint64(90000000)),
		"RuntimeMaxUSec":         dbus.MakeVariant(usecInfinity),
		"MemoryCurrent":          dbus.MakeVariant(usecInfinity),
	}
}

const usecInfinity = ^uint64(0)
