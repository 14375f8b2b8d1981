// Package nix collects Nix store and NixOS system metrics: how many paths
// the store holds, the size of the filesystem holding it, the system
// generations, the NixOS version of the current and the booted system, and
// whether the host needs a reboot to run the kernel, initrd and kernel
// modules its current system wants.
//
// Everything is read under --path.rootfs. NixOS links point at absolute
// /nix/store paths; they are resolved relative to the rootfs (see
// resolver), never through the exporter's own root.
package nix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

const name = "nix"

// Paths in the host's namespace.
const (
	storeDir      = "/nix/store"
	profilesDir   = "/nix/var/nix/profiles"
	currentSystem = "/run/current-system"
	bootedSystem  = "/run/booted-system"
)

// components decide whether a reboot is required: the parts of a system
// closure that only take effect at boot.
var components = []string{"kernel", "initrd", "kernel-modules"}

var (
	storePaths = collector.Gauge(name, "nix_store_paths",
		"Entries in /nix/store (store paths and derivations; dot entries and *.lock files left out), counted from the directory listing and recounted when the directory changes.")
	storeFSSize = collector.Gauge(name, "nix_store_filesystem_size_bytes",
		"Size of the filesystem holding /nix/store (statfs: the whole filesystem, not only the store).")
	storeFSUsed = collector.Gauge(name, "nix_store_filesystem_used_bytes",
		"Bytes used on the filesystem holding /nix/store (statfs: the whole filesystem, not only the store).")
	storeFSAvail = collector.Gauge(name, "nix_store_filesystem_avail_bytes",
		"Bytes available to unprivileged users on the filesystem holding /nix/store.")
	generations = collector.Gauge(name, "nixos_generations",
		"System generations: the system-N-link profiles in /nix/var/nix/profiles.")
	currentGeneration = collector.Gauge(name, "nixos_current_generation",
		"N of the system-N-link that /nix/var/nix/profiles/system points to.")
	generationTimestamp = collector.Gauge(name, "nixos_generation_timestamp_seconds",
		"When the current system generation was made: the modification time of its system-N-link.")
	versionInfo = collector.Gauge(name, "nixos_version_info",
		"NixOS version (the nixos-version file of the system closure) of the current and of the booted system; value 1.",
		"system", "version")
	rebootRequired = collector.Gauge(name, "nixos_reboot_required",
		"1 when /run/booted-system and /run/current-system differ in this component (kernel, initrd, kernel-modules), 0 when they agree.",
		"component")
)

// Options are the nix collector's flags.
type Options struct {
	GCStateFile      string        // the nix-gc wrapper's state file, host path
	StoreInterval    time.Duration // how often the database is checked for changes
	OptimiseInterval time.Duration // at most one walk of /nix/store/.links per this
}

// DefaultGCStateFile is where the NixOS module's nix-gc wrapper writes.
const DefaultGCStateFile = "/var/lib/panther/nix-gc-last-run"

var flags Options

func init() {
	kingpin.Flag("collector.nix.gc-state-file", "State file the nix-gc wrapper writes after each nix-collect-garbage run (a host path, under --path.rootfs; empty: none).").
		Default(DefaultGCStateFile).StringVar(&flags.GCStateFile)
	kingpin.Flag("collector.nix.store-interval", "How often to look whether Nix's database changed, and then recompute the store and closure sizes in the background.").
		Default("1m").DurationVar(&flags.StoreInterval)
	kingpin.Flag("collector.nix.optimise-interval", "At most one walk of /nix/store/.links (the bytes hard-linking saves) per this interval, in the background.").
		Default("6h").DurationVar(&flags.OptimiseInterval)
	collector.Register(name, true, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg, flags)
	})
}

// Nix is the nix collector.
type Nix struct {
	logger  *slog.Logger
	r       resolver
	gcState string
	store   *storeWorker

	mu     sync.Mutex
	cache  storeCount // last count of /nix/store
	absent bool       // last run found no Nix at all (logged once)
}

// storeCount is a count of /nix/store entries and the directory state it
// was taken from.
type storeCount struct {
	dir   string // host path counted
	mtime time.Time
	ino   uint64
	n     int
}

