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
	"github.com/pantheros/monitoring/rules/datadog/apply"
)

type promAlert struct {
	Name     string
	Severity string
	DataLoss bool
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
					out = append(out, promAlert{Name: r.Alert, Severity: r.Labels["severity"], DataLoss: r.Labels["data_loss"] == "true", File: f})
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
	query    string
	class    string // of its {{panther.notify.<class>}}
	dataLoss bool   // tagged data_loss:true
}

// handleRe finds a notification handle (@pagerduty-x, @slack-y, @user@host).
var handleRe = regexp.MustCompile(`@[A-Za-z][A-Za-z0-9_.-]*`)

// isMatchRe finds Datadog's {{#is_exact_match "role.name" "a" ...}}...
// {{/is_exact_match}} and its negation {{^is_exact_match ...}}.
var isMatchRe = regexp.MustCompile(`(?s)\{\{([#^])is_exact_match "role\.name"((?: "[^"]*")+)\}\}(.*?)\{\{/is_exact_match\}\}`)

// notifiedFor returns what a message sends to a group whose role tag is
// role, outside the alert-state blocks: the is_exact_match blocks evaluated.
func notifiedFor(msg, role string) string {
	msg = isMatchRe.ReplaceAllStringFunc(msg, func(b string) string {
		m := isMatchRe.FindStringSubmatch(b)
		match := strings.Contains(m[2], `"`+role+`"`)
		if match == (m[1] == "#") {
			return m[3]
		}
		return ""
	})
	return blockRe.ReplaceAllString(msg, "")
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
		// The notification handles are a placeholder of the monitor's class,
		// outside the conditional blocks, so that recoveries reach them too;
		// panther-datadog fills it in from the handles of notify.yaml.
		outside := blockRe.ReplaceAllString(mf.message, "")
		if !strings.Contains(mf.message, "{{#is_recovery}}") {
			t.Errorf("%s: no {{#is_recovery}} section", f)
		}
		if h := handleRe.FindAllString(mf.message, -1); len(h) > 0 {
			t.Errorf("%s: handles %v written in the message: use {{panther.notify.<class>}} (rules/datadog/notify.yaml sets the handles)", f, h)
		}
		all := apply.PlaceholderRe.FindAllStringSubmatch(mf.message, -1)
		out := apply.PlaceholderRe.FindAllStringSubmatch(outside, -1)
		if len(all) != 1 || len(out) != 1 {
			t.Errorf("%s: want exactly one {{panther.notify.<class>}}, outside the {{#...}} blocks; found %d (%d outside)", f, len(all), len(out))
		} else {
			mf.class = out[0][1]
		}
		for _, tag := range m.Tags {
			if tag == "data_loss:true" {
				mf.dataLoss = true
			}
		}
		mf.query = m.Query
		switch mf.severity {
		case "critical", "warning":
		default:
			t.Errorf("%s: severity tag %q, want critical or warning", f, mf.severity)
		}
		byAlert[mf.alert] = mf
	}

	// The handles of notify.yaml, as the command fills them in, follow the
	// role policy.
	notify, err := apply.LoadNotify("notify.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := notify.Validate(); err != nil {
		t.Fatalf("notify.yaml: %v", err)
	}
	ungrouped := 0
	for _, mf := range byAlert {
		if mf.class == "" {
			continue
		}
		msg, err := notify.Expand(mf.message, mf.query)
		if err != nil {
			t.Errorf("%s: %v", mf.path, err)
			continue
		}
		for _, role := range apply.Roles {
			pages := strings.Contains(notifiedFor(msg, role), "@pagerduty-")
			want := mf.class == "data_loss" || (mf.class == "critical" && role == "server")
			if mf.class == "critical" && role == "workstation" && !apply.GroupsByRole(mf.query) {
				// Without a role group the server's handles are used for
				// every host: paging too much rather than too little.
				want, ungrouped = true, ungrouped+1
			}
			if pages != want {
				t.Errorf("%s (%s) on a %s: pages %v, want %v; message as sent:\n%s", mf.path, mf.class, role, pages, want, msg)
			}
		}
	}
	if ungrouped > 0 {
		t.Logf("%d critical monitors are not grouped by role: they page for workstations too", ungrouped)
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
		if mf.dataLoss != a.DataLoss {
			t.Errorf("%s: tagged data_loss:true %v, the alert's data_loss label %v", mf.path, mf.dataLoss, a.DataLoss)
		}
		wantClass := a.Severity
		if a.DataLoss {
			wantClass = "data_loss"
		}
		if mf.class != "" && mf.class != wantClass {
			t.Errorf("%s: notifies {{panther.notify.%s}}, the alert (severity %s, data_loss %v) wants {{panther.notify.%s}}",
				mf.path, mf.class, a.Severity, a.DataLoss, wantClass)
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
