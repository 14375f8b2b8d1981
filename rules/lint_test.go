package rules

// An offline linter for the Prometheus rules, doing what cloudflare/pint
// does without a live Prometheus: the rules load with Prometheus's own rule
// parser, every alert carries what on-call needs, every template renders,
// every metric exists, rate() is only taken of counters, ranges span at
// least four scrapes, and every alert has a promtool unit test that shows it
// firing with its exact labels and annotations and one where it must not.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/template"
	"go.yaml.in/yaml/v2"

	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/all"
	"github.com/pantheros/monitoring/internal/promqlnames"
)

const (
	rulesGlob = "prometheus/*.rules.yml"
	testsGlob = "prometheus/tests/*_test.yml"
	runbooks  = "../docs/runbooks.md"
	// The scrape interval the rules assume; ranges must cover four scrapes.
	scrapeInterval = 15 * time.Second
	minRange       = 4 * scrapeInterval
)

// Series Prometheus makes itself for every target.
var synthetic = map[string]bool{
	"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true,
	"scrape_samples_post_metric_relabeling": true, "scrape_series_added": true,
}

var validSeverity = map[string]bool{"warning": true, "critical": true}

// errorfer is where checks report: *testing.T, or problems.
type errorfer interface {
	Errorf(format string, args ...any)
}

// problems collects what a check reports.
type problems []string

func (p *problems) Errorf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

type rule struct {
	file  string
	group string
	rulefmt.Rule
	expr parser.Expr
}

func (r rule) String() string {
	if r.Alert != "" {
		return fmt.Sprintf("%s: alert %s", r.file, r.Alert)
	}
	return fmt.Sprintf("%s: record %s", r.file, r.Record)
}

func loadRules(t *testing.T, glob string) []rule {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files match %s: %v", glob, err)
	}
	p := parser.NewParser(parser.Options{})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out []rule
	for _, f := range files {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, logger)
		for _, err := range errs {
			t.Errorf("%s: %v", f, err)
		}
		if groups == nil {
			continue
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				e, err := p.ParseExpr(r.Expr)
				if err != nil {
					t.Errorf("%s: %s: %v", f, r.Expr, err)
					continue
				}
				out = append(out, rule{file: f, group: g.Name, Rule: r, expr: e})
			}
		}
	}
	return out
}

func catalogByName() map[string]*collector.Metric {
	m := map[string]*collector.Metric{}
	for _, c := range collector.Catalog() {
		m[c.Name] = c
	}
	return m
}

