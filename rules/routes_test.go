package rules

// The alert policy by role, checked end to end on paper: for every alert of
// rules/prometheus and each role, Alertmanager's own router (`amtool config
// routes test` on rules/alertmanager/alertmanager.yml) picks the receiver
// that the table in docs/runbooks.md#alert-policy-by-role says.

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/pantheros/monitoring/internal/testenv"
)

const alertmanagerExample = "alertmanager/alertmanager.yml"

// roleScope returns what an alert's expression says of role: the roles it
// is limited to by an equality matcher on every selector of up (nil: any),
// and whether its alerts carry a role label at all (absent() yields none).
func roleScope(e parser.Expr) (only []string, carriesRole bool) {
	if c, ok := e.(*parser.Call); ok && (c.Func.Name == "absent" || c.Func.Name == "absent_over_time") {
		return nil, false
	}
	seen := map[string]bool{}
	all := true
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		found := false
		for _, m := range vs.LabelMatchers {
			if m.Name == "role" && m.Type == labels.MatchEqual {
				seen[m.Value] = true
				found = true
			}
		}
		if !found {
			all = false
		}
		return nil
	})
	if !all || len(seen) != 1 {
		return nil, true
	}
	for r := range seen {
		only = append(only, r)
	}
	return only, true
}

// routeReceiver asks Alertmanager's router where an alert with these
// labels goes. It reads amtool's stdout only (it warns on stderr).
func routeReceiver(t *testing.T, amtool, config string, lbls []string) string {
	t.Helper()
	cmd := exec.Command(amtool, append([]string{"config", "routes", "test", "--config.file=" + config}, lbls...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("amtool config routes test %v: %v\n%s", lbls, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testenv.Tool(t, name)
}

func TestAlertPolicyByRole(t *testing.T) {
	amtool := requireTool(t, "amtool")
	table, err := ReadPolicy(runbooks)
	if err != nil {
		t.Fatal(err)
	}
	rules := loadRules(t, rulesGlob)
	checked := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		checked[r.Alert] = true
		row, ok := table[r.Alert]
		if !ok {
			t.Errorf("%s: no row in the policy table of %s", r, runbooks)
			continue
		}
		if row.Severity != r.Labels["severity"] {
			t.Errorf("%s: policy table says severity %q, the rule %q", r, row.Severity, r.Labels["severity"])
		}
		if dl := r.Labels["data_loss"]; row.DataLoss != dl && !(row.DataLoss == "" && dl == "") {
			t.Errorf("%s: policy table says data_loss %q, the rule %q", r, row.DataLoss, dl)
		}
		only, carriesRole := roleScope(r.expr)
		for _, role := range Roles {
			want := row.Receiver[role]
			if only != nil && !slicesContains(only, role) {
				if !strings.Contains(want, NeverFires) {
					t.Errorf("%s: the rule fires only for role %v, but the table routes it for %s to %q (want %q)", r, only, role, want, NeverFires)
				}
				continue
			}
			if strings.Contains(want, NeverFires) {
				t.Errorf("%s: the table says it never fires for %s, but its expression does not exclude that role", r, role)
				continue
			}
			lbls := []string{"alertname=" + r.Alert, "instance=host1"}
			if carriesRole {
				lbls = append(lbls, "role="+role)
			}
			for k, v := range r.Labels {
				lbls = append(lbls, fmt.Sprintf("%s=%s", k, v))
			}
			if got := routeReceiver(t, amtool, alertmanagerExample, lbls); got != want {
				t.Errorf("%s on a %s: Alertmanager routes it to %q, the policy table says %q", r.Alert, role, got, want)
			}
		}
	}
	for name := range table {
		if !checked[name] {
			t.Errorf("policy table row %s: no such alert in %s", name, rulesGlob)
		}
	}
	// The policy's fixed points, whatever the table says: a server's
	// critical alert and data loss on a workstation page, a workstation's
	// critical alert and any warning do not.
	for _, c := range []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=X", "severity=critical", "role=server"}, "pagerduty"},
		{[]string{"alertname=X", "severity=critical", "role=workstation", "data_loss=true"}, "pagerduty"},
		{[]string{"alertname=X", "severity=warning", "role=server", "data_loss=true"}, "pagerduty"},
		{[]string{"alertname=X", "severity=critical", "role=workstation"}, "warnings"},
		{[]string{"alertname=X", "severity=warning", "role=server"}, "warnings"},
		{[]string{"alertname=X", "severity=warning", "role=workstation"}, "warnings"},
	} {
		if got := routeReceiver(t, amtool, alertmanagerExample, c.labels); got != c.want {
			t.Errorf("%v routes to %q, want %q", c.labels, got, c.want)
		}
	}
}
