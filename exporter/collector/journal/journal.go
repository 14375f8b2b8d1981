// Package journal counts what the systemd journal says about trouble:
// entries at priority err or worse by unit, and kernel events (OOM kills,
// Btrfs and block I/O errors, segfaults, hung tasks, soft lockups, machine
// checks) recognised from the kernel's own message formats.
//
// It follows the journal by running `journalctl --output=export --follow`
// as a child process and parsing its stdout. journalctl is the journal's
// reference reader: it handles every file format version, compression
// (zstd, lz4, xz), rotation, vacuuming and new files as they appear, with
// no cgo and no libsystemd linked into the exporter. The Go readers that
// exist either need libsystemd through cgo (go-systemd's sdjournal) or are
// unmaintained partial readers of the file format.
//
// A background goroutine reads the stream and updates counters; the scrape
// only reads them. Nothing is queued: when the journal grows faster than
// the reader, journalctl's pipe fills and journalctl waits, so the journal
// files on disk are the buffer and the exporter's memory stays bounded.
// The cursor of the last entry counted and the counts are saved together
// (see state), so a restart goes on from where it stopped.
package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

const name = "journal"

var (
	entriesTotal = collector.Counter(name, "journal_entries_total",
		"Journal entries at the threshold priority (--collector.journal.priority) or worse, by unit; units beyond --collector.journal.max-units are counted as unit=\"other\", kernel messages as unit=\"kernel\".",
		"unit", "priority")
	kernelEvents = collector.Counter(name, "kernel_events_total",
		"Kernel events recognised in the kernel log: oom_kill, btrfs_error, io_error, segfault, hung_task, soft_lockup, machine_check.",
		"event")
	readTotal = collector.Counter(name, "journal_read_entries_total",
		"Journal entries read, of any priority.")
	readerUp = collector.Gauge(name, "journal_reader_up",
		"1 while journalctl runs and its output is being read, else 0.")
	lastEntry = collector.Gauge(name, "journal_last_entry_timestamp_seconds",
		"Time the newest journal entry read was written (its __REALTIME_TIMESTAMP); time() minus it is how far behind the reader is while the journal grows.")
)

