// Package textfile exports the metrics that batch jobs write into *.prom
// files, the convention of node_exporter's textfile collector: every file
// of the --collector.textfile.directory directories is parsed with the
// Prometheus text parser (prometheus/common/expfmt) and its samples are
// exported as written, with their HELP and type.
//
// A file that does not parse, that declares a metric another file declared
// with another type or help, that repeats a series another file exports, or
// that exports a name one of the exporter's own collectors exports
// (collector.Catalog, plus the Go runtime and process metrics) is skipped as a whole, with one log line naming it and
// the reason each time its problem changes; the other files are untouched.
// Jobs must write a temporary file and rename it into place, so that a scrape
// never sees half a file.
//
// Only regular files are read, never through a symlink (not even one to a
// file in the same directory), and never one larger than
// --collector.textfile.max-file-size: a FIFO would block the run for good, a
// device or a huge file would fill the memory, and a symlink would let
// anyone who can write the directory make the exporter (often root) read a
// file they cannot. Such a file is refused by name without being read.
// Errors name the file, the line and the kind of problem, never the file's
// content (package inputerr).
//
// Parsing is redone only for files whose inode, size or times changed since
// the last scrape; an unchanged directory costs a stat per file.
package textfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

const name = "textfile"

// StaleAfterName is the sample a job writes into its own file to say how
// old the file may grow before it counts as stale (in seconds). It is not
// exported as written: it becomes panther_textfile_stale_after_seconds{file}.
const StaleAfterName = "textfile_stale_after_seconds"

var (
	mtimeSeconds = collector.Gauge(name, "textfile_mtime_seconds",
		"Modification time of a *.prom file of the textfile directories.", "file")
	scrapeError = collector.Gauge(name, "textfile_scrape_error",
		"1 when the *.prom file could not be used (does not parse, clashes with another file or with a metric of the exporter), else 0.", "file")
	staleAfter = collector.Gauge(name, "textfile_stale_after_seconds",
		"How old the file may grow before it counts as stale: the file's own textfile_stale_after_seconds sample, else --collector.textfile.stale-after.", "file")
)

// Options are the textfile collector's flags.
type Options struct {
	Directories []string      // --collector.textfile.directory, repeatable
	StaleAfter  time.Duration // --collector.textfile.stale-after
	MaxFileSize int64         // --collector.textfile.max-file-size, bytes; 0: DefaultMaxFileSize
}

// DefaultMaxFileSize is the default of --collector.textfile.max-file-size:
// some 25,000 samples, far more than a batch job writes, and little enough
// for a small host (such a file takes the exporter's peak RSS to about 50 MiB;
// a 4 MiB one to about 160 MiB; docs/benchmarks.md).
const DefaultMaxFileSize = 1 << 20

var flags Options

func init() {
	kingpin.Flag("collector.textfile.directory",
		"Directory to read *.prom files from (repeatable). Giving one turns the textfile collector on (with --collector.disable-defaults too), unless --no-collector.textfile says otherwise.").
		PlaceHolder("DIR").Action(enableOnDirectory).StringsVar(&flags.Directories)
	kingpin.Flag("collector.textfile.stale-after",
		"Age after which a *.prom file that declares no textfile_stale_after_seconds counts as stale.").
		Default("24h").DurationVar(&flags.StaleAfter)
	maxFileSize := kingpin.Flag("collector.textfile.max-file-size",
		"Largest *.prom file read (with a unit: 512KiB, 4MiB); a larger file is refused by name without being read.").
		Default("1MiB").Bytes()
	collector.Register(name, false, func(cfg collector.Config) (collector.Collector, error) {
		flags.MaxFileSize = int64(*maxFileSize)
		return New(cfg, flags)
	})
}

// enableOnDirectory switches --collector.textfile on when a directory is
// given, unless the command line set --collector.textfile itself.
func enableOnDirectory(ctx *kingpin.ParseContext) error {
	for _, el := range ctx.Elements {
		if fc, ok := el.Clause.(*kingpin.FlagClause); ok && fc.Model().Name == "collector."+name {
			return nil
		}
	}
	collector.EnableExplicitly(name)
	return nil
}

// Textfile is the textfile collector.
type Textfile struct {
	logger     *slog.Logger
	dirs       []string
	staleAfter float64
	maxSize    int64
	builtin    map[string]string // metric name -> collector, from the catalog

	mu    sync.Mutex
	files map[string]*fileState // by path
	last  *outcome              // the previous scrape's result
}

