package nixos

// What a host's configuration gets wrong, the module system says: every
// assertion and warning the modules define fired once by a bad
// combination, its message checked and never repeating a secret; a
// misspelt option, a wrong type and two clashing definitions refused by
// nixpkgs' lib.evalModules as nixos-rebuild refuses them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// secretLiteral is what a user pastes where a secret file's path belongs.
const secretLiteral = "s3cretPASTEDinsteadOfAPath0123456789"

type badCombination struct {
	name string
	args []string // --arg NAME EXPR pairs for testdata/eval.nix
	want string   // the start of the one message it must produce
}

// badCombinations: one per assertion and warning of the modules
// (TestEveryAssertionFires checks that none is missing).
var badCombinations = []badCombination{
	// module.nix
	{"collector both enabled and disabled", []string{"exporter", `{ enable = true; enabledCollectors = [ "timex" ]; disabledCollectors = [ "timex" ]; }`},
		"services.panther-exporter: a collector is both enabled and disabled."},
	{"role as a Datadog tag", []string{"exporter", `{ enable = true; datadog.tags = [ "role:server" ]; }`},
		"services.panther-exporter: set the role with services.panther-exporter.role"},
	// datadog.nix
	{"Agent without its key", []string{"exporter", `{ enable = true; datadog.agent.enable = true; }`},
		"services.panther-exporter.datadog.agent.apiKeyFile must be set"},
	{"Agent key pasted", []string{"exporter", `{ enable = true; datadog.agent = { enable = true; apiKeyFile = "` + secretLiteral + `"; }; }`},
		"services.panther-exporter.datadog.agent.apiKeyFile must be the path of a file"},
	{"OpenMetrics route over TLS", []string{"exporter", `{ enable = true; webConfigFile = "/etc/panther/web.yml"; datadog.agent = { enable = true; apiKeyFile = "/run/opnix/dd"; route = "openmetrics"; }; }`},
		`services.panther-exporter.datadog.agent.route = "openmetrics" scrapes plain HTTP`},
	// fleet.nix
	{"push without a URL", []string{"exporter", `{ enable = true; push.enable = true; }`},
		"services.panther-exporter.push.url must be the http(s):// remote-write URL"},
	{"push URL without a scheme", []string{"exporter", `{ enable = true; push = { enable = true; url = "mon.lan:8428"; }; }`},
		"services.panther-exporter.push.url must be the http(s):// remote-write URL"},
	{"push buffer in words", []string{"exporter", `{ enable = true; push = { enable = true; url = "http://m/api/v1/write"; bufferDuration = "7 days"; }; }`},
		"services.panther-exporter.push.bufferDuration must be"},
	{"push every 0s", []string{"exporter", `{ enable = true; push = { enable = true; url = "http://m/api/v1/write"; scrapeInterval = "0s"; }; }`},
		"services.panther-exporter.push.scrapeInterval must be"},
	{"push user without password", []string{"exporter", `{ enable = true; push = { enable = true; url = "http://m/api/v1/write"; basicAuth.username = "agent"; }; }`},
		"services.panther-exporter.push.basicAuth: set both username and passwordFile"},
	{"push password pasted", []string{"exporter", `{ enable = true; push = { enable = true; url = "http://m/api/v1/write"; basicAuth = { username = "a"; passwordFile = "` + secretLiteral + `"; }; }; }`},
		"services.panther-exporter.push.basicAuth.passwordFile must be the path of a file"},
	{"half another store", []string{"monitoring", `{ enable = true; fleet = { enable = true; store.writeUrl = "http://vminsert:8480/insert/0/prometheus/api/v1/write"; }; }`},
		"services.panther-monitoring.fleet.store: set both writeUrl and queryUrl"},
	// monitoring.nix
	{"routing key pasted", []string{"monitoring", `{ enable = true; pagerduty.routingKeyFile = "` + secretLiteral + `"; warnings.chat.webhookUrlFile = "/run/opnix/chat"; }`},
		"services.panther-monitoring.pagerduty.routingKeyFile must be the path of a file"},
	{"Grafana secret key pasted", []string{"monitoring", `{ enable = true; grafana.secretKeyFile = "` + secretLiteral + `"; }`},
		"services.panther-monitoring.grafana.secretKeyFile must be the path of a file"},
	{"Grafana without a secret key", []string{"monitoring", `{ enable = true; grafana.secretKeyFile = null; }`},
		"services.panther-monitoring.grafana.secretKeyFile must be set: Grafana has no default secret_key"},
	{"Grafana admin password pasted", []string{"monitoring", `{ enable = true; grafana.adminPasswordFile = "` + secretLiteral + `"; }`},
		"services.panther-monitoring.grafana.adminPasswordFile must be the path of a file"},
	{"chat webhook pasted", []string{"monitoring", `{ enable = true; warnings.chat.webhookUrlFile = "` + secretLiteral + `"; }`},
		"services.panther-monitoring.warnings.chat.webhookUrlFile must be the path of a file"},
	{"SMTP password pasted", []string{"monitoring", `{ enable = true; warnings.email = { to = "oncall@example.org"; from = "am@example.org"; smarthost = "smtp.example.org:587"; username = "am"; passwordFile = "` + secretLiteral + `"; }; }`},
		"services.panther-monitoring.warnings.email.passwordFile must be the path of a file"},
	{"pulled host without an address", []string{"monitoring", `{ enable = true; hosts.a = { role = "server"; }; }`},
		"services.panther-monitoring.hosts: a host that does not push needs an address (host:port of its exporter): a."},
	{"pages but no warnings notifier", []string{"monitoring", `{ enable = true; pagerduty.routingKeyFile = "/run/opnix/pd"; }`},
		"services.panther-monitoring: no warnings notifier"},
	// logs.nix
	{"upload URL with a path", []string{"logs", `{ upload = { enable = true; url = "http://mon.lan:9428/insert"; }; }`},
		"services.panther-logs.upload.url must be a base URL"},
	{"journal not persisted", []string{"logs", `{ upload = { enable = true; url = "http://mon.lan:9428"; }; }`,
		"persistence", `{ "/persist" = { directories = [ "/var/lib/nixos" ]; }; }`},
		"services.panther-logs: environment.persistence is set but keeps neither /var/log/journal nor /var/log"},
}