// Priorities are syslog's names of the journal's PRIORITY values 0..7.
var Priorities = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// ParsePriority accepts a name of Priorities or a number 0..7.
func ParsePriority(s string) (int, error) {
	for i, p := range Priorities {
		if strings.EqualFold(s, p) {
			return i, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 7 {
		return n, nil
	}
	return 0, fmt.Errorf("priority %q: want one of %s or 0-7", s, strings.Join(Priorities, ", "))
}

// Options are the journal collector's flags.
type Options struct {
	Journalctl    string        // the journalctl program
	Directory     string        // journal directory; "" for the system journal
	StateFile     string        // where cursor and counts are kept; "" keeps nothing
	Priority      string        // threshold for journal_entries_total
	MaxUnits      int           // distinct unit label values before "other"
	StateInterval time.Duration // how often the state is saved while entries arrive
	MaxBackoff    time.Duration // longest wait before journalctl is started again
}

var flags Options

func init() {
	kingpin.Flag("collector.journal.journalctl", "The journalctl program that reads the journal.").
		Default("journalctl").StringVar(&flags.Journalctl)
	kingpin.Flag("collector.journal.directory", "Read the journal files of this directory instead of the system journal.").
		Default("").StringVar(&flags.Directory)
	kingpin.Flag("collector.journal.state-file", "File that keeps the journal cursor and counts across restarts (empty: none).").
		Default("/var/lib/panther-exporter/journal.state").StringVar(&flags.StateFile)
	kingpin.Flag("collector.journal.priority", "Count entries at this priority or worse (emerg, alert, crit, err, warning, notice, info, debug).").
		Default("err").StringVar(&flags.Priority)
	kingpin.Flag("collector.journal.max-units", "Distinct units counted by name; the rest are unit=\"other\".").
		Default("50").IntVar(&flags.MaxUnits)
	kingpin.Flag("collector.journal.state-interval", "How often the cursor and counts are saved while entries arrive.").
		Default("5s").DurationVar(&flags.StateInterval)
	collector.Register(name, false, func(cfg collector.Config) (collector.Collector, error) {
		j, err := New(cfg, flags)
		if err != nil {
			return nil, err
		}
		j.Start()
		return j, nil
	})
}

type countKey struct {
	unit     string
	priority int
}

// Journal is the journal collector.
type Journal struct {
	logger    *slog.Logger
	opts      Options
	threshold int

	mu       sync.Mutex
	cursor   []byte
	entries  map[countKey]float64
	units    map[string]bool // units with their own label value
	kernel   map[string]float64
	read     float64
	last     int64 // realtime of the newest entry, µs
	up       bool
	err      string // why journalctl is not running; "" when fine
	stateErr string // last failure to save the state
	dirty    bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
	closed sync.Once
	// startedAt is when Start ran: on a first start, entries written
	// since then are counted.
	startedAt time.Time
}

// New builds the collector and loads its saved state; it fails only on
// bad flags. Start begins reading.
func New(cfg collector.Config, o Options) (*Journal, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Journalctl == "" {
		o.Journalctl = "journalctl"
	}
	if o.Priority == "" {
		o.Priority = "err"
	}
	th, err := ParsePriority(o.Priority)
	if err != nil {
		return nil, fmt.Errorf("--collector.journal.priority: %w", err)
	}
	if o.MaxUnits < 1 {
		return nil, fmt.Errorf("--collector.journal.max-units=%d: want at least 1", o.MaxUnits)
	}
	if o.StateInterval <= 0 {
		o.StateInterval = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	j := &Journal{
		logger: cfg.Logger, opts: o, threshold: th,
		entries: map[countKey]float64{}, units: map[string]bool{}, kernel: map[string]float64{},
		err: "not started",
	}
	st, err := loadState(o.StateFile)
	if err != nil {
		j.logger.Warn("journal state not restored", "err", err)
	}
	j.restore(st)
	j.ctx, j.cancel = context.WithCancel(context.Background())
	return j, nil
}

func (j *Journal) restore(s *state) {
	j.cursor = []byte(s.Cursor)
	j.read = s.Read
	for unit, byPrio := range s.Entries {
		for p, n := range byPrio {
			prio, err := ParsePriority(p)
			if err != nil {
				continue
			}
			if unit != "other" {
				j.units[unit] = true
			}
			j.entries[countKey{unit, prio}] = n
		}
	}
	for _, ev := range Events {
		j.kernel[ev] = s.Kernel[ev]
	}
}

// snapshot returns the state to save. Called with j.mu held.
func (j *Journal) snapshot() *state {
	s := &state{Version: stateVersion, Cursor: string(j.cursor), Read: j.read,
		Entries: map[string]map[string]float64{}, Kernel: map[string]float64{}}
	for k, n := range j.entries {
		if s.Entries[k.unit] == nil {
			s.Entries[k.unit] = map[string]float64{}
		}
		s.Entries[k.unit][Priorities[k.priority]] = n
	}
	for ev, n := range j.kernel {
		s.Kernel[ev] = n
	}
	return s
}

// Start begins following the journal in the background. It is idempotent.
func (j *Journal) Start() {
	j.start.Do(func() {
		j.startedAt = time.Now()
		j.wg.Add(2)
		go j.follow()
		go j.saveLoop()
	})
}

// Close stops reading and saves the state once more, so that a clean
// shutdown loses nothing and the next start counts nothing twice.
func (j *Journal) Close() error {
	var err error
	j.closed.Do(func() {
		j.cancel()
		j.wg.Wait()
		err = j.save()
	})
	return err
}

func (j *Journal) save() error {
	if j.opts.StateFile == "" {
		return nil
	}
	j.mu.Lock()
	if !j.dirty {
		j.mu.Unlock()
		return nil
	}
	s := j.snapshot()
	j.dirty = false
	j.mu.Unlock()
	err := s.save(j.opts.StateFile)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.dirty = true
		if msg := err.Error(); msg != j.stateErr {
			j.logger.Error("cannot save the journal state", "err", err)
			j.stateErr = msg
		}
		return err
	}
	j.stateErr = ""
	return nil
}

func (j *Journal) saveLoop() {
	defer j.wg.Done()
	t := time.NewTicker(j.opts.StateInterval)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
			j.save()
		}
	}
}