// fileState is what is known of one file across scrapes.
type fileState struct {
	key     fileKey
	parsed  *parsed // nil when the file did not parse
	err     error   // why it did not parse
	problem string  // the problem last logged, "" when fine
}

// fileKey identifies a version of a file without reading it.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
}

// outcome is one scrape's result, kept to be sent again while no file
// changes.
type outcome struct {
	keys    []string // path + key of every file, in order
	metrics []prometheus.Metric
}

// New builds the collector.
func New(cfg collector.Config, o Options) (*Textfile, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 24 * time.Hour
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	t := &Textfile{
		logger:     logger,
		staleAfter: o.StaleAfter.Seconds(),
		maxSize:    o.MaxFileSize,
		builtin:    map[string]string{},
		files:      map[string]*fileState{},
	}
	seen := map[string]bool{}
	for _, d := range o.Directories {
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			t.dirs = append(t.dirs, d)
		}
	}
	for _, m := range collector.Catalog() {
		t.builtin[m.Name] = m.Collector
	}
	// The exporter also serves client_golang's Go runtime and process
	// metrics, which the catalog does not list; a file repeating one would
	// break that family on every scrape.
	for _, n := range runtimeMetricNames() {
		if _, ok := t.builtin[n]; !ok {
			t.builtin[n] = "exporter (Go runtime and process metrics)"
		}
	}
	return t, nil
}

// runtimeMetricNames lists the sample names of the Go and process
// collectors the exporter registers next to its own.
func runtimeMetricNames() []string {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fams, _ := reg.Gather()
	var out []string
	for _, f := range fams {
		n := f.GetName()
		out = append(out, n)
		switch f.GetType() {
		case dto.MetricType_SUMMARY:
			out = append(out, n+"_sum", n+"_count")
		case dto.MetricType_HISTOGRAM:
			out = append(out, n+"_bucket", n+"_sum", n+"_count")
		}
	}
	return out
}

// Update sends the samples of every usable file plus the per-file
// mtime, error and staleness metrics. It fails only when a directory
// cannot be listed; a bad file is reported by its scrape_error series and
// logged.
func (t *Textfile) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	var paths []string
	for _, d := range t.dirs {
		ps, err := listDir(d)
		if err != nil {
			errs = append(errs, err)
		}
		paths = append(paths, ps...)
	}
	keys := make([]string, 0, len(paths))
	present := make(map[string]bool, len(paths))
	for _, p := range paths {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		present[p] = true
		st := t.refresh(p)
		keys = append(keys, fmt.Sprintf("%s\x00%v", p, st.key))
	}
	for p := range t.files {
		if !present[p] {
			delete(t.files, p)
		}
	}
	if t.last == nil || !equal(t.last.keys, keys) {
		t.last = &outcome{keys: keys, metrics: t.build(paths)}
	}
	for _, m := range t.last.metrics {
		ch <- m
	}
	return errors.Join(errs...)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// listDir returns the *.prom files of dir, sorted.
