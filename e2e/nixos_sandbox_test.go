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
	"testing"
	"time"
)

// sandboxRunner runs programs the way the unit runs the exporter: as an
// unprivileged user with exactly hardening.nix's capabilities (setpriv
// stands in for DynamicUser), then under a real seccomp filter made from
// hardening.nix's SystemCallFilter (e2e/seccompexec, installed just before
// execve as systemd does). Unlike the strace checks, the kernel enforces
// the filter here: a call outside it fails with EPERM.
type sandboxRunner struct {
	setpriv, seccompexec, table, allowFile string
	caps                                   string
}

func newSandboxRunner(t *testing.T, filter []string) *sandboxRunner {
	t.Helper()
	requireRoot(t)
	h := hardeningNix(t)
	goBin := requireTool(t, "go")
	dir := t.TempDir()
	r := &sandboxRunner{setpriv: requireTool(t, "setpriv"), seccompexec: filepath.Join(dir, "seccompexec")}
	build := exec.Command(goBin, "build", "-o", r.seccompexec, "./seccompexec")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./seccompexec: %v\n%s", err, out)
	}
	sysDir, err := runOutput(nil, goBin, "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys")
	if err != nil {
		t.Fatal(err)
	}
	r.table = filepath.Join(strings.TrimSpace(sysDir), "unix", "zsysnum_linux_amd64.go")
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
	return append([]string{r.setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=" + r.caps, "--ambient-caps=" + r.caps, "--bounding-set=" + r.caps,
		r.seccompexec, "-allow", r.allowFile, "-table", r.table, "--", prog}, args...)
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