// args are journalctl's arguments to follow on from cursor; without a
// cursor (a first start), from the entries written since startedAt: the
// journal's history before the exporter ran is not counted, so a first
// start does not look like a burst of errors.
func (j *Journal) args(cursor string, startedAt time.Time) []string {
	// --follow implies --lines=10, which journalctl 252 also applies after
	// --after-cursor and --since: of more than 10 entries waiting it prints
	// 10 and skips the rest. --lines=all turns that off. --follow also
	// implies --boot (the newest boot only), which after a reboot would skip
	// the previous boot's entries after the cursor (its last minutes, the
	// ones that say why it went down); --merge turns that off. (--merge
	// also reads journals received from other machines under
	// /var/log/journal/remote, which pantherOS hosts do not keep.)
	a := []string{"--output=export", "--follow", "--lines=all", "--merge", "--no-pager", "--quiet",
		"--output-fields=MESSAGE,PRIORITY,_SYSTEMD_UNIT,_TRANSPORT"}
	if j.opts.Directory != "" {
		a = append(a, "--directory="+j.opts.Directory)
	}
	if cursor != "" {
		a = append(a, "--after-cursor="+cursor)
	} else {
		us := startedAt.UnixMicro()
		a = append(a, fmt.Sprintf("--since=@%d.%06d", us/1e6, us%1e6))
	}
	return a
}

// follow runs journalctl until Close, starting it again with backoff
// (1s doubling to MaxBackoff) from the last cursor whenever it ends.
func (j *Journal) follow() {
	defer j.wg.Done()
	backoff := time.Second
	startedAt := j.startedAt
	for {
		j.mu.Lock()
		cursor := string(j.cursor)
		j.mu.Unlock()
		n, err := j.run(cursor, startedAt)
		if j.ctx.Err() != nil {
			return
		}
		if n > 0 {
			backoff = time.Second
		}
		j.setDown(err)
		if cursor != "" && n == 0 && errors.Is(err, errBadCursor) {
			// The saved cursor is not one journalctl can seek to (another
			// machine's journal, a damaged state file): go on from the end.
			j.logger.Warn("journal cursor refused by journalctl; following from the newest entry")
			j.mu.Lock()
			j.cursor = j.cursor[:0]
			j.mu.Unlock()
			startedAt = time.Now()
			continue
		}
		select {
		case <-j.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, j.opts.MaxBackoff)
	}
}

var errBadCursor = errors.New("cursor refused")

func (j *Journal) setDown(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	msg := "journalctl ended"
	if err != nil {
		msg = err.Error()
	}
	if msg != j.err {
		j.logger.Error("journal reader stopped", "err", msg)
	}
	j.up, j.err = false, msg
}

// run starts journalctl once and reads its output until it ends; it
// returns how many entries it read and why it ended.
func (j *Journal) run(cursor string, startedAt time.Time) (int, error) {
	cmd := exec.CommandContext(j.ctx, j.opts.Journalctl, j.args(cursor, startedAt)...)
	cmd.WaitDelay = 5 * time.Second
	stderr := &lastLine{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", j.opts.Journalctl, err)
	}
	j.mu.Lock()
	if j.err != "" {
		j.logger.Info("journal reader running", "cursor_given", cursor != "")
	}
	j.up, j.err = true, ""
	j.mu.Unlock()

	r := NewReader(out)
	var e Entry
	n := 0
	var readErr error
	for {
		if readErr = r.Next(&e); readErr != nil {
			break
		}
		if len(e.Cursor) == 0 {
			readErr = formatErr(r.line, "entry without __CURSOR")
			break
		}
		j.handle(&e)
		n++
	}
	// Stop journalctl if the stream broke while it still runs.
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
	io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	if j.ctx.Err() != nil {
		return n, nil
	}
	switch {
	case readErr != nil && readErr != io.EOF:
		return n, fmt.Errorf("reading journalctl output: %w", readErr)
	case strings.Contains(stderr.String(), "cursor"):
		return n, fmt.Errorf("%w: journalctl: %s", errBadCursor, stderr.String())
	case waitErr != nil:
		if s := stderr.String(); s != "" {
			return n, fmt.Errorf("journalctl: %v: %s", waitErr, s)
		}
		return n, fmt.Errorf("journalctl: %w", waitErr)
	}
	return n, errors.New("journalctl ended")
}