func listDir(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("textfile directory: %w", err)
	}
	var out []string
	for _, e := range es {
		n := e.Name()
		if !strings.HasSuffix(n, ".prom") || strings.HasPrefix(n, ".") || e.IsDir() {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out, nil
}

// refresh makes sure the state of path reflects the file as it is now,
// reading it again only when it changed.
func (t *Textfile) refresh(path string) *fileState {
	st := t.files[path]
	if st == nil {
		st = &fileState{}
		t.files[path] = st
	}
	// Lstat: the entry itself, so that a symlink, a FIFO, a device or a huge
	// file is refused from its metadata, without opening it.
	fi, err := os.Lstat(path)
	if err == nil && (st.parsed != nil || st.err != nil) && keyOf(fi) == st.key {
		return st
	}
	st.key, st.parsed, st.err = fileKey{}, nil, nil
	if err != nil {
		st.err = inputerr.Wrap("", err)
		return st
	}
	st.key = keyOf(fi)
	if err := t.usable(fi); err != nil {
		st.err = err
		return st
	}
	data, fi, err := t.read(path)
	if err != nil {
		st.err = err
		return st
	}
	st.key = keyOf(fi)
	st.parsed, st.err = parse(data)
	if st.parsed != nil {
		st.parsed.mtime = float64(fi.ModTime().UnixNano()) / 1e9
	}
	return st
}

// usable refuses what is not a regular file of at most maxSize bytes.
func (t *Textfile) usable(fi os.FileInfo) error {
	switch m := fi.Mode(); {
	case m&os.ModeSymlink != 0:
		return inputerr.New("", "a symlink: not followed (write a regular file into the directory and rename it into place)")
	case m&os.ModeNamedPipe != 0:
		return inputerr.New("", "a FIFO: not read (reading one blocks until someone writes)")
	case m&os.ModeDevice != 0:
		return inputerr.New("", "a device: not read")
	case !m.IsRegular():
		return inputerr.New("", "not a regular file: not read")
	case fi.Size() > t.maxSize:
		return inputerr.New("", fmt.Sprintf("%d bytes, larger than the limit of %d (--collector.textfile.max-file-size): not read", fi.Size(), t.maxSize))
	}
	return nil
}

// read opens path without following a symlink and without blocking (a FIFO
// swapped in after the Lstat), checks again what it opened, and reads at
// most maxSize bytes of it.
func (t *Textfile) read(path string) ([]byte, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, inputerr.New("", "a symlink: not followed (write a regular file into the directory and rename it into place)")
	}
	if err != nil {
		return nil, nil, inputerr.Wrap("", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, inputerr.Wrap("", err)
	}
	if err := t.usable(fi); err != nil {
		return nil, fi, err
	}
	data, err := io.ReadAll(io.LimitReader(f, t.maxSize+1))
	if err != nil {
		return nil, fi, inputerr.Wrap("", err)
	}
	if int64(len(data)) > t.maxSize {
		return nil, fi, inputerr.New("", fmt.Sprintf("grew beyond the limit of %d bytes (--collector.textfile.max-file-size) while read", t.maxSize))
	}
	return data, fi, nil
}

func keyOf(fi os.FileInfo) fileKey {
	k := fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(s.Dev), s.Ino
		k.ctime = s.Ctim.Sec*1e9 + s.Ctim.Nsec
	}
	return k
}

// build checks the files against each other and the catalog, in path
// order (the first file to declare a metric wins), logs problems that
// changed, and returns every metric to send.
func (t *Textfile) build(paths []string) []prometheus.Metric {
	type decl struct {
		name string // the family's
		typ  dto.MetricType
		help string
		file string
		line int
	}
	// Reasons place the clash by file and line; metric names, help texts
	// and label values are the file's content and are not quoted.
	declared := map[string]decl{} // family name -> first declaration
	exposed := map[string]decl{}  // exposed sample name -> family that exposes it
	series := map[string]decl{}   // series key -> family that exports it
	var out []prometheus.Metric
	for _, p := range paths {
		st := t.files[p]
		problem := ""
		mtime := math.NaN()
		if st.err != nil {
			problem = st.err.Error()
			if st.key.mtime != 0 {
				mtime = float64(st.key.mtime) / 1e9
			}
		} else {
			mtime = st.parsed.mtime
			problem = t.clash(st.parsed, func(f *family) string {
				if d, ok := declared[f.name]; ok && (d.typ != f.typ || d.help != f.help) {
					what := "help"
					if d.typ != f.typ {
						what = "type (" + typeName(f.typ) + " here, " + typeName(d.typ) + " there)"
					}
					return fmt.Sprintf("%s is declared with another %s than %s of %s", at(f.line), what, at(d.line), d.file)
				}
				for _, n := range f.exposed {
					if d, ok := exposed[n]; ok && d.name != f.name {
						return fmt.Sprintf("%s exposes a sample name that %s of %s exposes too", at(f.line), at(d.line), d.file)
					}
				}
				for _, k := range f.keys {
					if d, ok := series[k]; ok {
						return fmt.Sprintf("a series of %s is exported by %s of %s already", at(f.line), at(d.line), d.file)
					}
				}
				return ""
			})
		}
		if problem == "" {
			for _, f := range st.parsed.families {
				if _, ok := declared[f.name]; !ok {
					declared[f.name] = decl{f.name, f.typ, f.help, p, f.line}
				}
				for _, n := range f.exposed {
					exposed[n] = decl{name: f.name, file: p, line: f.line}
				}
				for _, k := range f.keys {
					series[k] = decl{file: p, line: f.line}
				}
				out = append(out, f.metrics...)
			}
		}
		t.report(p, st, problem)
		if !math.IsNaN(mtime) {
			out = append(out, mtimeSeconds.Const(mtime, p))
		}
		errV := 0.0
		if problem != "" {
			errV = 1
		}
		out = append(out, scrapeError.Const(errV, p))
		sa := t.staleAfter
		if problem == "" && st.parsed.staleAfter > 0 {
			sa = st.parsed.staleAfter
		}
		out = append(out, staleAfter.Const(sa, p))
	}
	return out
}

