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
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/internal/testenv"
)

type evaluated struct {
	Argv          execLine
	ServiceConfig map[string]any
	Firewall      []int
	NixGcScript   *string
	Tmpfiles      []string
	Assertions    []bool
	Failed        []string
	Prometheus    struct {
		RuleFiles     []string
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			} `json:"static_configs"`
		}
		AlertmanagerConfig *string
	}
	LoadCredential []string
	Dashboards     []string
	Datasources    []map[string]any
	Victorialogs   map[string]any
	Logs           struct {
		UploadURL   *string
		UploadUnit  struct{ ServiceConfig, UnitConfig map[string]any }
		DatadogLogs *bool
		Warnings    []string
		Assertions  []bool
	}
	Warnings []string
}

// nixEval runs nix-instantiate --eval --strict --json on file and returns
// its stdout (nix prints warnings on stderr, shown only on failure).
func nixEval(t *testing.T, file string, args ...string) []byte {
	t.Helper()
	return output(t, exec.Command(tool(t, "nix-instantiate"), append([]string{"--eval", "--strict", "--json", file}, args...)...))
}

// evalModules evaluates module.nix and monitoring.nix through
// testdata/eval.nix with the given option values (Nix expressions).
func evalModules(t *testing.T, exporter, monitoring string, podman bool, more ...string) evaluated {
	t.Helper()
	args := []string{"--arg", "exporter", exporter, "--arg", "monitoring", monitoring, "--arg", "podman", fmt.Sprint(podman)}
	for i := 0; i+1 < len(more); i += 2 {
		args = append(args, "--arg", more[i], more[i+1])
	}
	out := evalNix(t, args...)
	var e evaluated
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return e
}