// handle counts one entry and moves the cursor past it.
func (j *Journal) handle(e *Entry) {
	kernel := string(e.Transport) == "kernel"
	event := ""
	if kernel && len(e.Message) > 0 {
		event = Classify(string(e.Message))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cursor = append(j.cursor[:0], e.Cursor...)
	j.dirty = true
	if e.Realtime > j.last {
		j.last = e.Realtime
	}
	j.read++
	if event != "" {
		j.kernel[event]++
	}
	if e.Priority >= 0 && e.Priority <= j.threshold {
		j.entries[countKey{j.unitLabel(e.Unit, kernel), e.Priority}]++
	}
}

// unitLabel names the unit of an entry for the unit label: kernel
// messages are "kernel", entries without a unit "unknown", numbered
// session scopes and transient run-* units collapse to one name each, and
// once MaxUnits names are in use the rest are "other". Called with j.mu held.
func (j *Journal) unitLabel(unit []byte, kernel bool) string {
	switch {
	case len(unit) == 0 && kernel:
		return "kernel"
	case len(unit) == 0:
		return "unknown"
	case bytes.HasPrefix(unit, []byte("session-")) && bytes.HasSuffix(unit, []byte(".scope")):
		return "session.scope"
	case bytes.HasPrefix(unit, []byte("run-")):
		if i := bytes.LastIndexByte(unit, '.'); i > 0 {
			return "run-*" + string(unit[i:])
		}
	}
	if j.units[string(unit)] {
		return string(unit)
	}
	if len(j.units) >= j.opts.MaxUnits {
		return "other"
	}
	u := string(unit)
	j.units[u] = true
	return u
}

// Update sends the counters. It fails while journalctl is not running,
// naming why; the counters are sent all the same.
func (j *Journal) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	j.mu.Lock()
	keys := make([]countKey, 0, len(j.entries))
	for k := range j.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].unit != keys[b].unit {
			return keys[a].unit < keys[b].unit
		}
		return keys[a].priority < keys[b].priority
	})
	ms := make([]prometheus.Metric, 0, len(keys)+len(Events)+3)
	for _, k := range keys {
		ms = append(ms, entriesTotal.Const(j.entries[k], k.unit, Priorities[k.priority]))
	}
	for _, ev := range Events {
		ms = append(ms, kernelEvents.Const(j.kernel[ev], ev))
	}
	ms = append(ms, readTotal.Const(j.read))
	up := 0.0
	if j.up {
		up = 1
	}
	ms = append(ms, readerUp.Const(up))
	if j.last > 0 {
		ms = append(ms, lastEntry.Const(float64(j.last)/1e6))
	}
	errText := j.err
	stateErr := j.stateErr
	j.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
	var errs []error
	if errText != "" {
		errs = append(errs, errors.New(errText))
	}
	if stateErr != "" {
		errs = append(errs, errors.New(stateErr))
	}
	return errors.Join(errs...)
}

// lastLine keeps the last non-empty line journalctl wrote to stderr, cut
// to 256 bytes. journalctl's own errors name files and options, never
// journal content.
type lastLine struct {
	mu   sync.Mutex
	buf  []byte
	last string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(l.buf) < 256 {
				l.buf = append(l.buf, p[:min(len(p), 256-len(l.buf))]...)
			}
			break
		}
		if len(l.buf) < 256 {
			l.buf = append(l.buf, p[:min(i, 256-len(l.buf))]...)
		}
		if s := strings.TrimSpace(string(l.buf)); s != "" {
			l.last = s
		}
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := strings.TrimSpace(string(l.buf)); s != "" {
		return s
	}
	return l.last
}
