package rules

// In fleet mode (docs/fleet.md) vmalert evaluates these same rule files
// against VictoriaMetrics, whose MetricsQL is not PromQL: every file must
// load in Debian's vmalert too, or its alerts would never fire there.

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pantheros/monitoring/internal/testenv"
)

func TestRulesLoadInVmalert(t *testing.T) {
	vmalert := testenv.Tool(t, "vmalert")
	files, _ := filepath.Glob(rulesGlob)
	optional, _ := filepath.Glob("prometheus/optional/*.rules.yml")
	files = append(files, optional...)
	if len(files) == 0 {
		t.Fatalf("no rule files match %s", rulesGlob)
	}
	for _, f := range files {
		// -dryRun parses the file and its templates and exits; the URLs
		// are never contacted.
		cmd := exec.Command(vmalert, "-dryRun", "-rule="+f,
			"-datasource.url=http://127.0.0.1:1", "-notifier.url=http://127.0.0.1:1", "-remoteWrite.url=http://127.0.0.1:1")
		if out, err := cmd.CombinedOutput(); err != nil {
			// Shown, not parsed.
			t.Errorf("vmalert refuses %s: %v\n%s", f, err, out)
		}
	}
}
