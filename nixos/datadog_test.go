package nixos

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/all" // fill the catalog
	"github.com/pantheros/monitoring/exporter/datadog/ddcheck"
)

var updateOpenMetrics = flag.Bool("update-openmetrics", false, "rewrite datadog-openmetrics.json from the catalog")

// agentEval is what testdata/eval.nix returns about the Datadog Agent.
type agentEval struct {
	Argv          execLine
	ServiceConfig map[string]any
	Assertions    []bool
	Failed        []string
	Datadog       struct {
		Agent         map[string]any
		ServiceConfig map[string]any
		ExtraGroups   []string
	}
}

func evalAgent(t *testing.T, exporter, monitoring string, more ...string) agentEval {
	t.Helper()
	args := []string{"--arg", "exporter", exporter, "--arg", "monitoring", monitoring, "--arg", "podman", "false"}
	for i := 0; i+1 < len(more); i += 2 {
		args = append(args, "--arg", more[i], more[i+1])
	}
	out := evalNix(t, args...)
	var e agentEval
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return e
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDatadogAgentEval: with the Agent on, services.datadog-agent is
// configured key by key (what nixpkgs writes into datadog.yaml and
// conf.d), the exporter sends to the Agent's socket as a member of its
// group, the socket directory and mode keep everyone else out.
func TestDatadogAgentEval(t *testing.T) {
	e := evalAgent(t, `{
		enable = true; role = "server";
		datadog.agent = { enable = true; apiKeyFile = "/run/opnix/datadog-api-key"; site = "datadoghq.eu"; tags = [ "env:prod" ]; };
	}`, `{ enable = false; }`, "logs", `{ datadog.enable = false; }`)
	for _, f := range e.Failed {
		t.Errorf("assertion fails for a valid configuration: %s", f)
	}
	a := e.Datadog.Agent
	// Every option of nixpkgs' services.datadog-agent we set, and only those.
	if got, want := keys(a), []string{"apiKeyFile", "checks", "enable", "extraConfig", "hostname", "site", "tags"}; !reflect.DeepEqual(got, want) {
		t.Errorf("services.datadog-agent sets %v, want %v", got, want)
	}
	for k, want := range map[string]any{
		"enable": true, "apiKeyFile": "/run/opnix/datadog-api-key", "site": "datadoghq.eu", "hostname": "nas",
		"tags":   []any{"role:server", "instance:nas", "env:prod"},
		"checks": map[string]any{},
		// datadog.yaml: DogStatsD on the socket, no logs.
		"extraConfig": map[string]any{"dogstatsd_socket": "/run/datadog/dsd.socket"},
	} {
		if !reflect.DeepEqual(a[k], want) {
			t.Errorf("services.datadog-agent.%s = %#v, want %#v", k, a[k], want)
		}
	}
	// The exporter: sink on the socket, in the datadog group.
	if !contains(e.Argv, "--datadog.address=unix:///run/datadog/dsd.socket") {
		t.Errorf("exporter argv %q does not send to the Agent's socket", e.Argv)
	}
	// (systemd-journal: the journal collector, on by default.)
	if g := e.ServiceConfig["SupplementaryGroups"]; !reflect.DeepEqual(g, []any{"datadog", "systemd-journal"}) {
		t.Errorf("exporter SupplementaryGroups = %v, want [datadog systemd-journal]", g)
	}
	// The Agent's unit: its runtime directory 0750, the socket made 0720.
	sc := e.Datadog.ServiceConfig
	if sc["RuntimeDirectory"] != "datadog" || sc["RuntimeDirectoryMode"] != "0750" {
		t.Errorf("datadog-agent RuntimeDirectory %v mode %v, want datadog 0750", sc["RuntimeDirectory"], sc["RuntimeDirectoryMode"])
	}
	post, _ := sc["ExecStartPost"].([]any)
	if len(post) != 1 || !regexp.MustCompile(`^-/nix/store/\S+/bin/bash /nix/store/[a-z0-9]{32}-datadog-socket-mode\.sh /run/datadog/dsd\.socket$`).MatchString(fmt.Sprint(post[0])) {
		t.Errorf("datadog-agent ExecStartPost %v, want datadog-socket-mode.sh on the socket", post)
	}
	if sc["StateDirectory"] != nil || len(e.Datadog.ExtraGroups) > 0 {
		t.Errorf("logs off, yet StateDirectory %v, extra groups %v", sc["StateDirectory"], e.Datadog.ExtraGroups)
	}

	// An explicit address wins; the hostname and role come from their options.
	e = evalAgent(t, `{ enable = true; datadog.address = "127.0.0.1:8125";
		datadog.agent = { enable = true; apiKeyFile = "/run/agenix/dd"; hostname = "nas.lan"; }; }`, `{ enable = false; }`)
	if !contains(e.Argv, "--datadog.address=127.0.0.1:8125") {
		t.Errorf("explicit datadog.address lost: %q", e.Argv)
	}
	// The role defaults to server (services.panther-exporter.role).
	if got := e.Datadog.Agent["tags"]; !reflect.DeepEqual(got, []any{"role:server", "instance:nas.lan"}) {
		t.Errorf("host tags %v, want the default role and the hostname", got)
	}

	// Logs on: the journald integration, the journal's group, a state directory.
	e = evalAgent(t, `{ enable = true; datadog.agent = { enable = true; apiKeyFile = "/run/secrets/dd";
		logs.enable = true; logs.units = [ "sshd.service" ]; }; }`, `{ enable = false; }`)
	wantJournald := map[string]any{"logs": []any{map[string]any{"type": "journald", "include_units": []any{"sshd.service"}}}}
	checks, _ := e.Datadog.Agent["checks"].(map[string]any)
	if !reflect.DeepEqual(checks["journald"], wantJournald) {
		t.Errorf("checks.journald = %#v, want %#v", checks["journald"], wantJournald)
	}
	xc, _ := e.Datadog.Agent["extraConfig"].(map[string]any)
	if xc["logs_enabled"] != true || !reflect.DeepEqual(xc["logs_config"], map[string]any{"run_path": "/var/lib/datadog-agent"}) {
		t.Errorf("extraConfig with logs: %v", xc)
	}
	if !reflect.DeepEqual(e.Datadog.ExtraGroups, []string{"systemd-journal"}) || e.Datadog.ServiceConfig["StateDirectory"] != "datadog-agent" {
		t.Errorf("logs: extra groups %v, StateDirectory %v", e.Datadog.ExtraGroups, e.Datadog.ServiceConfig["StateDirectory"])
	}

	// By default (services.panther-logs.datadog.enable follows the Agent)
	// the Agent also ships the journal: logs.nix sets logs.enable with
	// mkDefault, which the real module system merges into datadog.nix's
	// option (the old stand-in evaluated logs.nix apart and never showed it).
	e = evalAgent(t, `{ enable = true; datadog.agent = { enable = true; apiKeyFile = "/run/secrets/dd"; }; }`, `{ enable = false; }`)
	if checks, _ := e.Datadog.Agent["checks"].(map[string]any); checks["journald"] == nil {
		t.Errorf("Agent on, logs left at their default: no journald check (%v)", e.Datadog.Agent["checks"])
	}

	// Agent off: nothing of it, and the sink stays off.
	e = evalAgent(t, `{ enable = true; }`, `{ enable = false; }`)
	if e.Datadog.Agent != nil || strings.Contains(strings.Join(e.Argv, " "), "--datadog.") {
		t.Errorf("agent off: services.datadog-agent %v, argv %q", e.Datadog.Agent, e.Argv)
	}
}

// TestOpenMetricsRoute: route = "openmetrics" writes a valid OpenMetrics
// check (conf.d/openmetrics.d/conf.yaml) that scrapes the exporter, and
// turns the sink and the socket off.
func TestOpenMetricsRoute(t *testing.T) {
	e := evalAgent(t, `{ enable = true; listenAddress = "10.0.0.2"; port = 9999;
		datadog.agent = { enable = true; apiKeyFile = "/run/secrets/dd"; route = "openmetrics";
		  openmetrics.extraMetrics = [ { backup_runs = "backup.runs"; } "^nightly_" ]; }; }`, `{ enable = false; }`)
	for _, f := range e.Failed {
		t.Errorf("assertion fails: %s", f)
	}
	groups, _ := e.ServiceConfig["SupplementaryGroups"].([]any)
	if strings.Contains(strings.Join(e.Argv, " "), "--datadog.") || slices.Contains(groups, any("datadog")) {
		t.Errorf("openmetrics route: exporter argv %q, groups %v; want no sink, no datadog group", e.Argv, e.ServiceConfig["SupplementaryGroups"])
	}
	xc, _ := e.Datadog.Agent["extraConfig"].(map[string]any)
	if _, ok := xc["dogstatsd_socket"]; ok {
		t.Errorf("openmetrics route still sets dogstatsd_socket: %v", xc)
	}
	if e.Datadog.ServiceConfig["ExecStartPost"] != nil {
		t.Errorf("openmetrics route still waits for the socket: %v", e.Datadog.ServiceConfig["ExecStartPost"])
	}
	checks, _ := e.Datadog.Agent["checks"].(map[string]any)
	conf, ok := checks["openmetrics"]
	if !ok {
		t.Fatalf("no checks.openmetrics: %v", checks)
	}
	// nixpkgs writes the check as JSON (a YAML subset) into conf.yaml.
	b, _ := json.Marshal(conf)
	inst := checkOpenMetricsConf(t, b)
	if inst.Endpoint != "http://10.0.0.2:9999/metrics" {
		t.Errorf("openmetrics_endpoint %q, want the exporter's http://10.0.0.2:9999/metrics", inst.Endpoint)
	}
	if got := inst.Renames["backup_runs"]; got != "backup.runs" || !inst.Patterns["^nightly_"] {
		t.Errorf("extraMetrics not in the metrics list: %q, %v", got, inst.Patterns)
	}
	// Every metric the sink sends is there, under the sink's name.
	for _, m := range ddcheck.OpenMetricsMetrics() {
		for k, v := range m {
			if inst.Renames[k] != v {
				t.Errorf("metrics list: %s -> %q, want %q", k, inst.Renames[k], v)
			}
		}
	}

	// Other listen addresses: the check reaches the exporter on loopback.
	for listen, want := range map[string]string{"": "http://127.0.0.1:9567/metrics", "::": "http://[::1]:9567/metrics", "fd00::2": "http://[fd00::2]:9567/metrics"} {
		e := evalAgent(t, fmt.Sprintf(`{ enable = true; listenAddress = %q; datadog.agent = { enable = true; apiKeyFile = "/run/k"; route = "openmetrics"; }; }`, listen), `{ enable = false; }`)
		inst := e.Datadog.Agent["checks"].(map[string]any)["openmetrics"].(map[string]any)["instances"].([]any)[0].(map[string]any)
		if inst["openmetrics_endpoint"] != want {
			t.Errorf("listenAddress %q: endpoint %v, want %s", listen, inst["openmetrics_endpoint"], want)
		}
	}
	// With TLS/basic auth the plain-HTTP check is refused.
	e = evalAgent(t, `{ enable = true; webConfigFile = "/etc/panther/web.yml"; datadog.agent = { enable = true; apiKeyFile = "/run/k"; route = "openmetrics"; }; }`, `{ enable = false; }`)
	if len(e.Failed) != 1 || !strings.Contains(e.Failed[0], "webConfigFile") {
		t.Errorf("openmetrics with webConfigFile: failed assertions %q", e.Failed)
	}
}

type omInstance struct {
	Endpoint string
	Renames  map[string]string
	Patterns map[string]bool
}

// instanceKeys are options of the OpenMetrics check (V2) instance, from its
// configuration model (integrations-core openmetrics config_models/
// instance.py); the module uses a few of them.
var instanceKeys = map[string]bool{
	"openmetrics_endpoint": true, "namespace": true, "metrics": true, "exclude_metrics": true, "extra_metrics": true,
	"tags": true, "timeout": true, "min_collection_interval": true, "exclude_labels": true, "include_labels": true,
	"rename_labels": true, "share_labels": true, "type_overrides": true, "raw_metric_prefix": true, "service": true,
	"collect_histogram_buckets": true, "histogram_buckets_as_distributions": true, "tls_verify": true,
}

// checkOpenMetricsConf checks the shape of an OpenMetrics check
// configuration: init_config, one instance with only known options, an
// http(s) openmetrics_endpoint, a namespace of word characters, and a
// metrics list whose entries are a name (or regex) or a one-key mapping
// to a new name, each name known to the catalog or to extraMetrics.
func checkOpenMetricsConf(t *testing.T, b []byte) omInstance {
	t.Helper()
	var conf struct {
		InitConfig *map[string]any  `json:"init_config"`
		Instances  []map[string]any `json:"instances"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&conf); err != nil {
		t.Fatalf("openmetrics conf.yaml: %v\n%s", err, b)
	}
	if conf.InitConfig == nil || len(conf.Instances) != 1 {
		t.Fatalf("openmetrics conf.yaml: want init_config and one instance: %s", b)
	}
	in := conf.Instances[0]
	for k := range in {
		if !instanceKeys[k] {
			t.Errorf("openmetrics instance: unknown option %q", k)
		}
	}
	out := omInstance{Renames: map[string]string{}, Patterns: map[string]bool{}}
	out.Endpoint, _ = in["openmetrics_endpoint"].(string)
	if u, err := url.Parse(out.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Errorf("openmetrics_endpoint %q is not an http(s) URL", out.Endpoint)
	}
	if ns, _ := in["namespace"].(string); !regexp.MustCompile(`^\w+$`).MatchString(ns) {
		t.Errorf("namespace %q", ns)
	}
	metrics, ok := in["metrics"].([]any)
	if !ok || len(metrics) == 0 {
		t.Fatalf("metrics is not a non-empty list: %v", in["metrics"])
	}
	for _, m := range metrics {
		switch v := m.(type) {
		case string:
			if _, err := regexp.Compile(v); err != nil {
				t.Errorf("metrics entry %q: %v", v, err)
			}
			out.Patterns[v] = true
		case map[string]any:
			if len(v) != 1 {
				t.Errorf("metrics entry %v: want one PROMETHEUS_NAME: new.name", v)
			}
			for k, n := range v {
				s, ok := n.(string)
				if !ok || !regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`).MatchString(s) {
					t.Errorf("metrics entry %s: %v is not a metric name", k, n)
				}
				out.Renames[k] = s
			}
		default:
			t.Errorf("metrics entry %v (%T): want a string or a mapping", m, m)
		}
	}
	return out
}

