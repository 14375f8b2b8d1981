package nixos

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// failing counts the assertions that do not hold.
func failing(as []bool) int {
	n := 0
	for _, ok := range as {
		if !ok {
			n++
		}
	}
	return n
}

// flagValue returns the value of --name=... in argv, or "" when absent.
func flagValue(argv []string, name string) string {
	for _, a := range argv {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// checkAlertmanagerConfig runs Debian's amtool on the configuration NixOS
// would give Alertmanager: it loads, and it routes as the policy says
// (the example's routes, whatever the notifier blocks became).
func checkAlertmanagerConfig(t *testing.T, cfg string) {
	t.Helper()
	amtool := tool(t, "amtool")
	// nixpkgs' alertmanager.nix runs envsubst over configText first: $$ is
	// a $, and a lone $ would be replaced by an environment variable.
	if strings.Contains(strings.ReplaceAll(cfg, "$$", ""), "$") {
		t.Errorf("alertmanager configText has a $ that envsubst would substitute (write $$)")
	}
	cfg = strings.ReplaceAll(cfg, "$$", "$")
	f := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	output(t, exec.Command(amtool, "check-config", f))
	for _, c := range []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=PodmanServiceDown", "severity=critical", "role=server"}, "pagerduty"},
		{[]string{"alertname=PodmanServiceDown", "severity=critical", "role=workstation"}, "warnings"},
		{[]string{"alertname=BtrfsDeviceErrorsGrowing", "severity=critical", "data_loss=true", "role=workstation"}, "pagerduty"},
		{[]string{"alertname=WorkstationNotSeen", "severity=warning", "role=workstation"}, "warnings"},
	} {
		out := output(t, exec.Command(amtool, append([]string{"config", "routes", "test", "--config.file=" + f}, c.labels...)...))
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("NixOS's Alertmanager routes %v to %q, want %q", c.labels, got, c.want)
		}
	}
}

