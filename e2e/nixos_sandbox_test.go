//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

// sandboxRunner runs programs the way the unit runs the exporter, in
// systemd's order: in a mount namespace of their own whose /proc hides other
// users' processes (ProtectProc=invisible: a procfs mounted by root with
// hidepid=invisible), as an unprivileged user with the unit's groups and
// exactly hardening.nix's capabilities (setpriv stands in for DynamicUser
// and SupplementaryGroups), in a user namespace that maps only that user
// (PrivateUsers=yes; systemd also maps root, which changes no access
// check), then under a real seccomp filter made from hardening.nix's
// SystemCallFilter (e2e/seccompexec, installed just before execve as
// systemd does). Unlike the strace checks, the kernel enforces all of it:
// a call outside the filter fails with EPERM.
type sandboxRunner struct {
	setpriv, unshare, seccompexec, table, allowFile string
	caps                                            string
	groups                                          string // setpriv's --groups, or "" for none
	privateUsers                                    bool
	protectProc                                     string
}

func newSandboxRunner(t *testing.T, filter []string) *sandboxRunner {
	t.Helper()
	requireRoot(t)
	h := hardeningNix(t)
	goBin := requireTool(t, "go")
	// Everything the unprivileged user runs or reads (the wrapper, the
	// allowed calls, the syscall table) in a directory it may search: with
	// no capability (hardening.nix) it cannot pass a 0700 t.TempDir() or
	// /root/go.
	dir, err := os.MkdirTemp("", "panther-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &sandboxRunner{setpriv: requireTool(t, "setpriv"), unshare: requireTool(t, "unshare"),
		seccompexec: filepath.Join(dir, "seccompexec"), privateUsers: h.PrivateUsers, protectProc: h.ProtectProc}
	build := exec.Command(goBin, "build", "-o", r.seccompexec, "./seccompexec")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./seccompexec: %v\n%s", err, out)
	}
	sysDir, err := runOutput(nil, goBin, "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys")
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(filepath.Join(strings.TrimSpace(sysDir), "unix", "zsysnum_linux_amd64.go"))
	if err != nil {
		t.Fatal(err)
	}
	r.table = filepath.Join(dir, "zsysnum_linux_amd64.go")
	if err := os.WriteFile(r.table, table, 0o644); err != nil {
		t.Fatal(err)
	}
	if filter == nil {
		filter = h.SystemCallFilter
	}
	var names []string
	for name, ok := range syscallFilter(t, filter) {
		if ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	r.allowFile = filepath.Join(dir, "allowed")
	if err := os.WriteFile(r.allowFile, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var caps []string
	for _, c := range h.AmbientCapabilities {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	r.caps = strings.Join(append([]string{"-all"}, caps...), ",")
	return r
}

// argv returns the command line that runs prog under the sandbox.
func (r *sandboxRunner) argv(prog string, args ...string) []string {
	var argv []string
	if r.protectProc != "" && r.protectProc != "default" {
		argv = append(argv, r.unshare, "--mount", "--propagation", "slave", "--", "sh", "-c",
			`mount -t proc -o hidepid=`+r.protectProc+` proc /proc && exec "$@"`, "sh")
	}
	groups := "--clear-groups"
	if r.groups != "" {
		groups = "--groups=" + r.groups
	}
	argv = append(argv, r.setpriv, "--reuid=65534", "--regid=65534", groups,
		"--inh-caps="+r.caps, "--ambient-caps="+r.caps, "--bounding-set="+r.caps)
	if r.privateUsers {
		argv = append(argv, r.unshare, "--user", "--map-user=65534", "--map-group=65534", "--")
	}
	argv = append(argv, r.seccompexec, "-allow", r.allowFile, "-table", r.table, "--", prog)
	return append(argv, args...)
}

// startSandboxedExporter runs the exporter with the hardware collectors in
// the sandbox and returns its first scrape after every collector ran.
func startSandboxedExporter(t *testing.T, r *sandboxRunner) (*Exporter, Families) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	argv := r.argv(binary(t), "--web.listen-address="+addr, "--log.level=debug", "--collector.disable-defaults",
		"--collector.timex", "--collector.limits", "--collector.hwmon", "--collector.power", "--collector.system")
	e := &Exporter{Process: startProcess(t, nil, argv[0], argv[1:]...), Addr: addr, URL: "http://" + addr}
	var f Families
	eventually(t, 30*time.Second, "the sandboxed exporter answers", func() error {
		if e.Exited() {
			t.Fatalf("exporter exited: %s", e.Output())
		}
		if _, err := e.Get("/metrics"); err != nil {
			return err
		}
		f = e.Scrape(t)
		return nil
	})
	return e, f
}

// TestSandboxRealFilter: under hardening.nix's real seccomp filter and
// capabilities, the hardware collectors work, the clock is read; the
// kernel still refuses to change the clock; and the filter is real: the
// same filter without the adjtimex allowance (what ProtectClock= and a
// filter without @clock do) makes the clock read fail.
func TestSandboxRealFilter(t *testing.T) {
	serial(t)
	adjtimex := requireTool(t, "adjtimex")
	h := hardeningNix(t)

	t.Run("hardening.nix", func(t *testing.T) {
		r := newSandboxRunner(t, nil)
		e, f := startSandboxedExporter(t, r)
		for _, c := range []string{"timex", "limits", "hwmon", "power", "system"} {
			if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": c}); !ok || v != 1 {
				t.Errorf("collector %s fails in the sandbox:\n%s", c, e.Output())
			}
		}
		if _, ok := f.Value("panther_time_synchronized", nil); !ok {
			t.Errorf("no panther_time_synchronized in the sandbox")
		}
		if _, ok := f.Value("panther_filefd_allocated", nil); !ok {
			t.Errorf("no panther_filefd_allocated in the sandbox")
		}

		// A clock change in the same sandbox: adjtimex(2) with modes set
		// passes the filter and the kernel refuses it (no CAP_SYS_TIME).
		// The frequency written is the current one, so nothing would change
		// even if it were allowed.
		cur := regexp.MustCompile(`(?m)^\s*frequency:\s+(-?\d+)$`).FindStringSubmatch(runCmd(t, adjtimex, "--print"))
		if cur == nil {
			t.Fatal("adjtimex --print shows no frequency")
		}
		argv := r.argv(adjtimex, "--frequency", cur[1])
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Operation not permitted") {
			t.Errorf("adjtimex --frequency in the sandbox: %v, %s; want Operation not permitted", err, out)
		}
		// Outside the sandbox the same adjtimex call reads fine: the refusal
		// is the sandbox's.
		if _, err := runOutput(nil, adjtimex, "--print"); err != nil {
			t.Error(err)
		}
	})

	t.Run("without the adjtimex allowance", func(t *testing.T) {
		var filter []string
		for _, f := range h.SystemCallFilter {
			if f != "adjtimex" {
				filter = append(filter, f)
			}
		}
		if len(filter) == len(h.SystemCallFilter) {
			t.Fatalf("hardening.nix's SystemCallFilter %v has no adjtimex entry", h.SystemCallFilter)
		}
		e, f := startSandboxedExporter(t, newSandboxRunner(t, filter))
		if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": "timex"}); !ok || v != 0 {
			t.Errorf("timex works without adjtimex in the filter: the filter is not applied")
		}
		if v, _ := f.Value("panther_scrape_collector_success", map[string]string{"collector": "limits"}); v != 1 {
			t.Errorf("limits collector fails")
		}
		eventually(t, 10*time.Second, "adjtimex refused by the filter", func() error {
			if !strings.Contains(e.Output(), "adjtimex: operation not permitted") {
				return fmt.Errorf("no \"adjtimex: operation not permitted\" in:\n%s", e.Output())
			}
			return nil
		})
	})
}

