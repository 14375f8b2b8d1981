package nixos

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// syscallSet expands systemd-analyze's named system call sets (nested
// @groups included).
func syscallSet(t *testing.T, sa string, group string, seen map[string]bool) map[string]bool {
	t.Helper()
	out := output(t, exec.Command(sa, "syscall-filter", "--no-pager", group))
	set := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.TrimSpace(line)
		switch {
		case f == "" || f == group || strings.HasPrefix(f, "#"):
		case strings.HasPrefix(f, "@"):
			if !seen[f] {
				seen[f] = true
				for s := range syscallSet(t, sa, f, seen) {
					set[s] = true
				}
			}
		default:
			set[f] = true
		}
	}
	return set
}

// TestSyscallsAllowed runs the exporter under strace, scrapes it, and
// checks every system call it made against hardening.nix's SystemCallFilter
// and every socket it opened against RestrictAddressFamilies, as systemd
// would apply them. It runs as whoever runs the tests, with the collectors
// that are on by default; the service runs them as a dynamic user.
func TestSyscallsAllowed(t *testing.T) {
	strace := tool(t, "strace")
	sa := tool(t, "systemd-analyze")
	nixInstantiate := tool(t, "nix-instantiate")
	bin := binary(t)

	out := output(t, exec.Command(nixInstantiate, "--eval", "--strict", "--json", "hardening.nix"))
	var h struct {
		SystemCallFilter        []string
		RestrictAddressFamilies []string
	}
	if err := json.Unmarshal(out, &h); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, f := range h.SystemCallFilter {
		deny := strings.HasPrefix(f, "~")
		f = strings.TrimPrefix(f, "~")
		set := map[string]bool{f: true}
		if strings.HasPrefix(f, "@") {
			set = syscallSet(t, sa, f, map[string]bool{f: true})
		}
		for s := range set {
			allowed[s] = !deny
		}
	}
	if len(allowed) < 100 {
		t.Fatalf("only %d system calls in the filter; systemd-analyze syscall-filter output not understood", len(allowed))
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	trace := filepath.Join(t.TempDir(), "strace.out")
	cmd := exec.Command(strace, "-f", "-qq", "-o", trace, bin, "--web.listen-address="+addr, "--log.level=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // closed when strace (and so the exporter) has exited
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	scrapes := 0
	for deadline := time.Now().Add(30 * time.Second); scrapes < 3 && time.Now().Before(deadline); {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(body), "panther_exporter_build_info") {
			scrapes++
		}
	}
	if scrapes < 3 {
		t.Fatal("the exporter under strace did not answer 3 scrapes in 30s")
	}
	if resp, err := http.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
	}
	// SIGTERM to the exporter (the first pid of the trace; strace itself
	// does not forward it): the shutdown path is traced too.
	first := regexp.MustCompile(`^(\d+)\s`).FindStringSubmatch(readTrace(t, trace))
	if first == nil {
		t.Fatal("strace wrote no pid")
	}
	pid, _ := strconv.Atoi(first[1])
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the exporter did not stop on SIGTERM")
	}
	data := readTrace(t, trace)

	calls := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\d+\s+([a-z_0-9]+)\(`).FindAllStringSubmatch(data, -1) {
		calls[m[1]] = true
	}
	if !calls["execve"] || !calls["accept4"] {
		t.Fatalf("strace output not understood (no execve/accept4):\n%.2000s", data)
	}
	var denied []string
	for c := range calls {
		if c != "execve" && !allowed[c] { // systemd installs the filter before execve
			denied = append(denied, c)
		}
	}
	sort.Strings(denied)
	if len(denied) > 0 {
		t.Errorf("system calls outside SystemCallFilter %v: %v", h.SystemCallFilter, denied)
	}
	families := map[string]bool{}
	for _, f := range h.RestrictAddressFamilies {
		families[f] = true
	}
	for _, m := range regexp.MustCompile(`socket\((AF_[A-Z0-9]+)`).FindAllStringSubmatch(data, -1) {
		if !families[m[1]] {
			t.Errorf("socket family %s outside RestrictAddressFamilies %v", m[1], h.RestrictAddressFamilies)
		}
	}
	t.Logf("%d distinct system calls: %s", len(calls), fmt.Sprint(sortedKeys(calls)))
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readTrace(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