// TestModuleRoles: the role picks the exporter's defaults and its DogStatsD
// tag; the podman collector runs only where Podman is; the monitoring
// server carries instance and role as target labels and scrapes
// workstations less often; the warnings notifier's secrets stay files.
func TestModuleRoles(t *testing.T) {
	// A workstation without Podman, with DogStatsD.
	ws := evalModules(t, `{ enable = true; role = "workstation"; datadog.address = "127.0.0.1:9"; }`, `{ enable = true; }`, false)
	for flag, want := range map[string]string{
		"collector.btrfs.subvolume-interval":   "15m",
		"collector.boot.unit-refresh-interval": "5m",
		"datadog.interval":                     "60s",
		"datadog.tags":                         "role:workstation",
		"collector.podman.list-interval":       "",
		"collector.podman.socket":              "",
	} {
		if got := flagValue(ws.Argv, flag); got != want {
			t.Errorf("workstation: --%s=%q, want %q (argv %q)", flag, got, want, ws.Argv)
		}
	}
	if !slices.Contains(ws.Argv, "--no-collector.podman") {
		t.Errorf("workstation without virtualisation.podman: podman collector not turned off: %q", ws.Argv)
	}
	// The binary accepts exactly this argv.
	cmd := exec.Command(binary(t), append(ws.Argv[1:], "--web.listen-address=127.0.0.1:0", "--help")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("panther-exporter rejects the workstation argv %q: %v\n%s", ws.Argv[1:], err, stderr.String())
	}

	// A server with Podman: the server profile, the podman collector on.
	sv := evalModules(t, `{ enable = true; datadog.address = "127.0.0.1:9"; }`, `{ enable = true; }`, true)
	for flag, want := range map[string]string{
		"collector.btrfs.subvolume-interval":   "1m",
		"collector.boot.unit-refresh-interval": "30s",
		"collector.podman.list-interval":       "15s",
		"collector.podman.stats-interval":      "15s",
		"datadog.interval":                     "15s",
		"datadog.tags":                         "role:server",
	} {
		if got := flagValue(sv.Argv, flag); got != want {
			t.Errorf("server: --%s=%q, want %q (argv %q)", flag, got, want, sv.Argv)
		}
	}
	if slices.Contains(sv.Argv, "--no-collector.podman") {
		t.Errorf("server with virtualisation.podman: podman collector off: %q", sv.Argv)
	}

	// No Podman, but asked for: by socket, by name, or by podman.enable;
	// an explicit interval beats the role's.
	for _, c := range []string{
		`{ enable = true; role = "workstation"; podman.sockets.u = "unix:///run/user/1000/podman/podman.sock"; }`,
		`{ enable = true; role = "workstation"; enabledCollectors = [ "podman" ]; }`,
		`{ enable = true; role = "workstation"; podman.enable = true; intervals.podmanList = "7s"; }`,
	} {
		e := evalModules(t, c, `{ enable = true; }`, false)
		if slices.Contains(e.Argv, "--no-collector.podman") {
			t.Errorf("%s: podman collector off: %q", c, e.Argv)
		}
	}
	e := evalModules(t, `{ enable = true; role = "workstation"; podman.enable = true; intervals.podmanList = "7s"; }`, `{ enable = true; }`, false)
	if got := flagValue(e.Argv, "collector.podman.list-interval"); got != "7s" {
		t.Errorf("intervals.podmanList = 7s gives --collector.podman.list-interval=%q", got)
	}
	e = evalModules(t, `{ enable = true; podman.enable = false; }`, `{ enable = true; }`, true)
	if !slices.Contains(e.Argv, "--no-collector.podman") {
		t.Errorf("podman.enable = false on a Podman host: podman collector on: %q", e.Argv)
	}
	e = evalModules(t, `{ enable = true; datadog = { address = "127.0.0.1:9"; tags = [ "role:server" ]; }; }`, `{ enable = true; }`, false)
	if failing(e.Assertions) != 1 {
		t.Errorf("a role: tag in datadog.tags passes the assertions: %v", e.Assertions)
	}

	// The monitoring server: instance and role as target labels, the
	// workstation scraped every 60s, the warnings notifier from files.
	m := evalModules(t, `{ enable = true; }`, `{
		enable = true;
		hosts = {
			hetzner-vps = { address = "10.0.0.1:9567"; role = "server"; };
			yoga = { address = "10.0.0.2:9567"; role = "workstation"; };
		};
		pagerduty.routingKeyFile = "/run/secrets/pd";
		warnings.chat.webhookUrlFile = "/run/secrets/chat";
		warnings.email = { to = "ops@example.org"; smarthost = "smtp.example.org:587"; username = "am"; passwordFile = "/run/secrets/smtp"; };
	}`, false)
	sc := m.Prometheus.ScrapeConfigs
	if len(sc) != 1 || len(sc[0].StaticConfigs) != 2 {
		t.Fatalf("scrapeConfigs %+v", sc)
	}
	labels := map[string]map[string]string{}
	for _, s := range sc[0].StaticConfigs {
		labels[strings.Join(s.Targets, ",")] = s.Labels
	}
	if l := labels["10.0.0.1:9567"]; l["instance"] != "hetzner-vps" || l["role"] != "server" || l["__scrape_interval__"] != "" {
		t.Errorf("server target labels %v", l)
	}
	if l := labels["10.0.0.2:9567"]; l["instance"] != "yoga" || l["role"] != "workstation" || l["__scrape_interval__"] != "60s" {
		t.Errorf("workstation target labels %v", l)
	}
	// Prometheus's own checker accepts the scrape configuration as rendered.
	promtool := tool(t, "promtool")
	js, err := json.Marshal(map[string]any{"scrape_configs": sc})
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(pf, js, 0o600); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	output(t, exec.Command(promtool, "check", "config", pf))

	wantCreds := []string{"pagerduty-routing-key:/run/secrets/pd", "chat-webhook-url:/run/secrets/chat", "smtp-password:/run/secrets/smtp"}
	if !slices.Equal(m.LoadCredential, wantCreds) {
		t.Errorf("LoadCredential %q, want %q", m.LoadCredential, wantCreds)
	}
	cfg := *m.Prometheus.AlertmanagerConfig
	for _, want := range []string{
		"api_url_file: /run/credentials/alertmanager.service/chat-webhook-url",
		`"auth_password_file":"/run/credentials/alertmanager.service/smtp-password"`,
		`"to":"ops@example.org"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("Alertmanager config lacks %s:\n%s", want, cfg)
		}
	}
	for _, secret := range []string{"/run/secrets/chat", "/run/secrets/smtp", "/run/secrets/alertmanager/"} {
		if strings.Contains(cfg, secret) {
			t.Errorf("Alertmanager config names %s instead of the credential", secret)
		}
	}
	if len(m.Warnings) != 0 || failing(m.Assertions) != 0 {
		t.Errorf("warnings %q, assertions %v with a notifier set", m.Warnings, m.Assertions)
	}
	checkAlertmanagerConfig(t, cfg)

	// Only e-mail, without a password: no chat block, no credential for it.
	m = evalModules(t, `{ enable = true; }`, `{ enable = true; pagerduty.routingKeyFile = "/run/secrets/pd"; warnings.email.to = "ops@example.org"; }`, false)
	cfg = *m.Prometheus.AlertmanagerConfig
	if strings.Contains(cfg, "slack_configs") || !strings.Contains(cfg, "email_configs") || len(m.LoadCredential) != 1 {
		t.Errorf("e-mail only: credentials %q, config:\n%s", m.LoadCredential, cfg)
	}
	checkAlertmanagerConfig(t, cfg)

	// No notifier: the configuration still loads, and NixOS warns that
	// warnings reach nobody.
	m = evalModules(t, `{ enable = true; }`, `{ enable = true; pagerduty.routingKeyFile = "/run/secrets/pd"; }`, false)
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "reach nobody") {
		t.Errorf("no notifier: warnings %q", m.Warnings)
	}
	checkAlertmanagerConfig(t, *m.Prometheus.AlertmanagerConfig)

	// Secrets in the Nix store fail the assertions.
	for _, c := range []string{
		`{ enable = true; pagerduty.routingKeyFile = "/run/secrets/pd"; warnings.chat.webhookUrlFile = "/nix/store/x-url"; }`,
		`{ enable = true; pagerduty.routingKeyFile = "/run/secrets/pd"; warnings.email = { to = "a@b"; passwordFile = "/nix/store/x-pw"; }; }`,
	} {
		if m := evalModules(t, `{ enable = true; }`, c, false); failing(m.Assertions) != 1 {
			t.Errorf("%s: assertions %v, want one failing", c, m.Assertions)
		}
	}
}
