package promqlnames

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for expr, want := range map[string][]string{
		`rate(panther_cpu_seconds_total{mode!="idle"}[5m])`:                        {"panther_cpu_seconds_total"},
		`panther_memory_available_bytes / on(instance) panther_memory_total_bytes`: {"panther_memory_available_bytes", "panther_memory_total_bytes"},
		`{__name__="panther_load1"} > 2`:                                           {"panther_load1"},
		`max_over_time(up[10m:1m]) + count({job="panther"})`:                       {"up", ""},
		`sum by (instance) (ALERTS)`:                                               {"ALERTS"},
		`1 + 2`:                                                                    nil,
	} {
		got, err := Parse(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
	if _, err := Parse(`rate(x[5m]`); err == nil {
		t.Error("an unbalanced expression parsed")
	}
}
