// Package podman collects container, pod, image and volume metrics from one
// or more Podman API sockets through the podman/v5 bindings.
//
// The scrape never talks to Podman. Every socket has its own background
// worker that keeps a snapshot fresh: the container list (with pods, images
// and volumes) is refreshed on an interval and soon after every event, stats
// are taken on their own interval, and one events subscription per socket
// counts OOM kills, non-zero exits and restarts. Update only reads the
// snapshots, so its cost does not depend on how slow Podman is.
package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

// Options are the podman collector's flags.
type Options struct {
	// Sockets are NAME=URI pairs, e.g. root=unix:///run/podman/podman.sock.
	// Empty watches Default, implicitly: see Podman.Update.
	Sockets []string
	// Default is the NAME=URI watched when Sockets is empty; DefaultSocket
	// when empty.
	Default string
	// Rootless adds every /run/user/<uid>/podman/podman.sock, named after
	// the user.
	Rootless bool
	// ListInterval is how often containers, pods, images and volumes are
	// listed even without events.
	ListInterval time.Duration
	// StatsInterval is how often container stats are taken.
	StatsInterval time.Duration
	// Timeout bounds one API call (a stats call gets 3 times as long).
	Timeout time.Duration
	// DiscoverInterval is how often /run/user is scanned with Rootless.
	DiscoverInterval time.Duration
}

// DefaultSocket is the rootful service's socket.
const DefaultSocket = "root=unix:///run/podman/podman.sock"

var flags Options

func init() {
	kingpin.Flag("collector.podman.socket",
		"Podman API socket to watch, as NAME=URI (repeatable); NAME is the socket label. "+
			"Without it: "+DefaultSocket+", and a host where that socket does not exist has no Podman: nothing is exported for it.").
		StringsVar(&flags.Sockets)
	kingpin.Flag("collector.podman.rootless",
		"Also watch every rootless service socket /run/user/<uid>/podman/podman.sock, named after its user.").
		Default("false").BoolVar(&flags.Rootless)
	kingpin.Flag("collector.podman.list-interval",
		"How often to list containers, pods, images and volumes (events trigger a list sooner).").
		Default("15s").DurationVar(&flags.ListInterval)
	kingpin.Flag("collector.podman.stats-interval", "How often to take container stats.").
		Default("15s").DurationVar(&flags.StatsInterval)
	kingpin.Flag("collector.podman.timeout", "Deadline of one Podman API call.").
		Default("10s").DurationVar(&flags.Timeout)
	collector.Register("podman", true, func(cfg collector.Config) (collector.Collector, error) {
		c, err := New(cfg, flags)
		if err != nil {
			return nil, err
		}
		c.Start()
		return c, nil
	})
}

// Podman is the podman collector.
type Podman struct {
	cfg    collector.Config
	logger *slog.Logger
	opts   Options

	mu        sync.Mutex
	endpoints map[string]*endpoint // by socket name
	order     []string
	running   map[string]bool // endpoints whose background work started
	// implicit is the name of the built-in default socket when no socket
	// was configured ("" otherwise), and implicitPath its file: while that
	// file does not exist the host has no Podman, which is no fault.
	implicit, implicitPath string
	note                   string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
}

