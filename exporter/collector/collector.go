// Package collector is what every panther-exporter collector plugs into: the
// interface a collector meets, Register (the factories collectors add from
// init, with their on/off flags), the Scraper that runs the enabled ones on
// each scrape under a per-collector deadline, and the scrape meta-metrics.
//
// "Registry" in this repository means only prometheus.Registry; the
// collectors' own list is the registrations, the runner is the Scraper.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric the exporter exports.
const Namespace = "panther"

// Collector gathers the metrics of one area (system, btrfs, podman, ...).
//
// Update sends the current metrics to ch and returns an error when it could
// not read what it needed. It may send some metrics and still return an
// error; those metrics are kept. ctx carries the collector's deadline; a
// collector stuck in I/O that ignores it is not run again until it returns.
type Collector interface {
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Noter is met by a collector that has something to say on the landing page
// besides ok or its error: why it exports nothing on this host, say (no
// Podman installed). An empty note says nothing.
type Noter interface {
	Note() string
}

// Config is what every collector is built with.
type Config struct {
	Logger   *slog.Logger
	ProcPath string // --path.procfs
	SysPath  string // --path.sysfs
	RootPath string // --path.rootfs
}

// Proc joins parts under the procfs root.
func (c Config) Proc(parts ...string) string {
	return filepath.Join(append([]string{c.ProcPath}, parts...)...)
}

// Sys joins parts under the sysfs root.
func (c Config) Sys(parts ...string) string {
	return filepath.Join(append([]string{c.SysPath}, parts...)...)
}

// Root joins parts under the root filesystem (for /var, /nix, /run ...).
func (c Config) Root(parts ...string) string {
	return filepath.Join(append([]string{c.RootPath}, parts...)...)
}

// Factory builds a collector. It runs once at start-up, after flags are
// parsed; an error there is fatal, so it should only fail on bad flags.
type Factory func(Config) (Collector, error)

type registration struct {
	name           string
	defaultEnabled bool
	enabled        *bool
	explicit       bool
	factory        Factory
}

var (
	registrationsMu sync.Mutex
	registrations   = map[string]*registration{}
)

// Register adds a collector under name, with its --collector.<name> flag.
// Collector packages call it from init.
func Register(name string, defaultEnabled bool, factory Factory) {
	registrationsMu.Lock()
	defer registrationsMu.Unlock()
	if _, dup := registrations[name]; dup {
		panic("collector registered twice: " + name)
	}
	state := "disabled"
	if defaultEnabled {
		state = "enabled"
	}
	r := &registration{name: name, defaultEnabled: defaultEnabled, factory: factory}
	r.enabled = kingpin.Flag("collector."+name,
		fmt.Sprintf("Enable the %s collector (default: %s).", name, state)).
		Default(fmt.Sprint(defaultEnabled)).
		Action(func(*kingpin.ParseContext) error { r.explicit = true; return nil }).
		Bool()
	registrations[name] = r
}

// Names lists every registered collector, sorted.
func Names() []string {
	registrationsMu.Lock()
	defer registrationsMu.Unlock()
	names := make([]string, 0, len(registrations))
	for n := range registrations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DisableDefaults turns off every collector not named explicitly on the
// command line, as --collector.disable-defaults asks.
func DisableDefaults() {
	registrationsMu.Lock()
	defer registrationsMu.Unlock()
	for _, r := range registrations {
		if !r.explicit {
			*r.enabled = false
		}
	}
}

// EnableExplicitly turns a collector on as if --collector.<name> had been
// given, so that --collector.disable-defaults leaves it on. A collector's
// own flag action uses it (a textfile directory implies the textfile collector).
func EnableExplicitly(name string) {
	registrationsMu.Lock()
	defer registrationsMu.Unlock()
	if r, ok := registrations[name]; ok {
		*r.enabled = true
		r.explicit = true
	}
}

// Enabled reports whether the named collector is switched on.
func Enabled(name string) bool {
	registrationsMu.Lock()
	defer registrationsMu.Unlock()
	r, ok := registrations[name]
	return ok && *r.enabled
}

// Build constructs every enabled collector and wraps them in a Scraper.
// Each factory gets cfg whole, with a logger naming the collector.
func Build(cfg Config, opts Options) (*Scraper, error) {
	var built []Named
	var failed []string
	for _, name := range Names() {
		registrationsMu.Lock()
		r := registrations[name]
		on := *r.enabled
		registrationsMu.Unlock()
		if !on {
			continue
		}
		own := cfg
		own.Logger = cfg.Logger.With("collector", name)
		c, err := r.factory(own)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		built = append(built, Named{Name: name, Collector: c})
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("cannot start collectors: %s", strings.Join(failed, "; "))
	}
	return NewScraper(cfg.Logger, opts, built...), nil
}