// TestOpenMetricsList: datadog-openmetrics.json is the catalog's list
// (`go test ./nixos -run TestOpenMetricsList -update-openmetrics`), names
// only the catalog's metrics, and gives each the sink's DogStatsD name.
func TestOpenMetricsList(t *testing.T) {
	want := ddcheck.OpenMetricsMetrics()
	b, err := json.MarshalIndent(map[string]any{"metrics": want}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *updateOpenMetrics {
		if err := os.WriteFile("datadog-openmetrics.json", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, "datadog-openmetrics.json"); got != string(b) {
		t.Fatalf("datadog-openmetrics.json is out of date: go test ./nixos -run TestOpenMetricsList -update-openmetrics")
	}
	families := map[string]bool{}
	for _, m := range collector.Catalog() {
		families[m.Name] = true
		families[strings.TrimSuffix(m.Name, "_total")] = true
	}
	emitted := ddcheck.Emitted()
	if len(want) < 50 {
		t.Errorf("only %d metrics in the list", len(want))
	}
	for _, m := range want {
		for k, v := range m {
			if !families[k] {
				t.Errorf("%s is not in the catalog", k)
			}
			if !emitted[ddcheck.OpenMetricsNamespace+"."+v] {
				t.Errorf("%s -> panther.%s: not a name the DogStatsD sink sends", k, v)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSecretOptions: every option that names a secret file accepts the path
// of a secret manager's file and refuses the secret itself, a file in the
// Nix store and a Nix path (which would be copied there), with a message
// that names the option, says why and how to wire OpNix, agenix or
// sops-nix, and never repeats the value.
func TestSecretOptions(t *testing.T) {
	const literal = "0123456789abcdef0123456789abcdef"
	options := []struct {
		name                 string
		exporter, monitoring func(v string) string
	}{
		{"services.panther-exporter.datadog.agent.apiKeyFile",
			func(v string) string {
				return `{ enable = true; datadog.agent = { enable = true; apiKeyFile = ` + v + `; }; }`
			},
			func(string) string { return `{ enable = false; }` }},
		{"services.panther-monitoring.pagerduty.routingKeyFile",
			func(string) string { return `{ enable = false; }` },
			func(v string) string { return `{ enable = true; pagerduty.routingKeyFile = ` + v + `; }` }},
		{"services.panther-monitoring.grafana.secretKeyFile",
			func(string) string { return `{ enable = false; }` },
			func(v string) string { return `{ enable = true; grafana.secretKeyFile = ` + v + `; }` }},
		{"services.panther-monitoring.grafana.adminPasswordFile",
			func(string) string { return `{ enable = false; }` },
			func(v string) string { return `{ enable = true; grafana.adminPasswordFile = ` + v + `; }` }},
	}
	cases := []struct {
		value string // a Nix expression
		why   string // "" when accepted
	}{
		{`"/run/opnix/secret"`, ""},
		{`"/run/agenix/secret"`, ""},
		{fmt.Sprintf("%q", literal), "not an absolute path"},
		{`"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-secret"`, "in the Nix store"},
		{`/run/keys/secret`, "a Nix path"}, // a path literal, not a string
	}
	for _, o := range options {
		for _, c := range cases {
			e := evalAgent(t, o.exporter(c.value), o.monitoring(c.value))
			var mine []string
			for _, f := range e.Failed {
				if strings.HasPrefix(f, o.name+" ") {
					mine = append(mine, f)
				}
			}
			if c.why == "" {
				if len(e.Failed) > 0 {
					t.Errorf("%s = %s refused: %q", o.name, c.value, e.Failed)
				}
				continue
			}
			if len(mine) != 1 {
				t.Errorf("%s = %s: %d failed assertions of the option, want 1: %q", o.name, c.value, len(mine), e.Failed)
				continue
			}
			msg := mine[0]
			for _, want := range []string{c.why, "services.onepassword-secrets.secretPaths.NAME", "config.age.secrets.NAME.path", "config.sops.secrets.NAME.path"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s = %s: message lacks %q:\n%s", o.name, c.value, want, msg)
				}
			}
			if strings.Contains(msg, literal) || strings.Contains(msg, "/run/keys/secret") || strings.Contains(msg, "aaaaaaaa") {
				t.Errorf("%s: the message repeats the value:\n%s", o.name, msg)
			}
		}
	}

	// Grafana reads both files itself ($__file{}), Alertmanager through a credential.
	var got struct {
		LoadCredential []string
		Prometheus     struct{ GrafanaSecurity map[string]string }
	}
	out := evalNix(t, "--arg", "exporter", `{ enable = false; }`, "--arg", "monitoring",
		`{ enable = true; pagerduty.routingKeyFile = "/run/opnix/pd"; grafana = { secretKeyFile = "/run/opnix/gk"; adminPasswordFile = "/run/opnix/gp"; }; }`)
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if sec := got.Prometheus.GrafanaSecurity; sec["secret_key"] != "$__file{/run/opnix/gk}" || sec["admin_password"] != "$__file{/run/opnix/gp}" {
		t.Errorf("grafana security settings %v, want %v", got.Prometheus.GrafanaSecurity, "secret_key and admin_password from their files")
	}
	if !reflect.DeepEqual(got.LoadCredential, []string{"pagerduty-routing-key:/run/opnix/pd"}) {
		t.Errorf("alertmanager LoadCredential %v", got.LoadCredential)
	}
}
