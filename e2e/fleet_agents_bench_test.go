//go:build e2e

package e2e

// The two agents the fleet design could run on a host (docs/fleet.md),
// side by side in one run: Debian's vmagent (what nixos/fleet.nix runs)
// and Debian's Prometheus in agent mode. Each scrapes its own real
// exporter every second through a counting proxy and pushes to one
// Debian victoria-metrics over a link of its own. Both links are cut for
// 40 s; 20 s into the cut both agents are restarted on their buffer
// directories (SIGTERM, then started again: a laptop rebooting on the
// train). Reported: the share of the scrapes served during the outage,
// and over the whole run, that reached the store.
//
//	make build && PANTHER_EXPORTER_BIN=$PWD/bin/panther-exporter \
//	  go test -tags=$(cat exporter/build-tags),e2e -run '^$' -bench AgentRestart -benchtime 1x ./e2e/
//
// A scenario of about 100 s, not a loop: b.N is not used.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restartableAgent is one agent under test: how to restart it, and the
// proxy that counts what its exporter served and the link it sends over.
type restartableAgent struct {
	name    string
	scrapes *countingScrapes
	link    *cuttableLink
	stop    func()
	start   func(testing.TB)
}

func BenchmarkAgentRestartDuringOutage(b *testing.B) {
	store := startVMApp(b, "victoria-metrics", "-storageDataPath="+b.TempDir(), "-retentionPeriod=1d",
		"-search.latencyOffset=1s")
	storeAddr := strings.TrimPrefix(store.URL, "http://")

	newAgent := func(name string) *restartableAgent {
		e := startExporter(b, "--collector.disable-defaults", "--collector.system")
		return &restartableAgent{name: name, scrapes: startCountingScrapes(b, e.URL), link: startLink(b, storeAddr)}
	}
	vm := newAgent("vmagent")
	dir := b.TempDir()
	cfg := filepath.Join(dir, "scrape.yml")
	y := fmt.Sprintf("scrape_configs:\n  - job_name: panther\n    scrape_interval: 1s\n    static_configs:\n      - targets: [%q]\n        labels: {instance: %q, role: workstation, transport: push}\n",
		vm.scrapes.addr, vm.name)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		b.Fatal(err)
	}
	vma := startVMApp(b, "vmagent", "-promscrape.config="+cfg, "-remoteWrite.url=http://"+vm.link.addr+"/api/v1/write",
		"-remoteWrite.tmpDataPath="+filepath.Join(dir, "buffer"), "-remoteWrite.maxDiskUsagePerURL=64MB")
	vm.stop, vm.start = func() { vma.Stop() }, vma.Start

	pr := newAgent("prometheus-agent")
	pa := startPromAgent(b, pr.scrapes.addr, pr.name, "workstation", "http://"+pr.link.addr+"/api/v1/write")
	pr.stop, pr.start = func() { pa.Stop() }, pa.Start

	agents := []*restartableAgent{vm, pr}
	storeQ := &Prometheus{URL: store.URL}
	for _, a := range agents {
		storeQ.WaitForSeries(b, 60*time.Second, fmt.Sprintf(`up{instance=%q} == 1`, a.name))
	}
	time.Sleep(5 * time.Second) // some scrapes before the cut

	b.ResetTimer()
	cutAt := time.Now()
	for _, a := range agents {
		a.link.Cut()
	}
	time.Sleep(20 * time.Second) // the outage runs on; scrapes accumulate
	for _, a := range agents {
		a.stop()
		a.start(b)
	}
	time.Sleep(20 * time.Second)
	restoredAt := time.Now()
	for _, a := range agents {
		a.link.Restore()
	}
	time.Sleep(30 * time.Second) // time to send the backlog
	for _, a := range agents {
		a.scrapes.Fail()
	}
	time.Sleep(5 * time.Second) // the last successful scrapes sent
	b.StopTimer()

	for _, a := range agents {
		served := a.scrapes.Served()
		during := 0
		for _, s := range served {
			if s.After(cutAt) && s.Before(restoredAt) {
				during++
			}
		}
		count := func(window time.Duration, at time.Time) float64 {
			v, err := queryAt(store.URL, fmt.Sprintf(`sum_over_time(up{instance=%q}[%dms])`, a.name, window.Milliseconds()), at)
			if err != nil || len(v) != 1 {
				return 0
			}
			return float64(v[0].Value)
		}
		inOutage := count(restoredAt.Sub(cutAt), restoredAt)
		all := count(time.Since(served[0])+5*time.Second, time.Now())
		b.ReportMetric(100*inOutage/float64(during), a.name+"_outage_stored_%")
		b.ReportMetric(100*all/float64(len(served)), a.name+"_all_stored_%")
		b.Logf("%s: %d scrapes served during the %s outage, %.0f in the store; %d served in all, %.0f in the store",
			a.name, during, restoredAt.Sub(cutAt).Round(time.Second), inOutage, len(served), all)
	}
}
