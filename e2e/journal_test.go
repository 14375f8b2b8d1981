//go:build e2e

package e2e

// Logs on the real parts: journal files written by Debian's
// systemd-journal-remote (no journald runs here), shipped by Debian's
// systemd-journal-upload into a real VictoriaLogs and read back over its
// LogsQL HTTP API; the exporter's journal collector following the same
// files through the real journalctl; Prometheus evaluating the journal
// alert rules.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/dashboards/grafana"
)

// Kernel lines in the formats real kernels print, one per class, and the
// lines printed around them that must not count again.
var kernelLines = []struct {
	priority int
	msg      string
	event    string
}{
	{4, "stress-ng invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0", ""},
	{6, "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/stress.service,task=stress-ng,pid=1234,uid=0", ""},
	{3, "Out of memory: Killed process 1234 (stress-ng) total-vm:1048576kB, anon-rss:1000000kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:2000kB oom_score_adj:0", "oom_kill"},
	{3, "BTRFS error (device sda1): bdev /dev/sda1 errs: wr 0, rd 0, flush 0, corrupt 1, gen 0", "btrfs_error"},
	{3, "I/O error, dev nvme0n1, sector 1953525120 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2", "io_error"},
	{3, "Buffer I/O error on dev nvme0n1p2, logical block 0, async page read", ""},
	{6, "nginx[2371]: segfault at 0 ip 000055d0c3a1b2c4 sp 00007ffd4b6f8e10 error 4 in nginx[55d0c3a00000+f7000] likely on CPU 1 (core 1, socket 0)", "segfault"},
	{3, "INFO: task btrfs-transacti:412 blocked for more than 120 seconds.", "hung_task"},
	{0, "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:345]", "soft_lockup"},
	{2, "mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 5: be00000000800400", ""},
	{2, "mce: [Hardware Error]: Machine check events logged", "machine_check"},
}

func writeKernelLines(j *Journal) {
	for _, l := range kernelLines {
		j.Write(Kernel(l.priority, l.msg))
	}
}

// expectJournalCounts waits until the exporter shows exactly rounds times
// the kernel lines' counts.
func expectJournalCounts(t *testing.T, e *Exporter, rounds float64) {
	t.Helper()
	want := map[string]float64{}
	for _, l := range kernelLines {
		if l.event != "" {
			want[l.event] += rounds
		}
	}
	eventually(t, 30*time.Second, fmt.Sprintf("kernel event counters at %v rounds", rounds), func() error {
		body, err := e.Get("/metrics")
		if err != nil {
			return err
		}
		fams, err := ParseFamilies(body)
		if err != nil {
			return err
		}
		for ev, n := range want {
			got, ok := fams.Value("panther_kernel_events_total", map[string]string{"event": ev})
			if !ok || got != n {
				return fmt.Errorf("panther_kernel_events_total{event=%q} = %v (present %v), want %v", ev, got, ok, n)
			}
		}
		// err or worse: oom, btrfs, io, buffer I/O, hung task (err); soft lockup (emerg); two mce lines (crit).
		for prio, n := range map[string]float64{"err": 5 * rounds, "emerg": rounds, "crit": 2 * rounds} {
			got, _ := fams.Value("panther_journal_entries_total", map[string]string{"unit": "kernel", "priority": prio})
			if got != n {
				return fmt.Errorf("panther_journal_entries_total{unit=kernel,priority=%s} = %v, want %v", prio, got, n)
			}
		}
		if ok, _ := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "journal"}); ok != 1 {
			return fmt.Errorf("journal collector not successful")
		}
		return nil
	})
}

