package nixos

// Fleet mode (fleet.nix, docs/fleet.md): the options render the vmagent
// and vmalert units they should, Debian's vmagent and vmalert accept the
// rendered flags and files, pull stays the default, and bad combinations
// fail with an assertion naming the option (assertions_test.go).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type fleetEval struct {
	Fleet struct {
		Vmagent         *unit
		ScrapeConfig    *string
		Vmalert         *unit
		Victoriametrics map[string]any
		Firewall        []int
	}
	Prometheus struct {
		RuleFiles     []string
		RemoteWrite   []map[string]string
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Labels map[string]string `json:"labels"`
			} `json:"static_configs"`
		}
	}
	Datasources []map[string]any
	Failed      []string
}

type unit struct {
	ServiceConfig struct {
		ExecStart      execLine
		LoadCredential []string
		StateDirectory string
		DynamicUser    bool
	}
}

func evalFleet(t *testing.T, exporter, monitoring string) fleetEval {
	t.Helper()
	out := evalNix(t, "--arg", "exporter", exporter, "--arg", "monitoring", monitoring, "--arg", "podman", "false")
	var e fleetEval
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return e
}

// runDry runs a VictoriaMetrics program with argv (the store path of the
// program replaced by Debian's) and -dryRun, which parses every flag and
// checks the files they name; it fails the test on a non-zero exit.
func runDry(t *testing.T, prog string, argv []string) {
	t.Helper()
	bin := tool(t, prog)
	cmd := exec.Command(bin, append(slices.Clone(argv[1:]), "-dryRun")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		// Shown, not parsed.
		t.Errorf("%s with the module's flags: %v\n%s", prog, err, out)
	}
}