// clash returns why the file cannot be used next to the exporter's own
// metrics and the files before it, or "".
func (t *Textfile) clash(p *parsed, other func(*family) string) string {
	for _, f := range p.families {
		for _, n := range f.exposed {
			if c, ok := t.builtin[n]; ok {
				// n is the exporter's own name, not the file's words.
				return fmt.Sprintf("%s collides with %s of the exporter's own collector %s", at(f.line), n, c)
			}
		}
		if why := other(f); why != "" {
			return why
		}
	}
	return ""
}

// report logs a file's problem when it changed since the last scrape, and
// its recovery once.
func (t *Textfile) report(path string, st *fileState, problem string) {
	if problem == st.problem {
		return
	}
	if problem != "" {
		t.logger.Warn("textfile skipped", "file", path, "reason", problem)
	} else {
		t.logger.Info("textfile usable again", "file", path)
	}
	st.problem = problem
}

func typeName(t dto.MetricType) string {
	return strings.ToLower(t.String())
}

// parsed is a file turned into metrics, ready to send.
type parsed struct {
	families   []*family
	mtime      float64
	staleAfter float64 // the file's textfile_stale_after_seconds, 0 when absent
}

// family is one metric family of a file.
type family struct {
	name    string
	help    string
	typ     dto.MetricType
	line    int      // where the file first mentions it
	exposed []string // the sample names it puts on the wire
	keys    []string // one per series, to find the same series in two files
	metrics []prometheus.Metric
}

// parse reads a file in the Prometheus text format and builds its
// metrics. Any error makes the whole file unusable; errors give the line and
// the kind of problem, never a token of the file.
func parse(data []byte) (*parsed, error) {
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return nil, inputerr.Wrap("", err)
	}
	lines := firstLines(data, fams)
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	p := &parsed{}
	for _, n := range names {
		mf := fams[n]
		if n == StaleAfterName {
			v, err := staleAfterValue(mf, lines[n])
			if err != nil {
				return nil, err
			}
			p.staleAfter = v
			continue
		}
		f, err := convert(mf, lines[n])
		if err != nil {
			return nil, err
		}
		if len(f.metrics) > 0 {
			p.families = append(p.families, f)
		}
	}
	return p, nil
}

// firstLines finds the line where each family of fams first appears (its
// HELP, TYPE or first sample), so that problems found after parsing can be
// placed without quoting the metric's name or labels.
func firstLines(data []byte, fams map[string]*dto.MetricFamily) map[string]int {
	out := make(map[string]int, len(fams))
	for n := 1; len(data) > 0; n++ {
		var l []byte
		l, data, _ = bytes.Cut(data, []byte("\n"))
		name := lineName(l)
		if name == "" {
			continue
		}
		if _, ok := fams[name]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base, cut := strings.CutSuffix(name, suffix)
				if mf, ok := fams[base]; cut && ok && (mf.GetType() == dto.MetricType_SUMMARY || mf.GetType() == dto.MetricType_HISTOGRAM) {
					name = base
					break
				}
			}
		}
		if _, seen := out[name]; !seen {
			out[name] = n
		}
	}
	return out
}

// lineName is the metric name a line of the text format is about, "" for
// none: the name of a HELP or TYPE comment, or of a sample, quoted or not.
func lineName(l []byte) string {
	l = bytes.TrimLeft(l, " \t")
	if rest, ok := bytes.CutPrefix(l, []byte("#")); ok {
		// Blanks and tabs separate tokens, as for expfmt.
		rest = bytes.TrimLeft(rest, " \t")
		i := bytes.IndexAny(rest, " \t")
		if i < 0 || (string(rest[:i]) != "HELP" && string(rest[:i]) != "TYPE") {
			return ""
		}
		l = bytes.TrimLeft(rest[i:], " \t")
		if len(l) > 0 && l[0] == '"' {
			return quotedPrefix(l)
		}
		if i := bytes.IndexAny(l, " \t"); i >= 0 {
			l = l[:i]
		}
		return string(l)
	}
	if len(l) > 0 && l[0] == '{' {
		return quotedPrefix(bytes.TrimLeft(l[1:], " \t"))
	}
	if i := bytes.IndexAny(l, "{ \t"); i >= 0 {
		l = l[:i]
	}
	return string(l)
}

// quotedPrefix unquotes the quoted string l starts with, "" if none.
func quotedPrefix(l []byte) string {
	if len(l) == 0 || l[0] != '"' {
		return ""
	}
	for i := 1; i < len(l); i++ {
		switch l[i] {
		case '\\':
			i++
		case '"':
			s, err := strconv.Unquote(string(l[:i+1]))
			if err != nil {
				return ""
			}
			return s
		}
	}
	return ""
}