// minimalSandboxRunner is the runner of hardening.nix, failing if that is
// no longer the least privileged sandbox (no capability, a user namespace,
// hidden processes).
func minimalSandboxRunner(t *testing.T) *sandboxRunner {
	t.Helper()
	r := newSandboxRunner(t, nil)
	if !r.privateUsers || r.protectProc != "invisible" || r.caps != "-all" {
		t.Fatalf("hardening.nix is no longer the sandbox under test: PrivateUsers %v, ProtectProc %q, capabilities %s",
			r.privateUsers, r.protectProc, r.caps)
	}
	return r
}

// TestSandboxMinimal runs the least privileged sandbox (hardening.nix: no
// capability, PrivateUsers, ProtectProc=invisible, the clock allowance)
// with the collectors it is meant for, on a real Btrfs that has a scrub
// status file, a textfile directory only a supplementary group may read
// (as the Podman and journal groups are used) and a D-Bus bus with the fake
// systemd (the boot collector authenticates from inside the user
// namespace): PID 1 is hidden, so
// filesystems come from the service's own mount table; the group still
// opens its files inside the user namespace; the Btrfs parts that need
// privileges are off by flag and nothing asks the kernel for them.
func TestSandboxMinimal(t *testing.T) {
	serial(t)
	r := minimalSandboxRunner(t)
	const gid = 4243
	r.groups = fmt.Sprint(gid)
	// The sandbox is real: PID 1 is hidden, the user namespace maps only
	// the service's user, no capability is left.
	in := func(args ...string) (string, error) {
		argv := r.argv(args[0], args[1:]...)
		return runOutput(nil, argv[0], argv[1:]...)
	}
	cat, grep := requireTool(t, "cat"), requireTool(t, "grep")
	if out, err := in(cat, "/proc/1/mountinfo"); err == nil {
		t.Errorf("PID 1's mount table is readable in the sandbox:\n%.300s", out)
	}
	if out, err := in(cat, "/proc/self/uid_map"); err != nil || strings.Join(strings.Fields(out), " ") != "65534 65534 1" {
		t.Errorf("uid_map in the sandbox: %q, %v", out, err)
	}
	if out, err := in(grep, "^CapEff", "/proc/self/status"); err != nil || !strings.HasSuffix(strings.TrimSpace(out), "0000000000000000") {
		t.Errorf("capabilities in the sandbox: %q, %v", out, err)
	}

	b := newBtrfs(t)
	b.Scrub() // a 0600 root scrub status file the flag keeps the exporter from
	// A mount point the service may search, as /, /home and /nix are.
	if err := os.Chmod(b.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	textfile, err := os.MkdirTemp("", "panther-textfile-") // below /tmp, which everyone may search
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(textfile) })
	WriteTextfile(t, textfile, "group.prom", "# HELP sandbox_job_ok A job ran.\n# TYPE sandbox_job_ok gauge\nsandbox_job_ok 1\n")
	if err := filepath.Walk(textfile, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o640)
		if fi.IsDir() {
			mode = 0o750
		}
		if err := os.Chown(p, 0, gid); err != nil {
			return err
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}

	// The system bus as on a host: a socket everyone may connect to, the
	// boot collector's D-Bus (EXTERNAL auth) from inside the user namespace.
	bus := startDBus(t)
	if err := os.Chmod(bus.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	startFakeSystemd(t, bus, fakesystemd.Server())

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	argv := r.argv(binary(t), "--web.listen-address="+addr, "--log.level=debug", "--collector.disable-defaults",
		"--collector.boot", "--collector.boot.dbus-address="+bus.Address,
		"--collector.system", "--collector.btrfs", "--no-collector.btrfs.subvolumes", "--no-collector.btrfs.scrub-status",
		"--collector.textfile", "--collector.textfile.directory="+textfile, "--collector.timex", "--collector.limits")
	e := &Exporter{Process: startProcess(t, nil, argv[0], argv[1:]...), Addr: addr, URL: "http://" + addr}
	mnt := map[string]string{"mountpoint": b.Mnt}
	var f Families
	eventually(t, 30*time.Second, "the minimal sandbox exports everything it is meant for", func() error {
		if e.Exited() {
			t.Fatalf("exporter exited: %s", e.Output())
		}
		if _, err := e.Get("/metrics"); err != nil {
			return err
		}
		f = e.Scrape(t)
		for _, c := range []string{"boot", "system", "btrfs", "textfile", "timex", "limits"} {
			if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": c}); !ok || v != 1 {
				return fmt.Errorf("collector %s: success %v (present %v)", c, v, ok)
			}
		}
		return nil
	})
	if v, ok := f.Value("panther_filesystem_size_bytes", mnt); !ok || v <= 0 {
		t.Errorf("panther_filesystem_size_bytes%v = %v, %v: the own mount table lacks the Btrfs", mnt, v, ok)
	}
	if v, ok := f.Value("panther_filesystem_readonly", mnt); !ok || v != 0 {
		t.Errorf("panther_filesystem_readonly%v = %v, %v", mnt, v, ok)
	}
	if _, ok := f.Value("panther_btrfs_info", map[string]string{"uuid": b.UUID}); !ok {
		t.Errorf("no panther_btrfs_info for %s", b.UUID)
	}
	for _, m := range []string{"panther_btrfs_subvolume_scan_success", "panther_btrfs_scrub_running"} {
		if _, ok := f.Value(m, map[string]string{"uuid": b.UUID}); ok {
			t.Errorf("%s exported with its flag off", m)
		}
	}
	if v, ok := f.Value("sandbox_job_ok", nil); !ok || v != 1 {
		t.Errorf("sandbox_job_ok = %v, %v: the supplementary group does not open its files in the user namespace:\n%s", v, ok, e.Output())
	}
	if _, ok := f.Value("panther_time_synchronized", nil); !ok {
		t.Error("no panther_time_synchronized")
	}
	if v, ok := f.Value("panther_boot_stage_duration_seconds", map[string]string{"stage": "total"}); !ok || v <= 0 {
		t.Errorf("panther_boot_stage_duration_seconds{stage=\"total\"} = %v, %v over D-Bus from the user namespace", v, ok)
	}
	// Refusals about this test's parts. Other mounts of this shared machine
	// (other tests' Btrfs and Podman mounts below 0700 directories) are
	// refused to a service without CAP_DAC_READ_SEARCH, as documented:
	// those are marked panther_filesystem_device_error 1.
	for _, line := range strings.Split(e.Output(), "\n") {
		if !strings.Contains(line, "operation not permitted") && !strings.Contains(line, "permission denied") {
			continue
		}
		if (strings.Contains(line, "mountpoint=") || strings.Contains(line, "uuid=")) &&
			!strings.Contains(line, b.Mnt) && !strings.Contains(line, b.UUID) {
			continue
		}
		t.Errorf("a refusal in the minimal sandbox: %s", line)
	}
}