// New builds the collector.
func New(cfg collector.Config, o Options) (*Nix, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	root := cfg.RootPath
	if root == "" {
		root = "/"
	}
	if o.StoreInterval <= 0 {
		o.StoreInterval = time.Minute
	}
	if o.OptimiseInterval <= 0 {
		o.OptimiseInterval = 6 * time.Hour
	}
	r := resolver{root: root}
	return &Nix{logger: logger, r: r, gcState: o.GCStateFile,
		store: &storeWorker{r: r, interval: o.StoreInterval, optEvery: o.OptimiseInterval, pace: time.Millisecond}}, nil
}

// Update sends the store and NixOS metrics. A host without /nix/store and
// without /run/current-system is not a Nix host: nothing is sent and that is
// no error.
func (n *Nix) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	hasStore, err := n.updateStore(ch)
	if err != nil {
		errs = append(errs, err)
	}
	hasNixOS, err := n.updateNixOS(ch)
	if err != nil {
		errs = append(errs, err)
	}
	// Store size, closure and hard-linking savings need Nix's database:
	// computed in the background once a scrape found it.
	if _, err := os.Stat(n.r.host(dbFile)); err == nil {
		n.store.start()
		if err := n.store.send(ch); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.updateGC(ch); err != nil {
		errs = append(errs, err)
	}
	absent := !hasStore && !hasNixOS
	if absent && !n.absent {
		n.logger.Debug("not a Nix host: no /nix/store and no /run/current-system; exporting nothing",
			"rootfs", n.r.root)
	}
	n.absent = absent
	return errors.Join(errs...)
}

// updateStore counts /nix/store (from cache when its mtime is unchanged) and
// reads the size of its filesystem. It reports whether the store exists.
func (n *Nix) updateStore(ch chan<- prometheus.Metric) (bool, error) {
	p, err := n.r.resolve(storeDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("resolve %s: %w", n.r.host(storeDir), err)
	}
	dir := n.r.host(p)
	count, err := n.count(dir)
	if err != nil {
		return true, err
	}
	ch <- storePaths.Const(float64(count))
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return true, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := float64(st.Bsize)
	ch <- storeFSSize.Const(float64(st.Blocks) * bs)
	ch <- storeFSUsed.Const(float64(st.Blocks-st.Bfree) * bs)
	ch <- storeFSAvail.Const(float64(st.Bavail) * bs)
	return true, nil
}

// count returns the number of store entries in dir. It lists the directory
// only when its mtime or inode changed since the last count: adding or
// removing a store path changes the directory's mtime. The stat is taken
// before the listing, so a change during the listing is seen next time.
func (n *Nix) count(dir string) (int, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, err
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	c := n.cache
	if c.dir == dir && c.ino == ino && c.mtime.Equal(fi.ModTime()) {
		return c.n, nil
	}
	cnt, err := countEntries(dir)
	if err != nil {
		return 0, err
	}
	n.cache = storeCount{dir: dir, mtime: fi.ModTime(), ino: ino, n: cnt}
	return cnt, nil
}

// countEntries counts the store paths in dir from its names alone (getdents,
// no stat per entry).
func countEntries(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	for {
		names, err := f.Readdirnames(4096)
		for _, nm := range names {
			if isStorePath(nm) {
				total++
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", dir, err)
		}
	}
}

// isStorePath leaves out what lives in /nix/store but is no store path:
// .links (the hard-link pool of auto-optimise-store), other dot entries and
// the *.lock files of builds in progress.
func isStorePath(name string) bool {
	return !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".lock")
}