// at names the place of a family for an error: its first line.
func at(line int) string {
	if line > 0 {
		return fmt.Sprintf("the metric at line %d", line)
	}
	return "a metric"
}

func staleAfterValue(mf *dto.MetricFamily, line int) (float64, error) {
	if len(mf.Metric) != 1 || len(mf.Metric[0].Label) != 0 ||
		(mf.GetType() != dto.MetricType_GAUGE && mf.GetType() != dto.MetricType_UNTYPED) {
		return 0, inputerr.At("", line, StaleAfterName+" must be one gauge sample without labels")
	}
	m := mf.Metric[0]
	v := m.GetGauge().GetValue()
	if m.Untyped != nil {
		v = m.GetUntyped().GetValue()
	}
	if !(v > 0) || math.IsInf(v, 0) {
		return 0, inputerr.At("", line, StaleAfterName+" must be a positive number of seconds")
	}
	return v, nil
}

// convert turns a parsed family into const metrics.
//
// These families are only known at scrape time, so their descriptors are
// built here with prometheus.NewDesc: the one place in the exporter that
// does not declare its metrics through collector.Gauge/Counter (the
// catalog holds the panther_textfile_* metrics of this package only).
func convert(mf *dto.MetricFamily, line int) (*family, error) {
	f := &family{name: mf.GetName(), help: mf.GetHelp(), typ: mf.GetType(), line: line}
	switch f.typ {
	case dto.MetricType_SUMMARY:
		f.exposed = []string{f.name, f.name + "_sum", f.name + "_count"}
	case dto.MetricType_HISTOGRAM:
		f.exposed = []string{f.name, f.name + "_bucket", f.name + "_sum", f.name + "_count"}
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
		f.exposed = []string{f.name}
	default:
		return nil, inputerr.At("", line, "type "+typeName(f.typ)+" is not supported")
	}
	// Series of one family may carry different labels; as node_exporter
	// does, every series gets every label, empty where it had none (the
	// same series to Prometheus).
	labelSet := map[string]bool{}
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			labelSet[l.GetName()] = true
		}
	}
	labels := make([]string, 0, len(labelSet))
	for l := range labelSet {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	desc := prometheus.NewDesc(f.name, f.help, labels, nil)
	own := map[string]bool{}
	for _, m := range mf.Metric {
		if m.TimestampMs != nil {
			return nil, inputerr.At("", line, "a sample of this metric has a timestamp: not supported")
		}
		values := make([]string, len(labels))
		for _, l := range m.Label {
			values[sort.SearchStrings(labels, l.GetName())] = l.GetValue()
		}
		// The series' identity: its non-empty labels in name order.
		var key strings.Builder
		key.Grow(len(f.name) + 16*len(labels))
		key.WriteString(f.name)
		key.WriteByte('{')
		for i, v := range values {
			if v != "" {
				key.WriteString(labels[i])
				key.WriteByte('=')
				key.WriteString(strconv.Quote(v))
				key.WriteByte(',')
			}
		}
		key.WriteByte('}')
		k := key.String()
		if own[k] {
			return nil, inputerr.At("", line, "a series of this metric appears twice")
		}
		own[k] = true
		f.keys = append(f.keys, k)
		var pm prometheus.Metric
		var err error
		switch f.typ {
		case dto.MetricType_COUNTER:
			pm, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
		case dto.MetricType_GAUGE:
			pm, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
		case dto.MetricType_UNTYPED:
			pm, err = prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), values...)
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			q := make(map[float64]float64, len(s.Quantile))
			for _, x := range s.Quantile {
				q[x.GetQuantile()] = x.GetValue()
			}
			pm, err = prometheus.NewConstSummary(desc, s.GetSampleCount(), s.GetSampleSum(), q, values...)
		case dto.MetricType_HISTOGRAM:
			h := m.GetHistogram()
			b := make(map[float64]uint64, len(h.Bucket))
			for _, x := range h.Bucket {
				b[x.GetUpperBound()] = x.GetCumulativeCount()
			}
			pm, err = prometheus.NewConstHistogram(desc, h.GetSampleCount(), h.GetSampleSum(), b, values...)
		}
		if err != nil {
			// client_golang's message quotes the offending label.
			return nil, inputerr.At("", line, "a series of this metric cannot be exported (invalid label name or value)")
		}
		f.metrics = append(f.metrics, pm)
	}
	return f, nil
}
