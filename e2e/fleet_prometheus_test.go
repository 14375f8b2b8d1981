//go:build e2e

package e2e

// Fleet mode on the other engine the fleet issue names, Debian's
// Prometheus 2.42 on both ends: in agent mode on each host (its WAL is the
// on-disk buffer), with the scrape labels nixos/fleet.nix gives vmagent;
// and with the remote-write receiver on the monitoring host, evaluating
// the same rule files (scaled as in TestFleet) over what it receives and
// notifying Debian's Alertmanager with the example routing. The rules and
// the role policy must not care which engine carries the samples:
//
//   - prom-laptop (workstation): its link to the receiver is cut for at
//     least 30 s (until the server's page is out) while its agent keeps
//     scraping; afterwards every scrape its exporter
//     served is in the receiver, counted exactly; nothing reaches anyone.
//   - prom-server: its agent is killed (no staleness marker is sent, as
//     from a host that lost power): ExporterDown (the pushed arm) pages.
//
// The pushing hosts of the NixOS module run vmagent (docs/fleet.md says
// why); this test is the Prometheus half of the choice the issue offers.

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// promAgent is Prometheus in agent mode scraping one target every second
// as instance/role with transport="push", remote-writing to writeURL; its
// WAL (the buffer) lives in a directory of its own, kept across Start.
type promAgent struct {
	*Process
	bin, url string
	args     []string
}

func startPromAgent(t testing.TB, target, instance, role, writeURL string) *promAgent {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: panther
    static_configs:
      - targets: [%q]
        labels: {instance: %q, role: %q, transport: push}
    metric_relabel_configs:
%sremote_write:
  - url: %q
    queue_config: {min_backoff: 100ms, max_backoff: 1s}
`, target, instance, role, notUnderTest, writeURL)
	path := filepath.Join(dir, "agent.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a := &promAgent{bin: requireTool(t, "prometheus"), url: "http://" + addr,
		args: []string{"--enable-feature=agent", "--config.file=" + path,
			"--storage.agent.path=" + filepath.Join(dir, "wal"), "--web.listen-address=" + addr}}
	a.Start(t)
	return a
}

// Start (again) with the same flags and WAL, and wait until it is ready.
func (a *promAgent) Start(t testing.TB) {
	t.Helper()
	a.Process = startProcess(t, nil, a.bin, a.args...)
	waitReady(t, a.Process, "prometheus (agent)", a.url, 60*time.Second)
}

func TestFleetOnPrometheus(t *testing.T) {
	beside(t) // mostly waits (an outage, a page), with parts of its own
	bin := requireTool(t, "prometheus")

	// The receiver: rules on, scrapes nothing itself.
	pd, chat, am := startPagingPath(t)
	rules, err := filepath.Glob(filepath.Join(fleetRules(t), "*.rules.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no scaled rule files: %v", err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(rulesAndAlerting(rules, am)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	central := &Prometheus{
		Process: startProcess(t, nil, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--web.enable-remote-write-receiver"),
		URL: "http://" + addr, Dir: dir,
	}
	waitReady(t, central.Process, "prometheus (receiver)", central.URL, 60*time.Second)
	writeURL := central.URL + "/api/v1/write"

	// The hosts.
	laptop := startExporter(t, "--collector.disable-defaults", "--collector.system")
	scrapes := startCountingScrapes(t, laptop.URL)
	link := startLink(t, addr)
	startPromAgent(t, scrapes.addr, "prom-laptop", "workstation", "http://"+link.addr+"/api/v1/write")
	server := startExporter(t, "--collector.disable-defaults", "--collector.system")
	serverAgent := startPromAgent(t, server.Addr, "prom-server", "server", writeURL)

	central.WaitForSeries(t, 60*time.Second, `count(up{job="panther", transport="push"} == 1) == 2`)
	central.WaitForSeries(t, 30*time.Second, `panther_memory_total_bytes{instance="prom-laptop", role="workstation", transport="push"}`)
	central.WaitRulesEvaluated(t, 30*time.Second, time.Now())
	watcher := watchQuiet(central, am, pd, chat, alertKey{"ExporterDown", "prom-server"})

	// The faults.
	cutAt := time.Now()
	link.Cut()
	serverAgent.Kill()
	t.Logf("link of prom-laptop cut; prom-server's agent killed")

	exp := alertExpect{alert: "ExporterDown", instance: "prom-server", critical: true,
		summary: func() string { return "panther-exporter on prom-server is down" }}
	exp.awaitFiring(t, central, am, pd, chat, 2*time.Minute)

	for time.Since(cutAt) < 30*time.Second {
		time.Sleep(200 * time.Millisecond) // the outage runs on; scrapes accumulate
	}
	if v, err := queryAt(central.URL, `count_over_time(up{instance="prom-laptop"}[25s])`, time.Now()); err != nil || len(v) != 0 {
		t.Errorf("samples of prom-laptop arrived while its link was cut: %v (%v)", v, err)
	}
	restoredAt := time.Now()
	link.Restore()
	t.Logf("link of prom-laptop restored after %s", restoredAt.Sub(cutAt).Round(time.Millisecond))

	served, during := scrapes.AllStored(t, central.URL, "prom-laptop", cutAt, restoredAt)
	outage := restoredAt.Sub(cutAt).Round(time.Second)
	if during < int(outage.Seconds())*2/3 {
		t.Errorf("only %d scrapes during a %s outage at 1 s: the agent did not keep scraping", during, outage)
	}
	t.Logf("prom-laptop: %d scrapes served in all, %d during the %s outage; all in the receiver", served, during, outage)

	// The laptop's backlog arrived; a few more evaluations over it, watched.
	central.WaitRulesEvaluated(t, 30*time.Second, time.Now().Add(5*time.Second))
	for _, v := range watcher.Stop(t) {
		t.Error(v)
	}
	t.Logf("pages: %s", pd.summary())
}