// selectors returns the metric names an expression selects, selectors
// without a metric name left out.
func selectors(e parser.Expr) []string {
	var names []string
	for _, n := range promqlnames.Of(e) {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

func TestRulesLoadAndAlertsAreComplete(t *testing.T) {
	rules := loadRules(t, rulesGlob)
	checkAlertsComplete(rules, runbookAnchors(t), t)
}

func checkAlertsComplete(rules []rule, anchors map[string]bool, e errorfer) {
	alerts := 0
	for _, r := range rules {
		if r.Alert == "" {
			if !regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`).MatchString(r.Record) {
				e.Errorf("%s: recording rule name not level:metric:operations", r)
			}
			continue
		}
		alerts++
		if r.For == 0 {
			e.Errorf("%s: no `for`", r)
		}
		if !validSeverity[r.Labels["severity"]] {
			e.Errorf("%s: severity %q, want warning or critical", r, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				e.Errorf("%s: no %s annotation", r, a)
			}
		}
		u, err := url.Parse(r.Annotations["runbook_url"])
		switch {
		case err != nil:
			e.Errorf("%s: runbook_url: %v", r, err)
		case !strings.HasSuffix(u.Path, "/docs/runbooks.md"):
			e.Errorf("%s: runbook_url %q does not point into docs/runbooks.md", r, u)
		case !anchors[u.Fragment]:
			e.Errorf("%s: runbook_url anchor #%s is no section of docs/runbooks.md", r, u.Fragment)
		}
	}
	if alerts == 0 {
		e.Errorf("no alerts loaded")
	}
}

// runbookAnchors returns the GitHub anchors of the headings of runbooks.md.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(runbooks)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		anchors[githubAnchor(strings.TrimLeft(line, "# "))] = true
	}
	return anchors
}

// githubAnchor is the fragment GitHub gives a heading: lower case, spaces
// to dashes, punctuation other than - and _ dropped.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every template expands with Prometheus's own template engine, with the
// labels the expression can yield, and names only labels that exist.
func TestAnnotationTemplatesRender(t *testing.T) {
	rules := loadRules(t, rulesGlob)
	checkTemplates(rules, t)
}

func checkTemplates(rules []rule, e errorfer) {
	cat := catalogByName()
	recorded := recordedLabels(rules, cat)
	labelRef := regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	queryFn := func(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
		qe, err := parser.NewParser(parser.Options{}).ParseExpr(q)
		if err != nil {
			return nil, fmt.Errorf("query %q in template: %w", q, err)
		}
		for _, n := range selectors(qe) {
			if _, ok := recorded[n]; cat[n] == nil && !ok && !synthetic[n] {
				return nil, fmt.Errorf("query %q in template: %s is neither exported nor recorded", q, n)
			}
		}
		return promql.Vector{{F: 0.5}}, nil
	}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		have := map[string]bool{"job": true, "instance": true}
		for _, n := range selectors(r.expr) {
			for _, l := range metricLabels(n, cat, recorded) {
				have[l] = true
			}
		}
		for k := range r.Labels {
			have[k] = true
		}
		labels := map[string]string{}
		for l := range have {
			labels[l] = "x-" + l
		}
		for name, text := range r.Annotations {
			for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
				if !have[m[1]] {
					e.Errorf("%s: annotation %s uses $labels.%s, which the expression never yields", r, name, m[1])
				}
			}
			defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
			data := template.AlertTemplateData(labels, map[string]string{}, "http://prometheus.example", promql.Sample{F: 0.5})
			exp := template.NewTemplateExpander(context.Background(), defs+text, "__alert_"+r.Alert, data,
				model.Now(), queryFn, &url.URL{Scheme: "http", Host: "prometheus.example"}, nil)
			out, err := exp.Expand()
			if err != nil {
				e.Errorf("%s: annotation %s: %v", r, name, err)
				continue
			}
			if strings.Contains(out, "<no value>") || strings.TrimSpace(out) == "" {
				e.Errorf("%s: annotation %s renders to %q", r, name, out)
			}
		}
	}
}

// recordedLabels maps each recorded series to the labels its expression can
// carry (the union of the labels of what it selects, minus those
// aggregated away is not tracked: a superset).
func recordedLabels(rules []rule, cat map[string]*collector.Metric) map[string][]string {
	out := map[string][]string{}
	for _, r := range rules {
		if r.Record == "" {
			continue
		}
		set := map[string]bool{"job": true, "instance": true}
		for _, n := range selectors(r.expr) {
			for _, l := range metricLabels(n, cat, out) {
				set[l] = true
			}
		}
		for l := range set {
			out[r.Record] = append(out[r.Record], l)
		}
	}
	return out
}

func metricLabels(name string, cat map[string]*collector.Metric, recorded map[string][]string) []string {
	if m, ok := cat[name]; ok {
		return m.Labels
	}
	return recorded[name]
}

// Every metric an expression names is exported by a collector, recorded by
// a rule, or made by Prometheus itself.
func TestRuleMetricsExist(t *testing.T) {
	rules := loadRules(t, rulesGlob)
	checkMetricsExist(rules, t)
}

func checkMetricsExist(rules []rule, e errorfer) {
	cat := catalogByName()
	recorded := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	for _, r := range rules {
		for _, n := range selectors(r.expr) {
			if cat[n] == nil && !recorded[n] && !synthetic[n] {
				e.Errorf("%s: %s is neither exported (collector.Catalog) nor recorded by a rule", r, n)
			}
		}
	}
}

// Functions that only make sense on counters, and those that only make
// sense on gauges.
var (
	counterFuncs = map[string]bool{"rate": true, "irate": true, "increase": true, "resets": true}
	gaugeFuncs   = map[string]bool{"deriv": true, "predict_linear": true, "delta": true, "idelta": true}
)

// No rate() over a gauge, no deriv() over a counter, no range shorter than
// four scrape intervals.
func TestRuleFunctionsAndRanges(t *testing.T) {
	rules := loadRules(t, rulesGlob)
	checkFunctionsAndRanges(rules, t)
}

func checkFunctionsAndRanges(rules []rule, e errorfer) {
	cat := catalogByName()
	for _, r := range rules {
		parser.Inspect(r.expr, func(n parser.Node, _ []parser.Node) error {
			switch n := n.(type) {
			case *parser.MatrixSelector:
				if n.Range < minRange {
					e.Errorf("%s: range %s is shorter than four scrape intervals (%s)", r, model.Duration(n.Range), model.Duration(minRange))
				}
			case *parser.SubqueryExpr:
				if n.Range < minRange {
					e.Errorf("%s: subquery range %s is shorter than %s", r, model.Duration(n.Range), model.Duration(minRange))
				}
			case *parser.Call:
				if !counterFuncs[n.Func.Name] && !gaugeFuncs[n.Func.Name] {
					return nil
				}
				for _, arg := range n.Args {
					ms, ok := arg.(*parser.MatrixSelector)
					if !ok {
						continue
					}
					for _, name := range selectors(ms) {
						counter := strings.HasSuffix(name, "_total")
						if m := cat[name]; m != nil {
							counter = m.Type == prometheus.CounterValue
						}
						if counterFuncs[n.Func.Name] && !counter {
							e.Errorf("%s: %s() over %s, which is not a counter", r, n.Func.Name, name)
						}
						if gaugeFuncs[n.Func.Name] && counter {
							e.Errorf("%s: %s() over counter %s (use rate or increase)", r, n.Func.Name, name)
						}
					}
				}
			}
			return nil
		})
	}
}

// The host labels survive every rule: no selector depends on the scrape
// job's name (any job name works; panther-exporter targets are known by
// their role label), and every aggregation keeps role, so that every alert
// can be routed by role (docs/runbooks.md#alert-policy-by-role).
func TestRulesKeepRoleAndIgnoreJobName(t *testing.T) {
	rules := loadRules(t, rulesGlob)
	checkHostLabels(rules, t)
}

func checkHostLabels(rules []rule, e errorfer) {
	for _, r := range rules {
		parser.Inspect(r.expr, func(n parser.Node, _ []parser.Node) error {
			switch n := n.(type) {
			case *parser.VectorSelector:
				for _, m := range n.LabelMatchers {
					if m.Name == "job" {
						e.Errorf("%s: selects on the job label (%s): the rules must work with any scrape job name", r, m)
					}
				}
			case *parser.AggregateExpr:
				if n.Without {
					if slicesContains(n.Grouping, "role") {
						e.Errorf("%s: %s without (role) drops the role label", r, n.Op)
					}
					return nil
				}
				if slicesContains(n.Grouping, "instance") && !slicesContains(n.Grouping, "role") {
					e.Errorf("%s: %s by (%s) drops the role label: group by role too", r, n.Op, strings.Join(n.Grouping, ", "))
				}
			}
			return nil
		})
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The shape of promtool's unit test files, as far as this check needs it.
type promtoolTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// Every alert has a promtool test where it fires with its severity and
// every annotation spelled out, and one where it must stay silent.
func TestEveryAlertHasPromtoolTests(t *testing.T) {
	rules := loadRules(t, rulesGlob)
	files, err := filepath.Glob(testsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests match %s", testsGlob)
	}
	fires := map[string]bool{}
	silent := map[string]bool{}
	covered := map[string]bool{} // rule files some test loads
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promtoolTests
		if err := yaml.UnmarshalStrict(b, &pt); err != nil {
			// Other keys (input_series, promql_expr_test...) are fine; parse loosely.
			if err := yaml.Unmarshal(b, &pt); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
		}
		for _, rf := range pt.RuleFiles {
			covered[filepath.Clean(filepath.Join(filepath.Dir(f), rf))] = true
		}
		for _, tc := range pt.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname] = true
					continue
				}
				complete := true
				for _, ea := range at.ExpAlerts {
					if ea.ExpLabels["severity"] == "" || ea.ExpAnnotations["summary"] == "" ||
						ea.ExpAnnotations["description"] == "" || ea.ExpAnnotations["runbook_url"] == "" {
						complete = false
					}
				}
				if complete {
					fires[at.Alertname] = true
				} else {
					t.Errorf("%s: %q at %s: expected alerts must spell out severity, summary, description and runbook_url", f, at.Alertname, at.EvalTime)
				}
			}
		}
	}
	var missing []string
	for _, r := range rules {
		if !covered[filepath.Clean(r.file)] {
			missing = append(missing, fmt.Sprintf("%s: no promtool test file loads it", r.file))
		}
		if r.Alert == "" {
			continue
		}
		if !fires[r.Alert] {
			missing = append(missing, fmt.Sprintf("%s: no promtool test where it fires", r))
		}
		if !silent[r.Alert] {
			missing = append(missing, fmt.Sprintf("%s: no promtool test where it must not fire", r))
		}
	}
	sort.Strings(missing)
	for _, m := range dedup(missing) {
		t.Error(m)
	}
}

func dedup(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// The linter itself catches what it should: testdata/bad.rules.yml has
// one rule for each kind of mistake, and each check reports it.
func TestLinterCatchesMistakes(t *testing.T) {
	rules := loadRules(t, "testdata/bad.rules.yml")
	var p problems
	checkAlertsComplete(rules, runbookAnchors(t), &p)
	checkTemplates(rules, &p)
	checkMetricsExist(rules, &p)
	checkFunctionsAndRanges(rules, &p)
	checkHostLabels(rules, &p)
	all := strings.Join(p, "\n")
	for _, want := range []string{
		"alert NoFor: no `for`",
		`alert BadSeverity: severity "page", want warning or critical`,
		"alert NoRunbook: no runbook_url annotation",
		"alert NoDescription: no description annotation",
		"alert MissingSection: runbook_url anchor #nosuchsection is no section",
		"alert BadTemplate: annotation summary:",
		"alert WrongLabel: annotation summary uses $labels.mountpoint",
		"alert UnknownMetric: panther_no_such_metric is neither exported",
		"alert UnknownMetricInTemplate: annotation description:",
		"alert RateOfGauge: rate() over panther_memory_available_bytes, which is not a counter",
		"alert DerivOfCounter: deriv() over counter panther_cpu_seconds_total",
		"alert ShortRange: range 30s is shorter than four scrape intervals",
		"record badname: recording rule name not level:metric:operations",
		`alert JobSelector: selects on the job label (job="panther")`,
		"alert DropsRole: max by (job, instance) drops the role label",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("linter did not report %q; it reported:\n%s", want, all)
		}
	}
	// And nothing about the one good rule.
	if strings.Contains(all, "alert Good:") {
		t.Errorf("linter reported the good rule:\n%s", all)
	}
	if got := githubAnchor("BtrfsDeviceErrorsGrowing"); got != "btrfsdeviceerrorsgrowing" {
		t.Errorf("anchor = %q", got)
	}
	if got := githubAnchor("Textfile stale (custom jobs)"); got != "textfile-stale-custom-jobs" {
		t.Errorf("anchor = %q", got)
	}
}