// New builds the collector from its options; it fails only on bad flags.
// Call Start to begin the background work (the registered factory does).
func New(cfg collector.Config, o Options) (*Podman, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ListInterval <= 0 {
		o.ListInterval = 15 * time.Second
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = 15 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.DiscoverInterval <= 0 {
		o.DiscoverInterval = 30 * time.Second
	}
	p := &Podman{cfg: cfg, logger: cfg.Logger, opts: o, endpoints: map[string]*endpoint{}, running: map[string]bool{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	sockets := o.Sockets
	if len(sockets) == 0 {
		def := o.Default
		if def == "" {
			def = DefaultSocket
		}
		name, uri, err := ParseSocketFlag(def)
		if err != nil {
			return nil, fmt.Errorf("default socket: %w", err)
		}
		if path, ok := strings.CutPrefix(uri, "unix://"); ok {
			p.implicit, p.implicitPath = name, path
		}
		sockets = []string{def}
	}
	for _, s := range sockets {
		name, uri, err := ParseSocketFlag(s)
		if err != nil {
			return nil, fmt.Errorf("--collector.podman.socket: %w", err)
		}
		if _, dup := p.endpoints[name]; dup {
			return nil, fmt.Errorf("--collector.podman.socket: name %q given twice", name)
		}
		p.add(name, uri)
	}
	return p, nil
}

func (p *Podman) add(name, uri string) *endpoint {
	e := newEndpoint(name, uri, p.opts, p.logger.With("socket", name))
	p.endpoints[name] = e
	p.order = append(p.order, name)
	sort.Strings(p.order)
	return e
}

// Start begins the background work of every socket. It is idempotent.
func (p *Podman) Start() {
	p.start.Do(func() {
		p.mu.Lock()
		for _, e := range p.endpoints {
			if e.name == p.implicit && !p.implicitExists() {
				continue // started by Update once the socket appears
			}
			p.run(e)
		}
		p.mu.Unlock()
		if p.opts.Rootless {
			p.wg.Add(1)
			go p.discoverLoop()
		}
	})
}

// implicitExists reports whether the implicit default socket's file exists.
func (p *Podman) implicitExists() bool {
	_, err := os.Stat(p.implicitPath)
	return err == nil
}

// Note says on the landing page that the host has no Podman, when only the
// built-in default socket is watched and it does not exist.
func (p *Podman) Note() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.note
}

// run starts e's background work; p.mu is held.
func (p *Podman) run(e *endpoint) {
	if p.running[e.name] {
		return
	}
	p.running[e.name] = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		e.run(p.ctx)
	}()
}

// Stop ends the background work and waits for it.
func (p *Podman) Stop() {
	p.cancel()
	p.wg.Wait()
}

// discoverLoop adds rootless sockets as they appear.
func (p *Podman) discoverLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.DiscoverInterval)
	defer t.Stop()
	for {
		found, err := DiscoverRootless(p.cfg.Root("run", "user"))
		if err != nil {
			p.logger.Debug("rootless socket discovery", "err", err)
		}
		p.mu.Lock()
		for _, s := range found {
			if _, ok := p.endpoints[s.Name]; ok {
				continue
			}
			p.logger.Info("watching rootless podman socket", "socket", s.Name, "uri", s.URI)
			p.run(p.add(s.Name, s.URI))
		}
		p.mu.Unlock()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Update sends the current snapshot of every socket. It never calls
// Podman; it returns an error naming every socket that is down.
//
// No Podman is not Podman down: when no socket was configured and the
// built-in default socket's file does not exist, the host has no Podman, so
// nothing is exported for it and that is no error (the landing page says
// so). It is looked for again on every scrape (one stat, no background
// wake-ups) and watched from the scrape that finds it. A socket configured
// explicitly that is missing is panther_podman_up 0 and an error.
func (p *Podman) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	p.mu.Lock()
	eps := make([]*endpoint, 0, len(p.order))
	for _, n := range p.order {
		if n == p.implicit {
			if !p.implicitExists() {
				p.note = "no Podman found: " + p.implicitPath + " does not exist and no --collector.podman.socket is set"
				continue
			}
			p.note = ""
			p.run(p.endpoints[n])
		}
		eps = append(eps, p.endpoints[n])
	}
	p.mu.Unlock()
	var errs []error
	now := time.Now()
	for _, e := range eps {
		ms, snap, st := e.metrics()
		for _, m := range ms {
			ch <- m
		}
		if st.up {
			emitAges(ch, e.name, snap, now)
		}
		if st.err != "" {
			errs = append(errs, fmt.Errorf("socket %s (%s): %s", e.name, e.uri, st.err))
		}
	}
	return errors.Join(errs...)
}

// ParseSocketFlag splits NAME=URI. A bare path or unix:// URI without a name
// is refused: every socket needs a label value.
func ParseSocketFlag(s string) (name, uri string, err error) {
	name, uri, ok := strings.Cut(s, "=")
	name, uri = strings.TrimSpace(name), strings.TrimSpace(uri)
	if !ok || name == "" || uri == "" {
		return "", "", fmt.Errorf("%q: want NAME=URI, e.g. %s", s, DefaultSocket)
	}
	if !strings.Contains(uri, "://") {
		if strings.HasPrefix(uri, "/") {
			uri = "unix://" + uri
		} else {
			return "", "", fmt.Errorf("%q: URI %q has no scheme (unix://, tcp://, ssh://)", s, uri)
		}
	}
	return name, uri, nil
}
