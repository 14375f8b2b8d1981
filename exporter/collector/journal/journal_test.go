package journal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pantheros/monitoring/exporter/collector"
)

// The test binary stands in for journalctl when PANTHER_FAKE_JOURNALCTL
// names an export-format file: it prints the entries after
// --after-cursor (or, with --lines=1, the newest one) as journalctl does,
// then follows the file as it grows until it is killed. The real
// journalctl on real journal files is tested in e2e/journal_test.go.
func TestMain(m *testing.M) {
	if path := os.Getenv("PANTHER_FAKE_JOURNALCTL"); path != "" {
		fakeJournalctl(path, os.Args[1:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeJournalctl(path string, args []string) {
	after, since := "", int64(-1)
	for _, a := range args {
		if c, ok := strings.CutPrefix(a, "--after-cursor="); ok {
			after = c
		}
		if v, ok := strings.CutPrefix(a, "--since=@"); ok {
			sec, frac, _ := strings.Cut(v, ".")
			s, err1 := strconv.ParseInt(sec, 10, 64)
			us, err2 := strconv.ParseInt(frac, 10, 64)
			if err1 != nil || err2 != nil || len(frac) != 6 {
				fmt.Fprintln(os.Stderr, "Failed to parse timestamp:", v)
				os.Exit(1)
			}
			since = s*1e6 + us
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Failed to open files:", err)
		os.Exit(1)
	}
	starts := entryStarts(b)
	from := 0
	switch {
	case after != "":
		i := bytes.Index(b, []byte("__CURSOR="+after+"\n"))
		if i < 0 {
			fmt.Fprintln(os.Stderr, "Failed to seek to cursor: Invalid argument")
			os.Exit(1)
		}
		from = len(b)
		for _, s := range starts {
			if s > i {
				from = s
				break
			}
		}
	case since >= 0:
		from = len(b)
		for _, s := range starts {
			if realtimeAt(b[s:]) >= since {
				from = s
				break
			}
		}
	}
	// journalctl 252's --follow implies --lines=10 even after a cursor or
	// --since: without --lines=all it prints 10 waiting entries and skips
	// the rest. The fake does the same, so that losing --lines=all fails.
	if !slices.Contains(args, "--lines=all") {
		var waiting []int
		for _, s := range starts {
			if s >= from {
				waiting = append(waiting, s)
			}
		}
		if len(waiting) > 10 {
			os.Stdout.Write(b[from:waiting[10]])
			from = len(b)
		}
	}
	os.Stdout.Write(b[from:])
	done := len(b)
	for {
		time.Sleep(20 * time.Millisecond)
		b, err = os.ReadFile(path)
		if err != nil {
			os.Exit(1)
		}
		if len(b) > done {
			os.Stdout.Write(b[done:])
			done = len(b)
		}
	}
}

// realtimeAt is the __REALTIME_TIMESTAMP of the entry at the start of b.
func realtimeAt(b []byte) int64 {
	i := bytes.Index(b, []byte("\n__REALTIME_TIMESTAMP="))
	if i < 0 {
		return 0
	}
	v := b[i+len("\n__REALTIME_TIMESTAMP="):]
	v = v[:bytes.IndexByte(v, '\n')]
	n, _ := strconv.ParseInt(string(v), 10, 64)
	return n
}

// entryStarts finds where each entry begins: at "__CURSOR=" at the start
// of the file or after a blank line.
func entryStarts(b []byte) []int {
	var out []int
	if bytes.HasPrefix(b, []byte("__CURSOR=")) {
		out = append(out, 0)
	}
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte("\n\n__CURSOR="))
		if j < 0 {
			return out
		}
		out = append(out, i+j+2)
		i += j + 2
	}
}

// journalFile is a growing export-format file the fake journalctl follows.
type journalFile struct {
	t       *testing.T
	path    string
	entries [][]byte // the fixture's entries
	n       int      // entries appended so far, for unique cursors
}

func newJournalFile(t *testing.T) *journalFile {
	b := readFixture(t)
	st := entryStarts(b)
	jf := &journalFile{t: t, path: filepath.Join(t.TempDir(), "journal.export")}
	for i, s := range st {
		end := len(b)
		if i+1 < len(st) {
			end = st[i+1]
		}
		// Drop the cursor line: append gives every copy its own.
		e := b[s:end]
		e = e[bytes.IndexByte(e, '\n')+1:]
		jf.entries = append(jf.entries, e)
	}
	if err := os.WriteFile(jf.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return jf
}

// append writes fixture entries [from, to) with fresh cursors, stamped
// with the time of writing (newer than the collector's start).
func (jf *journalFile) append(from, to int) { jf.write(from, to, true) }

// write appends entries [from, to); with now false they keep the
// fixture's own timestamps, from before the test.
func (jf *journalFile) write(from, to int, now bool) {
	f, err := os.OpenFile(jf.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		jf.t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, e := range jf.entries[from:to] {
		jf.n++
		fmt.Fprintf(&buf, "__CURSOR=test-%d\n", jf.n)
		if now {
			fmt.Fprintf(&buf, "__REALTIME_TIMESTAMP=%d\n", time.Now().UnixMicro())
			e = stripRealtime(e)
		}
		buf.Write(e)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		jf.t.Fatal(err)
	}
}

func stripRealtime(e []byte) []byte {
	i := bytes.Index(e, []byte("__REALTIME_TIMESTAMP="))
	if i < 0 {
		return e
	}
	j := bytes.IndexByte(e[i:], '\n')
	return append(append([]byte{}, e[:i]...), e[i+j+1:]...)
}

func startFake(t *testing.T, jf *journalFile, state string, maxUnits int) *Journal {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PANTHER_FAKE_JOURNALCTL", jf.path)
	j, err := New(collector.Config{}, Options{Journalctl: self, StateFile: state, MaxUnits: maxUnits,
		StateInterval: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	j.Start()
	t.Cleanup(func() { j.Close() })
	return j
}

// scrape returns every sample of an Update as "name{labels}" -> value.
func scrape(t *testing.T, c collector.Collector) (map[string]float64, error) {
	t.Helper()
	ch := make(chan prometheus.Metric, 1000)
	err := c.Update(context.Background(), ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		var ls []string
		for _, l := range pb.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `fqName: "`)+9:]
		name = name[:strings.IndexByte(name, '"')]
		v := pb.GetCounter().GetValue() + pb.GetGauge().GetValue()
		out[name+"{"+strings.Join(ls, ",")+"}"] = v
	}
	return out, err
}

func waitFor(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitRead(t *testing.T, j *Journal, want float64) map[string]float64 {
	t.Helper()
	var got map[string]float64
	waitFor(t, fmt.Sprintf("%v entries read", want), func() error {
		var err error
		got, err = scrape(t, j)
		if n := got["panther_journal_read_entries_total{}"]; n != want {
			return fmt.Errorf("read %v (collector error: %v)", n, err)
		}
		return nil
	})
	return got
}

// The counts of the fixture's 21 entries (see its description in
// export_test.go), times k.
func wantCounts(k float64, maxUnits int) map[string]float64 {
	w := map[string]float64{
		"panther_kernel_events_total{event=oom_kill}":                     k,
		"panther_kernel_events_total{event=btrfs_error}":                  k,
		"panther_kernel_events_total{event=io_error}":                     k,
		"panther_kernel_events_total{event=segfault}":                     k,
		"panther_kernel_events_total{event=hung_task}":                    k,
		"panther_kernel_events_total{event=soft_lockup}":                  k,
		"panther_kernel_events_total{event=machine_check}":                k,
		"panther_journal_entries_total{priority=err,unit=kernel}":         5 * k,
		"panther_journal_entries_total{priority=crit,unit=kernel}":        2 * k,
		"panther_journal_entries_total{priority=emerg,unit=kernel}":       k,
		"panther_journal_entries_total{priority=err,unit=backup.service}": 2 * k,
		"panther_journal_entries_total{priority=crit,unit=nginx.service}": k,
		"panther_journal_entries_total{priority=err,unit=session.scope}":  k,
		"panther_journal_entries_total{priority=err,unit=unknown}":        k,
		"panther_journal_read_entries_total{}":                            21 * k,
	}
	if maxUnits >= 3 {
		w["panther_journal_entries_total{priority=err,unit=app.service}"] = k
	} else {
		w["panther_journal_entries_total{priority=err,unit=other}"] = k
	}
	return w
}

func checkCounts(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, "panther_journal_entries_total") {
			t.Errorf("unexpected %s = %v", k, v)
		}
	}
}

func TestCountsEveryClassAndUnit(t *testing.T) {
	for _, maxUnits := range []int{50, 2} {
		t.Run(fmt.Sprint("max-units=", maxUnits), func(t *testing.T) {
			jf := newJournalFile(t)
			j := startFake(t, jf, "", maxUnits)
			waitFor(t, "reader up", func() error {
				got, _ := scrape(t, j)
				if got["panther_journal_reader_up{}"] != 1 {
					return fmt.Errorf("not up")
				}
				return nil
			})
			jf.append(0, 21)
			checkCounts(t, waitRead(t, j, 21), wantCounts(1, maxUnits))
		})
	}
}

// Only entries written after the first start count (--since the start):
// what the journal held before is history.
func TestFirstStartSkipsHistory(t *testing.T) {
	jf := newJournalFile(t)
	jf.write(0, 21, false)
	j := startFake(t, jf, "", 50)
	jf.append(0, 21)
	checkCounts(t, waitRead(t, j, 21), wantCounts(1, 50))
}

// A restart goes on from the saved cursor with the saved counts: after a
// clean stop nothing is lost or counted twice, and after a crash (no final
// save) the entries after the last saved cursor are read again from the
// saved counts, so the totals are exact either way.
func TestRestartNeitherLosesNorRecounts(t *testing.T) {
	jf := newJournalFile(t)
	state := filepath.Join(t.TempDir(), "state", "journal.state")

	a := startFake(t, jf, state, 50)
	jf.append(0, 21)
	waitRead(t, a, 21)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	jf.append(0, 21) // written while the exporter is down
	b := startFake(t, jf, state, 50)
	checkCounts(t, waitRead(t, b, 42), wantCounts(2, 50))

	// Crash: the state was saved at some point, then more entries were
	// counted that the file does not know of.
	waitFor(t, "state saved", func() error {
		s, err := loadState(state)
		if err != nil || s.Read != 42 {
			return fmt.Errorf("state read %v (%v)", s.Read, err)
		}
		return nil
	})
	b.mu.Lock()
	b.opts.StateFile = "" // from now on b saves nothing
	b.mu.Unlock()
	jf.append(0, 21)
	waitRead(t, b, 63)
	b.cancel()
	b.wg.Wait()

	jf.append(0, 21)
	c := startFake(t, jf, state, 50)
	checkCounts(t, waitRead(t, c, 84), wantCounts(4, 50))
}

func TestUnreadableStateStartsFresh(t *testing.T) {
	jf := newJournalFile(t)
	state := filepath.Join(t.TempDir(), "journal.state")
	if err := os.WriteFile(state, []byte(`{"version":1,"cursor":"hunter2`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(state); err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), state) {
		t.Fatalf("loadState error = %v, want one naming the file and not quoting it", err)
	}
	j := startFake(t, jf, state, 50)
	jf.append(0, 21) // newer than the start: counted even if journalctl starts after this

	checkCounts(t, waitRead(t, j, 21), wantCounts(1, 50))
}

// A cursor journalctl refuses (another machine's journal) is dropped: the
// reader goes on from the newest entry, keeping the saved counts, instead
// of failing for ever.
func TestRefusedCursorFollowsFromTheEnd(t *testing.T) {
	jf := newJournalFile(t)
	path := filepath.Join(t.TempDir(), "journal.state")
	s := &state{Version: stateVersion, Cursor: "s=elsewhere", Read: 21,
		Entries: map[string]map[string]float64{"backup.service": {"err": 2}},
		Kernel:  map[string]float64{EventOOMKill: 1}}
	if err := s.save(path); err != nil {
		t.Fatal(err)
	}
	j := startFake(t, jf, path, 50)
	waitFor(t, "reader up after dropping the cursor", func() error {
		j.mu.Lock()
		defer j.mu.Unlock()
		if !j.up || len(j.cursor) != 0 {
			return fmt.Errorf("up %v cursor %q", j.up, j.cursor)
		}
		return nil
	})
	jf.append(0, 21)
	got := waitRead(t, j, 42)
	if got["panther_kernel_events_total{event=oom_kill}"] != 2 || got["panther_journal_entries_total{priority=err,unit=backup.service}"] != 4 {
		t.Errorf("saved counts not kept: %v", got)
	}
}

func TestBadFlags(t *testing.T) {
	if _, err := New(collector.Config{}, Options{Priority: "loud", MaxUnits: 1}); err == nil || !strings.Contains(err.Error(), "--collector.journal.priority") {
		t.Errorf("bad priority: %v", err)
	}
	if _, err := New(collector.Config{}, Options{MaxUnits: 0}); err == nil || !strings.Contains(err.Error(), "max-units") {
		t.Errorf("max-units 0: %v", err)
	}
	for s, want := range map[string]int{"err": 3, "ERR": 3, "warning": 4, "0": 0, "7": 7} {
		if got, err := ParsePriority(s); err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %d, %v", s, got, err)
		}
	}
}

// A missing journalctl fails the collector with its name, and the counters
// are still served.
func TestMissingJournalctl(t *testing.T) {
	j, err := New(collector.Config{}, Options{Journalctl: "/nonexistent/journalctl", MaxUnits: 5, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	j.Start()
	defer j.Close()
	waitFor(t, "error naming journalctl", func() error {
		got, err := scrape(t, j)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/journalctl") {
			return fmt.Errorf("err = %v", err)
		}
		if _, ok := got["panther_kernel_events_total{event=oom_kill}"]; !ok || got["panther_journal_reader_up{}"] != 0 {
			return fmt.Errorf("samples %v", got)
		}
		return nil
	})
}