// TestModuleEval evaluates the modules with many options set, runs the
// binary with exactly the argv the module renders, and checks what the
// server side configures.
func TestModuleEval(t *testing.T) {
	textfile := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	e := evalModules(t, fmt.Sprintf(`{
		enable = true; listenAddress = "127.0.0.1"; port = %d; openFirewall = true;
		enabledCollectors = [ "textfile" "btrfs" ]; disabledCollectors = [ "boot" ];
		podman.sockets = { system = "unix:///nonexistent/podman.sock"; other = "unix:///nonexistent/other.sock"; };
		podman.rootless = true;
		textfileDirectory = %q;
		units = { include = "^nix-"; exclude = "^nix-gc"; maxUnits = 1000; };
		nixGc.stateFile = "/var/lib/panther-test/gc";
		datadog = { address = "127.0.0.1:9"; interval = "1h"; tags = [ "env:test" "site:ci" ]; include = "^panther_"; exclude = "^panther_cpu_"; };
		extraFlags = [ "--log.level=debug" ];
	}`, port, textfile), `{ enable = true; hosts = { a = { address = "a:9567"; role = "server"; }; b = { address = "[fd00::1]:9567"; role = "server"; }; }; pagerduty.routingKeyFile = "/run/secrets/k"; }`, true)

	// The argv the module renders starts the real binary.
	want := []string{
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--collector.textfile", "--collector.btrfs", "--no-collector.boot",
		"--collector.podman.socket=other=unix:///nonexistent/other.sock",
		"--collector.podman.socket=system=unix:///nonexistent/podman.sock",
		"--collector.podman.rootless",
		"--collector.podman.list-interval=15s", "--collector.podman.stats-interval=15s",
		"--collector.btrfs.subvolume-interval=1m", "--collector.boot.unit-refresh-interval=30s",
		"--collector.textfile.directory=" + textfile,
		"--collector.units.include=^nix-", "--collector.units.exclude=^nix-gc", "--collector.units.max-units=1000",
		"--collector.nix.gc-state-file=/var/lib/panther-test/gc",
		"--collector.journal", "--collector.journal.journalctl=/nix/store/ssssssssssssssssssssssssssssssss-systemd/bin/journalctl",
		"--collector.journal.state-file=/var/lib/panther-exporter/journal.state",
		"--collector.journal.priority=err", "--collector.journal.max-units=50",
		"--datadog.address=127.0.0.1:9", "--datadog.interval=1h", "--datadog.tags=role:server", "--datadog.tags=env:test", "--datadog.tags=site:ci",
		"--datadog.include=^panther_", "--datadog.exclude=^panther_cpu_",
		"--log.level=debug",
	}
	if len(e.Argv) < 1 || !strings.HasSuffix(e.Argv[0], "/bin/panther-exporter") || !reflect.DeepEqual([]string(e.Argv[1:]), want) {
		t.Fatalf("module argv\n%q\nwant\n%q", e.Argv, want)
	}
	// nix-gc.service runs nix-collect-garbage through the wrapper that
	// records its summary where the nix collector reads it.
	if wantGC := "exec /nix/store/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww-panther-nix-gc /var/lib/panther-test/gc /nix/store/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn-nix/bin/nix-collect-garbage --delete-older-than 14d"; e.NixGcScript == nil || *e.NixGcScript != wantGC {
		t.Errorf("nix-gc script %v, want %q", e.NixGcScript, wantGC)
	}
	if !reflect.DeepEqual(e.Tmpfiles, []string{"d /var/lib/panther-test 0755 root root -"}) {
		t.Errorf("tmpfiles %q", e.Tmpfiles)
	}
	cmd := exec.Command(binary(t), e.Argv[1:]...)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case <-exited:
			t.Fatalf("panther-exporter with the module's flags exited:\n%s", log.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, `panther_podman_up{socket="system"} 0`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no panther_podman_up{socket=\"system\"} 0 within 20s:\n%s\n%s", body, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(body, `panther_scrape_collector_success{collector="boot"}`) {
		t.Error("boot collector runs although the module disabled it")
	}

	// Service settings: hardening.nix plus the podman group, firewall port.
	if g := e.ServiceConfig["SupplementaryGroups"]; !reflect.DeepEqual(g, []any{"podman", "systemd-journal"}) {
		t.Errorf("SupplementaryGroups = %v, want [podman systemd-journal] with virtualisation.podman.enable and the journal collector", g)
	}
	if d := e.ServiceConfig["StateDirectory"]; d != "panther-exporter" {
		t.Errorf("StateDirectory = %v, want panther-exporter for the journal cursor", d)
	}
	if e.ServiceConfig["DynamicUser"] != true || e.ServiceConfig["ProtectSystem"] != "strict" {
		t.Errorf("serviceConfig lacks the hardening: %v", e.ServiceConfig)
	}
	// The units collector keeps up to 11 files open per unit in half the
	// limit: 1000 units need 22000.
	if n := e.ServiceConfig["LimitNOFILE"]; n != float64(22000) {
		t.Errorf("LimitNOFILE = %v with units.maxUnits = 1000, want 22000", n)
	}
	if !reflect.DeepEqual(e.Firewall, []int{port}) {
		t.Errorf("firewall ports %v, want [%d]", e.Firewall, port)
	}
	for i, ok := range e.Assertions {
		if !ok {
			t.Errorf("assertion %d fails for a valid configuration", i)
		}
	}

	// Server side: every rule file, the panther job, the routing key as a
	// credential, the dashboards.
	onDisk, _ := filepath.Glob("../rules/prometheus/*.rules.yml")
	var got []string
	for _, f := range e.Prometheus.RuleFiles {
		got = append(got, filepath.Base(f))
	}
	var wantRules []string
	for _, f := range onDisk {
		wantRules = append(wantRules, filepath.Base(f))
	}
	sort.Strings(got)
	sort.Strings(wantRules)
	if len(wantRules) == 0 || !reflect.DeepEqual(got, wantRules) {
		t.Errorf("ruleFiles %v, want %v", got, wantRules)
	}
	if len(e.Prometheus.ScrapeConfigs) != 1 || e.Prometheus.ScrapeConfigs[0].JobName != "panther" ||
		len(e.Prometheus.ScrapeConfigs[0].StaticConfigs) != 2 ||
		!reflect.DeepEqual(e.Prometheus.ScrapeConfigs[0].StaticConfigs[1].Targets, []string{"[fd00::1]:9567"}) {
		t.Errorf("scrapeConfigs %+v", e.Prometheus.ScrapeConfigs)
	}
	if !reflect.DeepEqual(e.LoadCredential, []string{"pagerduty-routing-key:/run/secrets/k"}) || len(e.Warnings) != 1 {
		t.Errorf("alertmanager LoadCredential %v", e.LoadCredential)
	}
	if e.Prometheus.AlertmanagerConfig == nil || !strings.Contains(*e.Prometheus.AlertmanagerConfig, "routing_key_file: /run/credentials/alertmanager.service/pagerduty-routing-key") {
		t.Fatalf("alertmanager configText does not read the key from the credential")
	}
	// Debian's amtool checks the configuration NixOS would run.
	checkAlertmanagerConfig(t, *e.Prometheus.AlertmanagerConfig)
	// The provider's path is the store copy of dashboards/grafana's JSON:
	// every dashboard, and not the Go that generates them. (Copying it into
	// the store, as nixos-rebuild does, needs --read-write-mode and root.)
	if len(e.Dashboards) != 1 || !strings.HasPrefix(e.Dashboards[0], "/nix/store/") {
		t.Fatalf("dashboards provisioned from %v", e.Dashboards)
	}
	t.Run("copied into the store", func(t *testing.T) {
		testenv.Root(t)
		var copied []string
		if err := json.Unmarshal(nixEval(t, "testdata/eval.nix", "--read-write-mode", "-A", "dashboards", "--arg", "nixpkgsLib", nixpkgsLib(t),
			"--arg", "exporter", "{ enable = false; }", "--arg", "monitoring", "{ enable = true; }"), &copied); err != nil || len(copied) != 1 || copied[0] != e.Dashboards[0] {
			t.Fatalf("dashboards copied to %v (%v), want %s", copied, err, e.Dashboards[0])
		}
		inStore, _ := filepath.Glob(filepath.Join(e.Dashboards[0], "*"))
		inRepo, _ := filepath.Glob("../dashboards/grafana/*.json")
		var gotNames, wantNames []string
		for _, f := range inStore {
			gotNames = append(gotNames, filepath.Base(f))
		}
		for _, f := range inRepo {
			wantNames = append(wantNames, filepath.Base(f))
		}
		if len(wantNames) == 0 || !reflect.DeepEqual(gotNames, wantNames) {
			t.Errorf("provisioned dashboards %v, want %v", gotNames, wantNames)
		}
	})

	// Variants: IPv6 listen address, no podman, a routing key in the store.
	e = evalModules(t, `{ enable = true; listenAddress = "::1"; journal.enable = false; }`, `{ enable = true; pagerduty.routingKeyFile = "/nix/store/x-key"; }`, false)
	// Besides the listen address only what the role and the absence of
	// Podman add (roles_test.go checks those).
	if e.Argv[1] != "--web.listen-address=[::1]:9567" || len(e.Argv) != 5 || slices.Contains(e.Argv, "--collector.journal") {
		t.Errorf("IPv6 listen flag, no journal: %q", e.Argv)
	}
	if g := e.ServiceConfig["SupplementaryGroups"]; !reflect.DeepEqual(g, []any{}) {
		t.Errorf("SupplementaryGroups = %v without podman", g)
	}
	if n := e.ServiceConfig["LimitNOFILE"]; n != float64(8192) {
		t.Errorf("LimitNOFILE = %v with the default 300 units, want 8192", n)
	}
	if len(e.Failed) != 1 || !strings.Contains(e.Failed[0], "routingKeyFile") || !strings.Contains(e.Failed[0], "in the Nix store") {
		t.Errorf("a routing key file in the Nix store: failed assertions %q", e.Failed)
	}
}

// TestLogsEval: journal shipping with host and role in the upload URL (the
// form e2e/journal_helpers_test.go ships with to a real VictoriaLogs), the
// unit retrying for ever, the Datadog Agent module's journald logs turned
// on, VictoriaLogs with its retention and Grafana data source on the
// monitoring host, and the impermanence warning.
func TestLogsEval(t *testing.T) {
	e := evalModules(t, `{ enable = true; }`, `{ enable = true; logs = { enable = true; retention = "8w"; }; }`, true,
		"logs", `{ upload = { enable = true; url = "http://mon.lan:9428"; }; role = "workstation"; datadog.enable = true; }`,
		"persistence", `{ "/persist" = { directories = [ "/var/lib/nixos" { directory = "/srv"; } ]; }; }`)
	if e.Logs.UploadURL == nil || *e.Logs.UploadURL != "http://mon.lan:9428/insert/journald/upload?extra_fields=host=nas,role=workstation&_=" {
		t.Errorf("upload URL %v", e.Logs.UploadURL)
	}
	if u := e.Logs.UploadUnit; u.ServiceConfig["RestartSec"] != "10s" || u.UnitConfig["StartLimitIntervalSec"] != float64(0) {
		t.Errorf("systemd-journal-upload unit %v: want RestartSec=10s and no start limit", u)
	}
	for i, ok := range e.Logs.Assertions {
		if !ok {
			t.Errorf("logs assertion %d fails for a valid URL", i)
		}
	}
	if e.Logs.DatadogLogs == nil || !*e.Logs.DatadogLogs {
		t.Errorf("Datadog: the Agent module's journald logs hook (datadog.agent.logs.enable) not set: %v", e.Logs.DatadogLogs)
	}
	if len(e.Logs.Warnings) != 1 || !strings.Contains(e.Logs.Warnings[0], "/var/log/journal") {
		t.Errorf("impermanence without /var/log/journal: warnings %q", e.Logs.Warnings)
	}
	if e.Victorialogs["enable"] != true || e.Victorialogs["listenAddress"] != ":9428" ||
		!reflect.DeepEqual(e.Victorialogs["extraOptions"], []any{"-retentionPeriod=8w"}) {
		t.Errorf("services.victorialogs %v", e.Victorialogs)
	}
	var ds []string
	for _, d := range e.Datasources {
		ds = append(ds, fmt.Sprint(d["type"], " ", d["uid"], " ", d["url"]))
	}
	if !slices.Contains(ds, "victoriametrics-logs-datasource victorialogs http://127.0.0.1:9428") {
		t.Errorf("Grafana data sources %q lack VictoriaLogs", ds)
	}

	// Persisted journal (or /var/log, or a parent): no warning; a bad URL
	// fails the assertion.
	for _, p := range []string{
		`{ "/persist" = { directories = [ "/var/log/journal" ]; }; }`,
		`{ "/persist" = { directories = [ { directory = "/var/log"; } ]; }; }`,
	} {
		e = evalModules(t, `{ enable = true; }`, `{ enable = true; }`, false,
			"logs", `{ upload = { enable = true; url = "http://mon.lan:9428/insert"; }; }`, "persistence", p)
		if len(e.Logs.Warnings) != 0 {
			t.Errorf("persistence %s: warnings %q", p, e.Logs.Warnings)
		}
		if len(e.Failed) != 1 || !strings.HasPrefix(e.Failed[0], "services.panther-logs.upload.url must be a base URL") {
			t.Errorf("an upload URL with a path: failed assertions %q, want the upload.url one", e.Failed)
		}
	}
}

// TestFlakeOutputs evaluates flake.nix's outputs with nixpkgs' lib and stand-in packages:
// packages, nixosModules and checks are where `nix build` and
// `nix flake check` look for them, and the version is stamped.
func TestFlakeOutputs(t *testing.T) {
	out := nixEval(t, "testdata/flake.nix", "--arg", "nixpkgsLib", nixpkgsLib(t))
	var got struct {
		Package struct{ Package, Version, Revision, BuildDate, BuildGoModule string }
		Default string
		Checks  []string
		VMTest  struct {
			Test  string
			Nodes []string
		}
		Modules []string
		Systems []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Package.Package != "package.nix" || got.Default != "package.nix" {
		t.Errorf("packages.panther-exporter/default are not nixos/package.nix: %s", out)
	}
	if got.Package.Revision != "0123456789abcdef0123456789abcdef01234567" || got.Package.BuildDate != "20261125-23:30:00" ||
		got.Package.Version != "0-unstable-20261125" || got.Package.BuildGoModule != "buildGo126Module" {
		t.Errorf("version stamping / Go version: %+v", got.Package)
	}
	if !reflect.DeepEqual(got.Checks, []string{"package", "vm-test"}) || !reflect.DeepEqual(got.VMTest.Nodes, []string{"host", "monitor"}) {
		t.Errorf("checks %v, VM test nodes %v", got.Checks, got.VMTest.Nodes)
	}
	if !reflect.DeepEqual(got.Modules, []string{"default", "panther-exporter"}) {
		t.Errorf("nixosModules %v", got.Modules)
	}
	if !reflect.DeepEqual(got.Systems, []string{"aarch64-linux", "x86_64-linux"}) {
		t.Errorf("systems %v", got.Systems)
	}
}

// services.panther-monitoring.nodeExporterCompat adds the optional
// node_exporter compatibility rules, and only then.
func TestNodeExporterCompatOption(t *testing.T) {
	const compat = "node-exporter-compat.rules.yml"
	has := func(e evaluated) bool {
		for _, f := range e.Prometheus.RuleFiles {
			if filepath.Base(f) == compat {
				if _, err := os.Stat(filepath.Join("../rules/prometheus/optional", compat)); err != nil {
					t.Errorf("rule file %s: %v", f, err)
				}
				return true
			}
		}
		return false
	}
	if e := evalModules(t, `{ enable = true; }`, `{ enable = true; hosts.a = { address = "a:9567"; role = "server"; }; }`, false); has(e) {
		t.Errorf("%s loaded by default: %v", compat, e.Prometheus.RuleFiles)
	}
	e := evalModules(t, `{ enable = true; }`, `{ enable = true; hosts.a = { address = "a:9567"; role = "server"; }; nodeExporterCompat = true; }`, false)
	if !has(e) {
		t.Errorf("nodeExporterCompat = true: %s not among %v", compat, e.Prometheus.RuleFiles)
	}
	onDisk, _ := filepath.Glob("../rules/prometheus/*.rules.yml")
	if len(e.Prometheus.RuleFiles) != len(onDisk)+1 {
		t.Errorf("nodeExporterCompat = true: %d rule files, want the %d default ones and the compat file", len(e.Prometheus.RuleFiles), len(onDisk))
	}
}
