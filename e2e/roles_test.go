//go:build e2e

package e2e

// The alert policy by role on the real stack (docs/runbooks.md#alert-policy-by-role):
// the rules of rules/prometheus (their `for:` scaled as in the alert e2e),
// the Alertmanager example, the fake PagerDuty, in a scrape job not named
// "panther". Three hosts: a server running the exporter's defaults on a
// host without Podman, which must raise no alert at all for longer than
// the longest scaled `for:`; a workstation whose exporter goes away, which
// must reach nobody; a server whose exporter goes away, which must page,
// then resolve.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// longestFor is the longest `for:` of the rules, scaled as scaledRules does.
func longestFor(t *testing.T) time.Duration {
	t.Helper()
	files, err := filepath.Glob("../rules/prometheus/*.rules.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	forLine := regexp.MustCompile(`(?m)^\s+for:\s*(\S+)\s*$`)
	var longest time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range forLine.FindAllStringSubmatch(string(b), -1) {
			d, err := model.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("%s: for %q: %v", f, m[1], err)
			}
			if s := time.Duration(d) / forScale; s > longest {
				longest = s
			}
		}
	}
	return longest
}

func TestAlertRolesEndToEnd(t *testing.T) {
	beside(t)
	requireRoot(t)
	requireTool(t, "promtool")

	// The host without Podman runs the defaults: no --collector.podman.socket
	// and the built-in default socket absent. A Podman service someone runs
	// there on this machine would make it a host with Podman.
	const defaultSocket = "/run/podman/podman.sock"
	if _, err := os.Stat(defaultSocket); err == nil {
		t.Fatalf("%s exists on this machine: the test needs a host without Podman", defaultSocket)
	}
	// Its systemd is the fake manager of the boot tests (PID 1 is not
	// systemd here); the only flag besides the listen address is that bus.
	bus := startDBus(t)
	startFakeSystemd(t, bus, healthyServerSeed())
	noPodman := startExporter(t, "--collector.boot.dbus-address="+bus.Address)
	page, err := noPodman.Get("/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "no Podman found") {
		t.Errorf("landing page of a host without Podman does not say no Podman was found:\n%s", page)
	}

	workstation := startRestartableExporter(t, "--collector.disable-defaults", "--collector.system")
	server := startRestartableExporter(t, "--collector.disable-defaults", "--collector.system")

	pd, chat, am := startPagingPath(t)
	const job = "pantheros-fleet" // not "panther": the rules must not care
	targets := []alertTarget{{noPodman.Addr, "server"}, {workstation.Addr, "workstation"}, {server.Addr, "server"}}
	prom := startAlertPrometheus(t, job, targets, scaledRules(t, t.TempDir()), am, "no-btrfs-here", notUnderTest)

	for _, q := range []string{
		fmt.Sprintf(`count(up{job=%q} == 1) == 3`, job),
		fmt.Sprintf(`panther_scrape_collector_success{instance=%q, collector="podman"} == 1`, noPodman.Addr),
		fmt.Sprintf(`panther_scrape_collector_success{instance=%q, collector="boot"} == 1`, noPodman.Addr),
		fmt.Sprintf(`up{instance=%q, role="workstation"} == 1`, workstation.Addr),
	} {
		prom.WaitForSeries(t, 60*time.Second, q)
	}
	if v, err := prom.Query(fmt.Sprintf(`panther_podman_up{instance=%q}`, noPodman.Addr)); err != nil || len(v) != 0 {
		t.Errorf("host without Podman: panther_podman_up = %v (%v), want no series", v, err)
	}
	prom.WaitRulesEvaluated(t, 30*time.Second, time.Now())

	// Both other hosts go away now. For longer than the longest scaled
	// `for:`, nothing but the server's ExporterDown may exist anywhere.
	watch := longestFor(t) + 30*time.Second
	t.Logf("watching for %s (longest scaled for: %s)", watch, longestFor(t))
	workstation.Kill(t)
	server.Kill(t)
	start := time.Now()
	watcher := watchQuiet(prom, am, pd, chat, alertKey{"ExporterDown", server.Addr})

	// The server pages, comes back, and the page resolves.
	exp := alertExpect{alert: "ExporterDown", instance: server.Addr, critical: true,
		summary: func() string { return "panther-exporter on " + server.Addr + " is down" }}
	exp.awaitFiring(t, prom, am, pd, chat, 2*time.Minute)
	server.Start(t)
	exp.awaitResolved(t, am, pd, 7*time.Minute)

	if rest := watch - time.Since(start); rest > 0 {
		t.Logf("server page resolved; watching %s more", rest.Round(time.Second))
		time.Sleep(rest) // the rest of the window the watcher samples
	}
	for _, v := range watcher.Stop(t) {
		t.Error(v)
	}
	// The workstation that went away reached nobody: no page, no chat
	// message, no alert of it in Alertmanager (checked throughout above).
	for _, ev := range pd.Events() {
		if ev.Payload != nil && ev.Payload.Source == workstation.Addr {
			t.Errorf("the workstation that went away paged: %q", ev.Payload.Summary)
		}
	}
	t.Logf("%s without Podman: no alert for %s; workstation gone: nothing; server gone: paged and resolved (%s)",
		noPodman.Addr, time.Since(start).Round(time.Second), pd.summary())
}
