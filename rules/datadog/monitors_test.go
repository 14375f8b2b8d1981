package datadog_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v2"

	_ "github.com/pantheros/monitoring/exporter/collector/all" // fill the catalog
	"github.com/pantheros/monitoring/exporter/datadog/ddcheck"
)

type promAlert struct {
	Name     string
	Severity string
	File     string
}

func promAlerts(t *testing.T) []promAlert {
	t.Helper()
	files, err := filepath.Glob("../prometheus/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Prometheus rule files in ../prometheus: %v", err)
	}
	var out []promAlert
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert  string            `yaml:"alert"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, promAlert{Name: r.Alert, Severity: r.Labels["severity"], File: f})
				}
			}
		}
	}
	return out
}

func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (!unicode.IsUpper(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

type monitorFile struct {
	path     string
	alert    string
	severity string
	message  string
}

// blockRe matches {{#x}}...{{/x}} sections of a monitor message.
var blockRe = regexp.MustCompile(`(?s)\{\{#(\w+)\}\}.*?\{\{/(\w+)\}\}`)

func TestMonitors(t *testing.T) {
	files, err := filepath.Glob("monitors/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no monitors: %v", err)
	}
	emitted := ddcheck.Emitted()
	byAlert := map[string]monitorFile{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ddcheck.DecodeMonitor(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		// The threshold of the query is the critical one.
		_, qt, err := ddcheck.QueryThreshold(m.Query)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if th := m.GetOptions().Thresholds; th == nil || th.Critical == nil || *th.Critical != qt {
			t.Errorf("%s: options.thresholds.critical %v differs from the query's %v", f, th, qt)
		}
		// Every metric is sent by the sink (or the Agent's).
		if ms := ddcheck.QueryMetrics(m.Query); len(ms) == 0 {
			t.Errorf("%s: no metric found in query %q", f, m.Query)
		}
		if bad := ddcheck.UnknownMetrics(m.Query, emitted); len(bad) > 0 {
			t.Errorf("%s: queries metrics the sink does not send: %v", f, bad)
		}
		mf := monitorFile{path: f, message: m.GetMessage()}
		for _, tag := range m.Tags {
			if v, ok := strings.CutPrefix(tag, "alert:"); ok {
				mf.alert = v
			}
			if v, ok := strings.CutPrefix(tag, "severity:"); ok {
				mf.severity = v
			}
		}
		if mf.alert == "" {
			t.Errorf("%s: no alert:<AlertName> tag", f)
			continue
		}
		if prev, dup := byAlert[mf.alert]; dup {
			t.Errorf("%s and %s both mirror %s", prev.path, f, mf.alert)
		}
		byAlert[mf.alert] = mf
		if want := filepath.Join("monitors", snake(mf.alert)+".json"); f != want {
			t.Errorf("%s: mirrors %s, so should be named %s", f, mf.alert, want)
		}
		// Notification handles stand outside the conditional blocks, so that
		// recoveries reach them too.
		outside := blockRe.ReplaceAllString(mf.message, "")
		if !strings.Contains(mf.message, "{{#is_recovery}}") {
			t.Errorf("%s: no {{#is_recovery}} section", f)
		}
		hasPD := strings.Contains(outside, "@pagerduty-")
		if inside := strings.Count(mf.message, "@pagerduty-") - strings.Count(outside, "@pagerduty-"); inside > 0 {
			t.Errorf("%s: a @pagerduty- handle inside a {{#...}} block: the incident would not resolve", f)
		}
		switch mf.severity {
		case "critical":
			if !hasPD {
				t.Errorf("%s: critical monitor without a @pagerduty- handle outside the {{#...}} blocks", f)
			}
		case "warning":
			if hasPD {
				t.Errorf("%s: warning monitor pages PagerDuty", f)
			}
		default:
			t.Errorf("%s: severity tag %q, want critical or warning", f, mf.severity)
		}
	}

	// One monitor per Prometheus alert, same severity; no monitor without an alert.
	alerts := promAlerts(t)
	seen := map[string]bool{}
	for _, a := range alerts {
		seen[a.Name] = true
		mf, ok := byAlert[a.Name]
		if !ok {
			t.Errorf("alert %s (%s) has no Datadog monitor: add monitors/%s.json tagged alert:%s",
				a.Name, a.File, snake(a.Name), a.Name)
			continue
		}
		if mf.severity != a.Severity {
			t.Errorf("%s: severity %q, the alert's is %q", mf.path, mf.severity, a.Severity)
		}
	}
	for name, mf := range byAlert {
		if !seen[name] {
			t.Errorf("%s mirrors %s, which no Prometheus rule defines", mf.path, name)
		}
	}
}

// The checker itself catches what it is for.
func TestCheckerRejects(t *testing.T) {
	for name, body := range map[string]string{
		"unknown key":  `{"name":"x","type":"query alert","query":"avg(last_5m):avg:panther.load1{*} > 1","options":{"thresholds":{"critical":1}},"bogus":1}`,
		"invalid enum": `{"name":"x","type":"no such type","query":"avg(last_5m):avg:panther.load1{*} > 1"}`,
		"nested key":   `{"name":"x","type":"query alert","query":"q > 1","options":{"thresholds":{"critical":1,"nope":2}}}`,
	} {
		if _, err := ddcheck.DecodeMonitor([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if bad := ddcheck.UnknownMetrics("avg(last_5m):avg:panther.no_such_metric{*} > 1", ddcheck.Emitted()); len(bad) != 1 {
		t.Errorf("unknown metric not reported: %v", bad)
	}
	if bad := ddcheck.UnknownMetrics("avg(last_5m):avg:panther.cpu.seconds{*} > 1", ddcheck.Emitted()); len(bad) != 1 {
		t.Errorf("a metric the default exclude leaves out was accepted: %v", bad)
	}
}