// TestSandboxJournal runs the journal collector in the least privileged
// sandbox (hardening.nix: the module's filter, no capability, a user
// namespace, hidden processes; the journal collector adds no privilege)
// against real journal files written by systemd-journal-remote. journalctl
// is the exporter's child: it inherits the seccomp filter, the user
// namespace and the hidden /proc, and must exec, watch the directory
// (inotify) and map the journal files under them. The files are readable
// only through a supplementary group, as the module's SupplementaryGroups
// systemd-journal reads /var/log/journal; the cursor is kept in a directory
// of the service's own user, as StateDirectory= gives it.
func TestSandboxJournal(t *testing.T) {
	serial(t)
	r := minimalSandboxRunner(t)
	journalctl := requireTool(t, "journalctl")
	const gid = 4244 // stands in for systemd-journal
	r.groups = fmt.Sprint(gid)

	// journald keeps /var/log/journal/MACHINE-ID root:systemd-journal with
	// the set-group-ID bit and its files 0640; here the directory is 2750
	// too, so that even listing it takes the group. Its parent may be
	// searched by everyone, as /var/log.
	base, err := os.MkdirTemp("", "panther-journal-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "journal")
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	j := newJournalIn(t, "sandboxed", dir)
	// History from before the exporter's first start: never counted.
	j.Write(Service("old.service", 3, "before the exporter started"))
	eventually(t, 10*time.Second, "the journal file is written", func() error {
		if n := j.Entries(t); n != 1 {
			return fmt.Errorf("%d entries", n)
		}
		return nil
	})
	fi, err := os.Stat(filepath.Join(dir, "system.journal"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != gid || fi.Mode().Perm() != 0o640 {
		t.Fatalf("system.journal is %d:%d %v, want 0:%d 0640 (only the group may read it)", st.Uid, st.Gid, fi.Mode().Perm(), gid)
	}
	// The group is what opens the journal: journalctl in the sandbox reads
	// the entry with it and nothing without it.
	read := func(r *sandboxRunner) (string, error) {
		argv := r.argv(journalctl, "--directory="+dir, "--output=cat", "--output-fields=E2E_SEQ")
		return runOutput(nil, argv[0], argv[1:]...)
	}
	if out, err := read(r); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("journalctl in the sandbox with the group: %q, %v", out, err)
	}
	noGroup := *r
	noGroup.groups = ""
	if out, err := read(&noGroup); err == nil && strings.Contains(out, "1") {
		t.Fatalf("journalctl in the sandbox reads the journal without the group: %q", out)
	}

	stateDir, err := os.MkdirTemp("", "panther-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stateDir) })
	if err := os.Chown(stateDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(stateDir, "journal.state")

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	argv := r.argv(binary(t), "--web.listen-address="+addr, "--log.level=debug", "--collector.disable-defaults",
		"--collector.journal", "--collector.journal.journalctl="+journalctl, "--collector.journal.directory="+dir,
		"--collector.journal.state-file="+state, "--collector.journal.state-interval=1s")
	e := &Exporter{Process: startProcess(t, nil, argv[0], argv[1:]...), Addr: addr, URL: "http://" + addr}
	eventually(t, 30*time.Second, "the sandboxed journal reader runs", func() error {
		if e.Exited() {
			t.Fatalf("exporter exited: %s", e.Output())
		}
		if _, err := e.Get("/metrics"); err != nil {
			return err
		}
		f := e.Scrape(t)
		if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": "journal"}); !ok || v != 1 {
			return fmt.Errorf("journal collector success %v (present %v)", v, ok)
		}
		if v, _ := f.Value("panther_journal_reader_up", nil); v != 1 {
			return fmt.Errorf("panther_journal_reader_up %v", v)
		}
		return nil
	})

	// Each round: 3 err and 1 info of backup.service, 1 crit and 2 warning
	// of nginx.service, and the kernel lines of journal_test.go.
	writeRound := func() {
		for i := 0; i < 3; i++ {
			j.Write(Service("backup.service", 3, "rsync error: error in rsync protocol data stream (code 12)"))
		}
		j.Write(Service("backup.service", 6, "Starting backup"), Service("nginx.service", 2, "connect() to unix:/run/php.sock failed"),
			Service("nginx.service", 4, "upstream response is buffered"), Service("nginx.service", 4, "upstream response is buffered"))
		writeKernelLines(j)
	}
	perRound := 7 + len(kernelLines)
	expect := func(rounds float64) {
		t.Helper()
		entries := map[string]float64{"backup.service/err": 3 * rounds, "nginx.service/crit": rounds,
			"kernel/err": 5 * rounds, "kernel/emerg": rounds, "kernel/crit": 2 * rounds}
		events := map[string]float64{}
		for _, l := range kernelLines {
			if l.event != "" {
				events[l.event] += rounds
			}
		}
		eventually(t, 30*time.Second, fmt.Sprintf("journal counters at %v rounds", rounds), func() error {
			if e.Exited() {
				t.Fatalf("exporter exited: %s", e.Output())
			}
			f := e.Scrape(t)
			if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": "journal"}); !ok || v != 1 {
				return fmt.Errorf("journal collector success %v (present %v)", v, ok)
			}
			if v, _ := f.Value("panther_journal_read_entries_total", nil); v != float64(perRound)*rounds {
				return fmt.Errorf("panther_journal_read_entries_total = %v, want %v", v, float64(perRound)*rounds)
			}
			got := map[string]float64{}
			for _, m := range f.Series("panther_journal_entries_total", nil) {
				if v := metricValue(m); v != 0 {
					l := Labels(m)
					got[l["unit"]+"/"+l["priority"]] = v
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(entries) {
				return fmt.Errorf("panther_journal_entries_total (unit/priority) = %v, want %v", got, entries)
			}
			for ev, n := range events {
				if v, ok := f.Value("panther_kernel_events_total", map[string]string{"event": ev}); !ok || v != n {
					return fmt.Errorf("panther_kernel_events_total{event=%q} = %v (present %v), want %v", ev, v, ok, n)
				}
			}
			return nil
		})
	}
	writeRound()
	expect(1)
	writeRound()
	expect(2)

	// The cursor was saved where the service may write (every 1s).
	eventually(t, 10*time.Second, "the journal state is saved", func() error {
		_, err := os.Stat(state)
		return err
	})
	// No refusal: not the filter (EPERM), not file access, and journalctl
	// never stopped.
	for _, bad := range []string{"operation not permitted", "permission denied", "journal reader stopped", "state not"} {
		if strings.Contains(strings.ToLower(e.Output()), bad) {
			t.Errorf("%q in the sandboxed exporter's log:\n%s", bad, e.Output())
		}
	}
}