// TestJournalCollector: kernel lines in real journal files drive the
// counters through the real journalctl; a restart of the exporter
// (SIGTERM, SIGKILL without a last save, and across a reboot) while
// entries keep coming neither loses nor counts any twice; the
// KernelIOErrors alert fires in a real Prometheus.
func TestJournalCollector(t *testing.T) {
	serial(t)
	requireRoot(t)
	j := newJournal(t, "nas")
	state := filepath.Join(t.TempDir(), "journal.state")
	e := startRestartableExporter(t, "--collector.disable-defaults", "--collector.journal",
		"--collector.journal.directory="+j.Dir, "--collector.journal.state-file="+state,
		"--collector.journal.state-interval=1s")
	prom := startPrometheus(t, PromConfig{Targets: []string{e.Addr}, RuleFiles: scaledRules(t, t.TempDir())})
	prom.WaitForSeries(t, 60*time.Second, `panther_kernel_events_total{event="io_error"} == 0`)

	// Service errors by unit, at err or worse only.
	for i := 0; i < 3; i++ {
		j.Write(Service("backup.service", 3, "rsync error: error in rsync protocol data stream (code 12)"))
	}
	j.Write(Service("backup.service", 6, "Starting backup"), Service("nginx.service", 2, "connect() to unix:/run/php.sock failed"))
	writeKernelLines(j)
	expectJournalCounts(t, e.Exporter, 1)
	fams := e.Scrape(t)
	for unit, n := range map[string]float64{"backup.service": 3, "nginx.service": 0} {
		if got, _ := fams.Value("panther_journal_entries_total", map[string]string{"unit": unit, "priority": "err"}); got != n {
			t.Errorf("%s err entries = %v, want %v", unit, got, n)
		}
	}
	if got, _ := fams.Value("panther_journal_entries_total", map[string]string{"unit": "nginx.service", "priority": "crit"}); got != 1 {
		t.Errorf("nginx crit entries = %v, want 1", got)
	}

	t.Run("KernelIOErrors fires", func(t *testing.T) {
		eventually(t, 2*time.Minute, "KernelIOErrors firing", func() error {
			a, err := promAlert(prom, "KernelIOErrors", e.Addr)
			if err != nil || a == nil {
				return fmt.Errorf("not firing (%v)", err)
			}
			l, _ := a["labels"].(map[string]any)
			if l["severity"] != "critical" || l["data_loss"] != "true" {
				return fmt.Errorf("labels %v", l)
			}
			return nil
		})
	})

	// Restarts while the journal keeps growing: every round written while
	// the exporter is down is counted once it is back, none twice.
	e.Stop() // SIGTERM: the collector saves its cursor on the way out
	writeKernelLines(j)
	e.Start(t)
	expectJournalCounts(t, e.Exporter, 2)
	writeKernelLines(j)
	expectJournalCounts(t, e.Exporter, 3)
	time.Sleep(2 * time.Second) // let one periodic save (every 1s) happen: not a wait for a condition
	writeKernelLines(j)         // possibly counted after the last save: replayed after the kill
	expectJournalCounts(t, e.Exporter, 4)
	e.Kill(t) // SIGKILL: no last save
	writeKernelLines(j)
	e.Start(t)
	expectJournalCounts(t, e.Exporter, 5)
	// A reboot while the exporter is down: the end of the old boot and the
	// start of the new one are both counted.
	e.Stop()
	writeKernelLines(j)
	j.Reboot()
	writeKernelLines(j)
	e.Start(t)
	expectJournalCounts(t, e.Exporter, 7)
	if out := e.Output(); containsAny(out, "Out of memory", "nvme0n1", "stress-ng") {
		t.Errorf("the exporter's log quotes journal content:\n%s", out)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// journalOutage is how long VictoriaLogs stays down in TestJournalShipping:
// the 10 minutes scaled down to 20 s for CI (the shipper's behaviour
// does not depend on the length, only on having to resume from its cursor);
// PANTHER_JOURNAL_OUTAGE=10m runs the full outage.
func journalOutage(t *testing.T) time.Duration {
	s := os.Getenv("PANTHER_JOURNAL_OUTAGE")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("PANTHER_JOURNAL_OUTAGE=%q: want a positive duration such as 10m", s)
	}
	return d
}

// TestJournalShipping: systemd-journal-upload ships real journal files
// into VictoriaLogs with host, unit and role fields, found by LogsQL over
// HTTP; with VictoriaLogs down for a while and entries written all along,
// every entry arrives once it is back.
func TestJournalShipping(t *testing.T) {
	beside(t) // mostly waits out a VictoriaLogs outage, with parts of its own
	requireRoot(t)
	j := newJournal(t, "nas-e2e")
	v := startVictoriaLogs(t)
	up := startUploader(t, j, v, "server")

	first, last := j.Write(
		Service("backup.service", 3, "rsync error: error in rsync protocol data stream (code 12)"),
		Service("nginx.service", 6, "GET / 200"),
		Kernel(3, "I/O error, dev sda, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0"),
	)
	eventually(t, 60*time.Second, "entries in VictoriaLogs", func() error {
		rows, err := v.Query(`host:="nas-e2e" AND role:="server" AND _SYSTEMD_UNIT:="backup.service" AND "rsync protocol"`)
		if err != nil {
			return err
		}
		if len(rows) != 1 {
			return fmt.Errorf("%d rows for the backup.service error", len(rows))
		}
		r := rows[0]
		if r["_HOSTNAME"] != "nas-e2e" || r["PRIORITY"] != "3" || r["E2E_SEQ"] != strconv.Itoa(first) {
			return fmt.Errorf("row %v", r)
		}
		return nil
	})
	// The three entries can become searchable one after another: wait for
	// all of them, not only for the one above.
	eventually(t, 30*time.Second, "every entry before the outage in VictoriaLogs", func() error {
		if got := seqsIn(t, v, `host:="nas-e2e"`); len(got) != last-first+1 {
			return fmt.Errorf("before the outage: %d entries arrived, want %d", len(got), last-first+1)
		}
		return nil
	})
	kernel, err := v.Query(`host:="nas-e2e" AND _TRANSPORT:="kernel" AND "I/O error, dev sda"`)
	if err != nil || len(kernel) != 1 {
		t.Fatalf("kernel line: %d rows, %v", len(kernel), err)
	}
	// The Grafana Logs dashboard's own LogsQL, with its variables as a
	// link from the Boot dashboard sets them (host, ^unit$), finds the
	// error at priority err and worse, not at crit and worse.
	for prio, want := range map[string]int{"[0-3]": 1, "[0-2]": 0, "[0-7]": 1} {
		rows, err := v.Query(grafana.LogsQuery("nas-e2e", "^backup.service$", "", prio, "rsync protocol"))
		if err != nil || len(rows) != want {
			t.Errorf("Logs dashboard query with priority %s: %d rows (%v), want %d", prio, len(rows), err, want)
		}
	}
	if rows, err := v.Query(grafana.LogsQuery("nas-e2e", "", "", "[0-7]", "")); err != nil || len(rows) != last-first+1 {
		t.Errorf("Logs dashboard query with every filter empty: %d rows (%v), want %d", len(rows), err, last-first+1)
	}

	// The store goes down; the host keeps logging, 10 entries a second.
	v.Stop()
	outFirst := 0
	outLast := 0
	outage := journalOutage(t)
	deadline := time.Now().Add(outage)
	tick := time.NewTicker(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		<-tick.C // the pace of the writer, not a wait for a condition
		f, l := j.Write(Service("app.service", 4, fmt.Sprintf("written during the outage at %s", time.Now().Format(time.RFC3339Nano))))
		if outFirst == 0 {
			outFirst = f
		}
		outLast = l
	}
	tick.Stop()
	written := outLast - outFirst + 1
	t.Logf("VictoriaLogs down for %s; %d entries written meanwhile (E2E_SEQ %d..%d); shipper restarts so far: %d",
		outage, written, outFirst, outLast, up.Restarts())
	v.Start()
	after, afterLast := j.Write(Service("app.service", 6, "after the outage"))
	eventually(t, 2*time.Minute, "every entry written during the outage in VictoriaLogs", func() error {
		got := seqsIn(t, v, `host:="nas-e2e" AND role:="server"`)
		var missing []int
		for s := first; s <= afterLast; s++ {
			if got[s] == 0 {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d entries missing (first missing E2E_SEQ %d); shipper: %s", len(missing), afterLast-first+1, missing[0], up.Output())
		}
		return nil
	})
	// systemd-journal-upload delivers at least once: it saves its cursor
	// after the server acknowledged, so what it had sent when the store
	// went away may be sent again. Only entries from before the outage may
	// be there twice; none of those written during it.
	got := seqsIn(t, v, `host:="nas-e2e"`)
	var dups []int
	for s, n := range got {
		if n > 1 {
			dups = append(dups, s)
			if s >= outFirst {
				t.Errorf("E2E_SEQ %d, written during the outage, stored %d times", s, n)
			}
		}
	}
	sort.Ints(dups)
	t.Logf("after the outage: all %d entries written during it arrived (E2E_SEQ %d..%d), and the one written after (%d); sent again from before the outage: %v; journal holds %d entries",
		written, outFirst, outLast, after, dups, j.Entries(t))
}

// seqsIn counts the entries of a query by their E2E_SEQ.
func seqsIn(t *testing.T, v *VictoriaLogs, q string) map[int]int {
	t.Helper()
	rows, err := v.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, r := range rows {
		n, err := strconv.Atoi(r["E2E_SEQ"])
		if err != nil {
			t.Fatalf("row without E2E_SEQ: %v", r)
		}
		out[n]++
	}
	return out
}
