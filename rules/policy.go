package rules

import (
	"fmt"
	"os"
	"strings"
)

// PolicyHeading is the section of docs/runbooks.md that holds the alert
// policy by role; its first table says, for every alert, where it goes on
// each role.
const PolicyHeading = "## Alert policy by role"

// Roles are the values of the role label.
var Roles = []string{"server", "workstation"}

// NeverFires marks a role on which an alert cannot fire.
const NeverFires = "never fires"

// PolicyRow is one alert of the policy table.
type PolicyRow struct {
	Alert, Severity, DataLoss string
	// Receiver is the Alertmanager receiver per role ("pagerduty",
	// "warnings"), or a cell containing NeverFires.
	Receiver map[string]string
}

// ReadPolicy reads the policy table of the runbooks file at path.
func ReadPolicy(path string) (map[string]PolicyRow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := string(b)
	i := strings.Index(text, "\n"+PolicyHeading+"\n")
	if i < 0 {
		return nil, fmt.Errorf("%s: no %q section", path, PolicyHeading)
	}
	want := []string{"alert", "severity", "data_loss", "server", "workstation"}
	rows := map[string]PolicyRow{}
	var header []string
	for n, line := range strings.Split(text[i+1:], "\n")[1:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "|") {
			if header != nil {
				break // the first table of the section is the policy
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for k := range cells {
			cells[k] = strings.Trim(strings.TrimSpace(cells[k]), "`")
		}
		if header == nil {
			header = cells
			if strings.Join(header, ",") != strings.Join(want, ",") {
				return nil, fmt.Errorf("%s: policy table header %q, want %q", path, header, want)
			}
			continue
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) != len(want) {
			return nil, fmt.Errorf("%s: policy table line %d has %d cells, want %d", path, n+1, len(cells), len(want))
		}
		r := PolicyRow{Alert: cells[0], Severity: cells[1], DataLoss: cells[2],
			Receiver: map[string]string{"server": cells[3], "workstation": cells[4]}}
		if _, dup := rows[r.Alert]; dup {
			return nil, fmt.Errorf("%s: %s twice in the policy table", path, r.Alert)
		}
		rows[r.Alert] = r
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: empty policy table", path)
	}
	return rows, nil
}