// vmagentDryRun runs runDry on a vmagent argv with its scrape config
// written to a temporary file and its buffer in a temporary directory (the
// paths the unit names exist only on the host).
func vmagentDryRun(t *testing.T, argv []string, scrapeConfig string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scrape.yml")
	if err := os.WriteFile(cfg, []byte(scrapeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	run := slices.Clone(argv)
	for i, a := range run {
		switch {
		case strings.HasPrefix(a, "-promscrape.config="):
			run[i] = "-promscrape.config=" + cfg
		case strings.HasPrefix(a, "-remoteWrite.tmpDataPath="):
			run[i] = "-remoteWrite.tmpDataPath=" + filepath.Join(dir, "buffer")
		}
	}
	runDry(t, "vmagent", run)
}

// bytesPerKSample is fleet.nix's measured figure (docs/fleet.md#buffer-size
// states it with the command that measured it).
func bytesPerKSample(t *testing.T) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  bytesPerKSample = ([0-9]+);$`).FindStringSubmatch(read(t, "fleet.nix"))
	if m == nil {
		t.Fatal("fleet.nix: no bytesPerKSample = N;")
	}
	n, _ := strconv.Atoi(m[1])
	doc := read(t, "../docs/fleet.md")
	if fig := fmt.Sprintf("%.1f bytes per sample", float64(n)/1000); !strings.Contains(doc, fig) {
		t.Errorf("docs/fleet.md does not state the figure fleet.nix uses (%q)", fig)
	}
	return n
}

func TestFleetPushEval(t *testing.T) {
	bytesPerKSample := bytesPerKSample(t)
	const url = "http://mon.lan:8428/api/v1/write"
	// A workstation: a week of buffer, scraped every minute.
	e := evalFleet(t, fmt.Sprintf(`{ enable = true; role = "workstation"; push = { enable = true; url = %q; }; }`, url), `{ enable = false; }`)
	if len(e.Failed) != 0 {
		t.Fatalf("valid push configuration: failed assertions %q", e.Failed)
	}
	if e.Fleet.Vmagent == nil || e.Fleet.ScrapeConfig == nil {
		t.Fatalf("push.enable: no panther-vmagent unit or scrape config")
	}
	argv := e.Fleet.Vmagent.ServiceConfig.ExecStart
	// (2000 series + vmagent's 5) x 7 days / 60 s x the measured bytes per sample.
	wantBytes := (2000 + 5) * (7 * 86400 / 60) * bytesPerKSample / 1000
	want := []string{
		"-promscrape.config=/etc/panther-vmagent/scrape.yml",
		"-remoteWrite.url=" + url,
		"-remoteWrite.tmpDataPath=/var/lib/panther-vmagent/buffer",
		fmt.Sprintf("-remoteWrite.maxDiskUsagePerURL=%d", wantBytes),
		"-httpListenAddr=127.0.0.1:8429",
	}
	if len(argv) < 1 || !strings.HasSuffix(argv[0], "/bin/vmagent") || !reflect.DeepEqual([]string(argv[1:]), want) {
		t.Errorf("vmagent argv\n%q\nwant\n%q", argv, want)
	}
	if sc := e.Fleet.Vmagent.ServiceConfig; sc.StateDirectory != "panther-vmagent" || !sc.DynamicUser {
		t.Errorf("the buffer must live in the unit's StateDirectory (kept across reboots): %+v", sc)
	}
	// The same job name and target labels as pull gives, and transport="push".
	var sc struct {
		ScrapeConfigs []struct {
			JobName        string `json:"job_name"`
			ScrapeInterval string `json:"scrape_interval"`
			StaticConfigs  []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := json.Unmarshal([]byte(*e.Fleet.ScrapeConfig), &sc); err != nil {
		t.Fatal(err)
	}
	if len(sc.ScrapeConfigs) != 1 || sc.ScrapeConfigs[0].JobName != "panther" || sc.ScrapeConfigs[0].ScrapeInterval != "60s" ||
		len(sc.ScrapeConfigs[0].StaticConfigs) != 1 ||
		!reflect.DeepEqual(sc.ScrapeConfigs[0].StaticConfigs[0].Targets, []string{"127.0.0.1:9567"}) ||
		!reflect.DeepEqual(sc.ScrapeConfigs[0].StaticConfigs[0].Labels, map[string]string{"instance": "nas", "role": "workstation", "transport": "push"}) {
		t.Errorf("scrape config %s", *e.Fleet.ScrapeConfig)
	}
	// Debian's vmagent takes the flags and the scrape config.
	vmagentDryRun(t, argv, *e.Fleet.ScrapeConfig)

	// A server: a day of buffer, every 15 s; basic auth through a
	// credential; the exporter on one address.
	e = evalFleet(t, fmt.Sprintf(`{ enable = true; role = "server"; listenAddress = "10.0.0.5"; port = 9100;
		push = { enable = true; url = %q; instance = "hetzner-vps"; basicAuth = { username = "agent"; passwordFile = "/run/secrets/rw"; }; }; }`, url), `{ enable = false; }`)
	if len(e.Failed) != 0 {
		t.Fatalf("failed assertions %q", e.Failed)
	}
	argv = e.Fleet.Vmagent.ServiceConfig.ExecStart
	wantBytes = (2000 + 5) * (86400 / 15) * bytesPerKSample / 1000
	for _, f := range []string{
		fmt.Sprintf("-remoteWrite.maxDiskUsagePerURL=%d", wantBytes),
		"-remoteWrite.basicAuth.username=agent",
		"-remoteWrite.basicAuth.passwordFile=/run/credentials/panther-vmagent.service/remote-write-password",
	} {
		if !slices.Contains(argv, f) {
			t.Errorf("vmagent argv %q lacks %s", argv, f)
		}
	}
	if !reflect.DeepEqual(e.Fleet.Vmagent.ServiceConfig.LoadCredential, []string{"remote-write-password:/run/secrets/rw"}) {
		t.Errorf("LoadCredential %q", e.Fleet.Vmagent.ServiceConfig.LoadCredential)
	}
	if !strings.Contains(*e.Fleet.ScrapeConfig, `"targets":["10.0.0.5:9100"]`) || !strings.Contains(*e.Fleet.ScrapeConfig, `"instance":"hetzner-vps","role":"server","transport":"push"`) {
		t.Errorf("scrape config %s", *e.Fleet.ScrapeConfig)
	}
	// An explicit cap wins over the computed one.
	e = evalFleet(t, fmt.Sprintf(`{ enable = true; push = { enable = true; url = %q; maxDiskUsage = 1000000000; }; }`, url), `{ enable = false; }`)
	if !slices.Contains(e.Fleet.Vmagent.ServiceConfig.ExecStart, "-remoteWrite.maxDiskUsagePerURL=1000000000") {
		t.Errorf("maxDiskUsage = 1e9: argv %q", e.Fleet.Vmagent.ServiceConfig.ExecStart)
	}
}

// Without push anywhere nothing of fleet mode appears: no vmagent, no
// VictoriaMetrics, no vmalert; Prometheus evaluates the rules itself.
func TestFleetPullStaysDefault(t *testing.T) {
	e := evalFleet(t, `{ enable = true; }`, `{ enable = true; hosts.a = { address = "a:9567"; role = "server"; }; pagerduty.routingKeyFile = "/run/secrets/k"; }`)
	if e.Fleet.Vmagent != nil || e.Fleet.Vmalert != nil || e.Fleet.Victoriametrics != nil || len(e.Prometheus.RemoteWrite) != 0 {
		t.Errorf("pull only: fleet parts configured: %+v, remoteWrite %v", e.Fleet, e.Prometheus.RemoteWrite)
	}
	if len(e.Prometheus.RuleFiles) == 0 {
		t.Error("pull only: Prometheus has no rule files")
	}
	if len(e.Datasources) != 1 || e.Datasources[0]["url"] != "http://127.0.0.1:9090" {
		t.Errorf("pull only: Grafana data sources %v", e.Datasources)
	}
	if len(e.Failed) != 0 {
		t.Errorf("failed assertions %q", e.Failed)
	}
}

func TestFleetMonitoringEval(t *testing.T) {
	// One host pushes: VictoriaMetrics here, Prometheus writes the pulled
	// host there and evaluates nothing, vmalert evaluates every rule file.
	e := evalFleet(t, `{ enable = true; }`, `{ enable = true; openFirewall = true; pagerduty.routingKeyFile = "/run/secrets/k";
		hosts = { a = { address = "a:9567"; role = "server"; }; yoga = { push = true; role = "workstation"; }; }; }`)
	if len(e.Failed) != 0 {
		t.Fatalf("failed assertions %q", e.Failed)
	}
	if e.Fleet.Victoriametrics["enable"] != true || e.Fleet.Victoriametrics["listenAddress"] != ":8428" {
		t.Errorf("services.victoriametrics %v", e.Fleet.Victoriametrics)
	}
	// (The firewall is the host's one list: Prometheus' 9090, Alertmanager's
	// 9093, Grafana's 3000 with openFirewall, and the store's port.)
	if !slices.Contains(e.Fleet.Firewall, 8428) {
		t.Errorf("firewall %v: the agents write to 8428", e.Fleet.Firewall)
	}
	if len(e.Prometheus.RuleFiles) != 0 {
		t.Errorf("Prometheus still evaluates %v: every alert would be raised twice", e.Prometheus.RuleFiles)
	}
	if !reflect.DeepEqual(e.Prometheus.RemoteWrite, []map[string]string{{"url": "http://127.0.0.1:8428/api/v1/write"}}) {
		t.Errorf("Prometheus remoteWrite %v", e.Prometheus.RemoteWrite)
	}
	var scraped []string
	for _, sc := range e.Prometheus.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			scraped = append(scraped, s.Labels["instance"])
		}
	}
	if !reflect.DeepEqual(scraped, []string{"a"}) {
		t.Errorf("Prometheus scrapes %v, want only the pull host a", scraped)
	}
	if len(e.Datasources) != 1 || e.Datasources[0]["url"] != "http://127.0.0.1:8428" {
		t.Errorf("Grafana data sources %v: want the store", e.Datasources)
	}
	if e.Fleet.Vmalert == nil {
		t.Fatal("no panther-vmalert unit")
	}
	argv := e.Fleet.Vmalert.ServiceConfig.ExecStart
	onDisk, _ := filepath.Glob("../rules/prometheus/*.rules.yml")
	var rules []string
	for _, a := range argv {
		if r, ok := strings.CutPrefix(a, "-rule="); ok {
			rules = append(rules, filepath.Base(r))
		}
	}
	var wantRules []string
	for _, f := range onDisk {
		wantRules = append(wantRules, filepath.Base(f))
	}
	slices.Sort(rules)
	if len(wantRules) == 0 || !reflect.DeepEqual(rules, wantRules) {
		t.Errorf("vmalert rules %v, want %v", rules, wantRules)
	}
	for _, f := range []string{"-datasource.url=http://127.0.0.1:8428", "-notifier.url=http://127.0.0.1:9093",
		"-remoteWrite.url=http://127.0.0.1:8428", "-remoteRead.url=http://127.0.0.1:8428", "-evaluationInterval=1m"} {
		if !slices.Contains(argv, f) {
			t.Errorf("vmalert argv %q lacks %s", argv, f)
		}
	}
	// Debian's vmalert parses the flags and every rule file (MetricsQL is
	// not PromQL: a rule it refuses would never fire in fleet mode).
	runDry(t, "vmalert", argv)

	// Another store (a VictoriaMetrics cluster): nothing runs here but
	// vmalert, pointed at it.
	e = evalFleet(t, `{ enable = true; }`, `{ enable = true; pagerduty.routingKeyFile = "/run/secrets/k"; fleet.enable = true;
		fleet.store = { writeUrl = "http://vminsert:8480/insert/0/prometheus/api/v1/write"; queryUrl = "http://vmselect:8481/select/0/prometheus"; }; }`)
	if len(e.Failed) != 0 {
		t.Fatalf("failed assertions %q", e.Failed)
	}
	if e.Fleet.Victoriametrics != nil {
		t.Errorf("another store, yet services.victoriametrics %v", e.Fleet.Victoriametrics)
	}
	argv = e.Fleet.Vmalert.ServiceConfig.ExecStart
	for _, f := range []string{"-datasource.url=http://vmselect:8481/select/0/prometheus",
		"-remoteWrite.url=http://vminsert:8480/insert/0/prometheus", "-remoteRead.url=http://vmselect:8481/select/0/prometheus"} {
		if !slices.Contains(argv, f) {
			t.Errorf("vmalert argv %q lacks %s", argv, f)
		}
	}
	if !reflect.DeepEqual(e.Prometheus.RemoteWrite, []map[string]string{{"url": "http://vminsert:8480/insert/0/prometheus/api/v1/write"}}) {
		t.Errorf("Prometheus remoteWrite %v", e.Prometheus.RemoteWrite)
	}

	// A store whose write path is not .../api/v1/write (Thanos Receive):
	// vmalert gets the URL whole.
	e = evalFleet(t, `{ enable = true; }`, `{ enable = true; pagerduty.routingKeyFile = "/run/secrets/k"; fleet.enable = true;
		fleet.store = { writeUrl = "http://receive:19291/api/v1/receive"; queryUrl = "http://query:10902"; }; }`)
	argv = e.Fleet.Vmalert.ServiceConfig.ExecStart
	for _, f := range []string{"-remoteWrite.url=http://receive:19291/api/v1/receive", "-remoteWrite.disablePathAppend", "-datasource.url=http://query:10902"} {
		if !slices.Contains(argv, f) {
			t.Errorf("vmalert argv %q lacks %s", argv, f)
		}
	}
	runDry(t, "vmalert", argv)
}