// updateNixOS sends the generation, version and reboot metrics. It reports
// whether the host looks like NixOS (a system profile or /run/current-system).
func (n *Nix) updateNixOS(ch chan<- prometheus.Metric) (bool, error) {
	var errs []error
	hasProfiles, err := n.updateGenerations(ch)
	if err != nil {
		errs = append(errs, err)
	}
	current, errC := n.system(currentSystem)
	booted, errB := n.system(bootedSystem)
	hasRun := current != "" || booted != "" || (errC != nil && !errors.Is(errC, fs.ErrNotExist)) ||
		(errB != nil && !errors.Is(errB, fs.ErrNotExist))
	if !hasRun {
		return hasProfiles, errors.Join(errs...)
	}
	// On NixOS both links exist; one without the other is worth an error.
	for _, e := range []error{errC, errB} {
		if e != nil {
			errs = append(errs, e)
		}
	}
	for _, s := range []struct{ label, path string }{{"current", current}, {"booted", booted}} {
		if s.path == "" {
			continue
		}
		v, err := n.version(s.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ch <- versionInfo.Const(1, s.label, v)
	}
	if current != "" && booted != "" {
		for _, c := range components {
			differ, err := n.differ(booted, current, c)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			v := 0.0
			if differ {
				v = 1
			}
			ch <- rebootRequired.Const(v, c)
		}
	}
	return true, errors.Join(errs...)
}

// system resolves /run/current-system or /run/booted-system to its store
// path. A missing link gives "" and an error wrapping fs.ErrNotExist.
func (n *Nix) system(link string) (string, error) {
	p, err := n.r.resolve(link)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", n.r.host(link), fs.ErrNotExist)
		}
		if errors.Is(err, errDangling) {
			return "", err // names the link already
		}
		return "", fmt.Errorf("resolve %s: %w", n.r.host(link), err)
	}
	return p, nil
}

// version reads the nixos-version file of a system closure.
func (n *Nix) version(system string) (string, error) {
	p, err := n.r.resolve(path.Join(system, "nixos-version"))
	if err != nil {
		return "", fmt.Errorf("nixos-version of %s: %w", n.r.host(system), err)
	}
	b, err := os.ReadFile(n.r.host(p))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if v == "" || len(v) > 256 || strings.ContainsAny(v, "\n\x00") {
		return "", inputerr.New(n.r.host(p), "not a NixOS version (empty, several lines or over 256 bytes)")
	}
	return v, nil
}

// differ reports whether component c of the booted and the current system
// lead to different store paths. A component missing from both (a container
// system has no kernel) is no difference; a dangling link is an error.
func (n *Nix) differ(booted, current, c string) (bool, error) {
	b, errB := n.r.resolve(path.Join(booted, c))
	k, errK := n.r.resolve(path.Join(current, c))
	for _, e := range []struct {
		sys string
		err error
	}{{booted, errB}, {current, errK}} {
		if e.err != nil && !(errors.Is(e.err, fs.ErrNotExist) && !errors.Is(e.err, errDangling)) {
			return false, fmt.Errorf("%s of %s: %w", c, n.r.host(e.sys), e.err)
		}
	}
	return b != k, nil
}

// updateGenerations counts the system-N-link profiles and reports the
// current one. It reports whether the profiles directory exists.
func (n *Nix) updateGenerations(ch chan<- prometheus.Metric) (bool, error) {
	pd, err := n.r.resolve(profilesDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("profiles: %w", err)
	}
	dir := n.r.host(pd)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	count := 0
	for _, e := range entries {
		if _, ok := generationNumber(e.Name()); ok {
			count++
		}
	}
	sys := path.Join(pd, "system")
	if count == 0 {
		// Nix without NixOS: user profiles only.
		if _, err := os.Lstat(n.r.host(sys)); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
	}
	ch <- generations.Const(float64(count))
	target, err := n.r.readlink(sys)
	if err != nil {
		return true, fmt.Errorf("system profile: %w", err)
	}
	gen, ok := generationNumber(path.Base(target))
	if !ok {
		return true, fmt.Errorf("%s -> %s: not a system-N-link", n.r.host(sys), target)
	}
	abs := target
	if !path.IsAbs(abs) {
		abs = path.Join(pd, target)
	}
	parent, err := n.r.resolve(path.Dir(abs))
	if err != nil {
		return true, fmt.Errorf("%s -> %s: %w", n.r.host(sys), target, err)
	}
	link := path.Join(parent, path.Base(abs))
	fi, err := os.Lstat(n.r.host(link))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("%s -> %s: %w", n.r.host(sys), target, errDangling)
		}
		return true, err
	}
	if _, err := n.r.resolve(link); err != nil {
		return true, fmt.Errorf("generation %d: %w", gen, err)
	}
	ch <- currentGeneration.Const(float64(gen))
	ch <- generationTimestamp.Const(float64(fi.ModTime().UnixNano()) / 1e9)
	return true, nil
}

// generationNumber parses "system-N-link".
func generationNumber(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "system-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "-link")
	if !ok || s == "" {
		return 0, false
	}
	g, err := strconv.Atoi(s)
	if err != nil || g < 0 || strconv.Itoa(g) != s {
		return 0, false
	}
	return g, true
}