// definedMessages is the start of every assertion and warning message in
// the modules' source: message = "..." literals, secrets.assertion NAME
// calls, and the warnings = optional (...) "..." strings.
func definedMessages(t *testing.T) []string {
	t.Helper()
	literal := regexp.MustCompile(`message = "((?:[^"$\\]|\\.){20,}?)(?:\$\{|")`)
	secret := regexp.MustCompile(`secrets\.assertion "([^"]+)"`)
	warning := regexp.MustCompile(`warnings = optional \([^\n]*\n\s*"((?:[^"$\\]|\\.){20,}?)(?:\$\{|")`)
	var out []string
	defined := 0
	for _, f := range []string{"module.nix", "monitoring.nix", "datadog.nix", "logs.nix", "fleet.nix", "sandbox.nix", "secrets.nix", "fleet-store.nix", "hardening.nix"} {
		src := read(t, f)
		if f != "secrets.nix" { // (its own message is the one of secrets.assertion)
			defined += strings.Count(src, "message =")
		}
		defined += strings.Count(src, "secrets.assertion \"") + strings.Count(src, "warnings = optional")
		for _, re := range []*regexp.Regexp{literal, warning} {
			for _, m := range re.FindAllStringSubmatch(src, -1) {
				out = append(out, strings.ReplaceAll(m[1], `\"`, `"`))
			}
		}
		for _, m := range secret.FindAllStringSubmatch(src, -1) {
			out = append(out, m[1]+" must be the path of a file")
		}
	}
	if len(out) != defined {
		t.Fatalf("read %d messages of the %d the modules define: a message this scan does not understand (write it as message = \"...\")", len(out), defined)
	}
	return out
}

func TestEveryAssertionFires(t *testing.T) {
	defined := definedMessages(t)
	produced := make([][]string, len(badCombinations))
	// (The group returns when its parallel subtests have all run.)
	t.Run("each", func(t *testing.T) {
		for i, c := range badCombinations {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				var e struct{ Failed, Warnings []string }
				if err := json.Unmarshal(evalNix(t, append(argPairs(c.args), "--arg", "podman", "false")...), &e); err != nil {
					t.Fatal(err)
				}
				all := append(e.Failed, e.Warnings...)
				produced[i] = all
				var mine []string
				for _, m := range all {
					if strings.HasPrefix(m, c.want) {
						mine = append(mine, m)
					}
					if strings.Contains(m, secretLiteral) {
						t.Errorf("a message repeats the secret:\n%s", m)
					}
				}
				if len(mine) != 1 {
					t.Errorf("%d messages start with %q, want 1; all: %q", len(mine), c.want, all)
				}
			})
		}
	})
	t.Run("none missing", func(t *testing.T) {
		for _, d := range defined {
			found := false
			for _, msgs := range produced {
				for _, m := range msgs {
					found = found || strings.HasPrefix(m, d)
				}
			}
			if !found {
				t.Errorf("no bad combination in badCombinations fires the message %q", d)
			}
		}
	})
}

// argPairs turns NAME, EXPR, NAME, EXPR into --arg pairs.
func argPairs(kv []string) []string {
	var out []string
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, "--arg", kv[i], kv[i+1])
	}
	return out
}

// TestModuleSystemRefuses: what only the real module system catches.
func TestModuleSystemRefuses(t *testing.T) {
	for _, c := range []struct{ name, extra, want string }{
		{"misspelt option of ours", `{ services.panther-exporter.prot = 1; }`,
			"The option `services.panther-exporter.prot' does not exist."},
		{"misspelt option of nixpkgs", `{ services.datadog-agent.apiKeyFlie = "/run/opnix/dd"; }`,
			"The option `services.datadog-agent.apiKeyFlie' does not exist."},
		{"wrong type", `{ services.panther-exporter.port = "9567"; }`,
			"A definition for option `services.panther-exporter.port' is not of type `16 bit unsigned integer"},
		{"two definitions at one priority", `{ imports = [ { services.panther-exporter.listenAddress = "10.0.0.1"; } { services.panther-exporter.listenAddress = "10.0.0.2"; } ]; }`,
			"The option `services.panther-exporter.listenAddress' has conflicting definition values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(tool(t, "nix-instantiate"), "--eval", "--strict", "--json", "testdata/eval.nix",
				"--arg", "nixpkgsLib", nixpkgsLib(t), "--arg", "exporter", `{ enable = true; }`, "--arg", "extra", c.extra)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("evaluated (%v): %s", err, out)
			}
			if !strings.Contains(stderr.String(), "error: "+c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, stderr.String())
			}
		})
	}
}
