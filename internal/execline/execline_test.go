package execline

import (
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
		bad  bool
	}{
		{`"/nix/store/x/bin/panther-exporter" "--web.listen-address=:9567"`, []string{"/nix/store/x/bin/panther-exporter", "--web.listen-address=:9567"}, false},
		// escapeSystemdExecArg doubles % and $; JSON escapes quotes and backslashes.
		{`"--collector.units.include=^a$$" "100%%" "say \"hi\" \\ there"`, []string{"--collector.units.include=^a$", "100%", `say "hi" \ there`}, false},
		{"", nil, false},
		{`"/bin/x" unquoted`, nil, true},
		{`"/bin/x`, nil, true},
		{`"/bin/x" 42`, nil, true},
	} {
		got, err := Split(c.line)
		if (err != nil) != c.bad || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Split(%q) = %q, %v; want %q (error: %v)", c.line, got, err, c.want, c.bad)
		}
	}
}
