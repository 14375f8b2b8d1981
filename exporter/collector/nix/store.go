package nix

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite: reads Nix's own database

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pantheros/monitoring/exporter/collector"
)

// Nix's database: every valid store path with its NAR size (ValidPaths)
// and its references (Refs).
const (
	dbFile   = "/nix/var/nix/db/db.sqlite"
	linksDir = "/nix/store/.links"
)

var (
	storeSize = collector.Gauge(name, "nix_store_size_bytes",
		"Sum of the NAR sizes of every valid store path, from Nix's database (what the store would take without hard-linking); recomputed when the database changes.")
	closureSize = collector.Gauge(name, "nixos_system_closure_bytes",
		"Sum of the NAR sizes of the closure of /run/current-system (the system and everything it references), from Nix's database.")
	closurePaths = collector.Gauge(name, "nixos_system_closure_paths",
		"Store paths in the closure of /run/current-system.")
	optimiseSaved = collector.Gauge(name, "nix_store_optimise_saved_bytes",
		"Bytes that hard-linking (nix-store --optimise, auto-optimise-store) saves: for each file in /nix/store/.links, its size times the links beyond the first store copy. Recomputed in the background.")
	storeStatsAge = collector.Gauge(name, "nix_store_stats_age_seconds",
		"Age of the store size and closure figures, which are computed in the background.")
)

// storeWorker computes the store's size and the system closure from Nix's
// database, and the bytes hard-linking saves from /nix/store/.links, in the
// background. A scrape only reads its last results, so their cost never
// lands on a scrape. It starts with the first scrape of a host that has
// Nix's database.
type storeWorker struct {
	r        resolver
	interval time.Duration // how often to look whether the database changed
	optEvery time.Duration // at most one walk of .links per this
	pace     time.Duration // pause after every 1024 entries of .links

	once sync.Once
	poke chan struct{}

	mu sync.Mutex
	db dbResult
	op optResult
}

type dbResult struct {
	key                   fileKey // database state the figures are of
	system                string  // store path of /run/current-system they are of
	at                    time.Time
	size, closure, cpaths float64
	done, hasClosure      bool
	err                   error
}

type optResult struct {
	key   fileKey // .links directory state
	at    time.Time
	saved float64
	done  bool
	err   error
}

// fileKey tells whether a file changed: Nix rewrites pages in place, so
// size and mtime of the database and its WAL, with the inode.
type fileKey struct {
	ino, size, walSize int64
	mtime, walMtime    int64
}

func keyOf(p string) (fileKey, error) {
	var k fileKey
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return k, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	k.ino, k.size, k.mtime = int64(st.Ino), st.Size, st.Mtim.Nano()
	if err := syscall.Stat(p+"-wal", &st); err == nil {
		k.walSize, k.walMtime = st.Size, st.Mtim.Nano()
	}
	return k, nil
}

// start runs the worker once there is something to work on.
func (w *storeWorker) start() {
	w.once.Do(func() {
		w.poke = make(chan struct{}, 1)
		go w.loop()
	})
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

func (w *storeWorker) loop() {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.refresh()
		select {
		case <-t.C:
		case <-w.poke:
		}
	}
}

// refresh recomputes what changed.
func (w *storeWorker) refresh() {
	w.refreshDB()
	w.refreshOptimise()
}

// refreshDB reruns the queries when the database or the current system
// changed since the last run.
func (w *storeWorker) refreshDB() {
	db := w.r.host(dbFile)
	key, err := keyOf(db)
	sys, sysErr := w.currentSystem()
	w.mu.Lock()
	prev := w.db
	w.mu.Unlock()
	if err == nil && prev.done && prev.err == nil && prev.key == key && prev.system == sys {
		return
	}
	res := dbResult{key: key, system: sys, at: time.Now(), done: true}
	if err != nil {
		res.err = err
	} else {
		res.size, res.closure, res.cpaths, res.hasClosure, res.err = queryDB(db, sys)
		if res.err == nil && sysErr != nil {
			res.err = sysErr
		}
	}
	w.mu.Lock()
	w.db = res
	w.mu.Unlock()
}

// currentSystem is the store path /run/current-system leads to, "" on a
// host without one.
func (w *storeWorker) currentSystem() (string, error) {
	p, err := w.r.resolve(currentSystem)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !errors.Is(err, errDangling) {
			return "", nil
		}
		return "", fmt.Errorf("closure: %w", err)
	}
	return storePathOf(p), nil
}

// storePathOf cuts a path inside the store to the store path:
// /nix/store/<hash>-<name>.
func storePathOf(p string) string {
	rest, ok := strings.CutPrefix(p, storeDir+"/")
	if !ok {
		return p
	}
	top, _, _ := strings.Cut(rest, "/")
	return path.Join(storeDir, top)
}

