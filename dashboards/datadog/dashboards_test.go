package datadog_test

import (
	"os"
	"path/filepath"
	"testing"

	_ "github.com/pantheros/monitoring/exporter/collector/all" // fill the catalog
	"github.com/pantheros/monitoring/exporter/datadog/ddcheck"
)

func TestDashboards(t *testing.T) {
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"host.json": true, "storage.json": true, "containers.json": true, "boot.json": true, "performance.json": true, "logs.json": true}
	emitted := ddcheck.Emitted()
	for _, f := range files {
		delete(want, f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ddcheck.DecodeDashboard(b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		qs := ddcheck.Queries(d)
		if len(qs) < 5 {
			t.Errorf("%s: only %d queries found", f, len(qs))
		}
		for _, q := range qs {
			if len(ddcheck.QueryMetrics(q)) == 0 {
				t.Errorf("%s: no metric in query %q", f, q)
			}
			if bad := ddcheck.UnknownMetrics(q, emitted); len(bad) > 0 {
				t.Errorf("%s: query %q uses metrics the sink does not send: %v", f, q, bad)
			}
		}
	}
	for f := range want {
		t.Errorf("dashboard %s missing", f)
	}
}

func TestDashboardCheckerRejects(t *testing.T) {
	for name, body := range map[string]string{
		"unknown widget key": `{"title":"x","layout_type":"ordered","widgets":[{"definition":{"type":"note","content":"x","colour":"red"}}]}`,
		"unknown widget":     `{"title":"x","layout_type":"ordered","widgets":[{"definition":{"type":"no_such_widget"}}]}`,
		"bad layout":         `{"title":"x","layout_type":"diagonal","widgets":[]}`,
	} {
		if _, err := ddcheck.DecodeDashboard([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