// openDB opens Nix's database read-only, so that Nix is never blocked.
// Without a WAL file (Nix not running, or checkpointed) it is opened
// immutable: no locks at all. With one, as a read-only WAL reader, which
// takes no lock that a writer waits for and sees the latest commits.
// A WAL reader needs the -shm file; where it cannot use it (the file is
// root's and read-only to the exporter, and SQLite cannot recover it),
// queryDB falls back to immutable, missing at most the commits not yet
// checkpointed.
func openDB(p string, immutable bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	if fi, err := os.Stat(p + "-wal"); immutable || err != nil || fi.Size() == 0 {
		q.Set("immutable", "1")
	}
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "busy_timeout(1000)")
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

const closureQuery = `
WITH RECURSIVE closure(id) AS (
  SELECT id FROM ValidPaths WHERE path = ?
  UNION
  SELECT r.reference FROM Refs r JOIN closure c ON r.referrer = c.id
)
SELECT COUNT(*), COALESCE(SUM(v.narSize), 0) FROM ValidPaths v JOIN closure c ON v.id = c.id`

// queryDB sums the NAR sizes of the store and of system's closure.
func queryDB(p, system string) (size, closure, paths float64, hasClosure bool, err error) {
	size, closure, paths, hasClosure, err = queryDBMode(p, system, false)
	if err != nil {
		if s2, c2, p2, h2, err2 := queryDBMode(p, system, true); err2 == nil {
			return s2, c2, p2, h2, nil
		}
	}
	return size, closure, paths, hasClosure, err
}

func queryDBMode(p, system string, immutable bool) (size, closure, paths float64, hasClosure bool, err error) {
	db, err := openDB(p, immutable)
	if err != nil {
		return 0, 0, 0, false, fmt.Errorf("%s: %w", p, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var total sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT SUM(narSize) FROM ValidPaths`).Scan(&total); err != nil {
		return 0, 0, 0, false, fmt.Errorf("%s: store size: %w", p, err)
	}
	if system == "" {
		return float64(total.Int64), 0, 0, false, nil
	}
	var n, sum int64
	if err := db.QueryRowContext(ctx, closureQuery, system).Scan(&n, &sum); err != nil {
		return float64(total.Int64), 0, 0, false, fmt.Errorf("%s: closure of %s: %w", p, system, err)
	}
	if n == 0 {
		return float64(total.Int64), 0, 0, false, fmt.Errorf("%s: closure: %s is not a valid path in the database", p, system)
	}
	return float64(total.Int64), float64(sum), float64(n), true, nil
}

// refreshOptimise walks .links again when it changed and the last walk is
// older than optEvery.
func (w *storeWorker) refreshOptimise() {
	dir := w.r.host(linksDir)
	key, err := keyOf(dir)
	w.mu.Lock()
	prev := w.op
	w.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		w.mu.Lock()
		w.op = optResult{done: true, key: key, at: time.Now()} // never optimised: saves nothing
		w.mu.Unlock()
		return
	}
	if err == nil && prev.done && (prev.key == key || time.Since(prev.at) < w.optEvery) {
		return
	}
	res := optResult{key: key, at: time.Now(), done: true}
	if err != nil {
		res.err = err
	} else {
		res.saved, res.err = linksSaved(dir, w.pace)
	}
	w.mu.Lock()
	w.op = res
	w.mu.Unlock()
}

// linksSaved sums, over the files of a .links directory, size × (links − 2):
// one link is .links' own, one the store copy there would be anyway. It
// stats entries relative to the directory and pauses every 1024 entries, so
// a store of millions of files costs little CPU at a time.
func linksSaved(dir string, pace time.Duration) (float64, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fd := int(f.Fd())
	var saved float64
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		for _, nm := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, nm, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // removed by a concurrent GC
			}
			if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 2 {
				saved += float64(st.Size) * float64(st.Nlink-2)
			}
		}
		n += len(names)
		if err == io.EOF {
			return saved, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", dir, err)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

// send sends the worker's last results; an error of its last run is
// returned, the figures of the run before are not kept (they would hide
// that the source is broken).
func (w *storeWorker) send(ch chan<- prometheus.Metric) error {
	w.mu.Lock()
	db, op := w.db, w.op
	w.mu.Unlock()
	var errs []error
	if db.done {
		if db.err != nil {
			errs = append(errs, db.err)
		}
		if db.err == nil || db.size > 0 {
			ch <- storeSize.Const(db.size)
			ch <- storeStatsAge.Const(time.Since(db.at).Seconds())
		}
		if db.hasClosure {
			ch <- closureSize.Const(db.closure)
			ch <- closurePaths.Const(db.cpaths)
		}
	}
	if op.done {
		if op.err != nil {
			errs = append(errs, op.err)
		} else {
			ch <- optimiseSaved.Const(op.saved)
		}
	}
	return errors.Join(errs...)
}

// wait blocks until the worker finished its first run or ctx ends (tests,
// and the first scrape after start-up when it is quick).
func (w *storeWorker) wait(ctx context.Context) {
	for {
		w.mu.Lock()
		done := w.db.done && w.op.done
		w.mu.Unlock()
		if done || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
