package collectortest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	used = prometheus.NewDesc("test_used_bytes", "Bytes used.", []string{"device", "type"}, nil)
	errs = prometheus.NewDesc("test_errors_total", "Errors.", nil, nil)
)

type fake struct{ err error }

func (f fake) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	ch <- prometheus.MustNewConstMetric(used, prometheus.GaugeValue, 10, "sda", "data")
	ch <- prometheus.MustNewConstMetric(used, prometheus.GaugeValue, 3, "sda", "")
	ch <- prometheus.MustNewConstMetric(errs, prometheus.CounterValue, 2)
	return f.err
}

func TestCollectLooksUp(t *testing.T) {
	broken := errors.New("half read")
	r := Collect(t, fake{err: broken})
	if !errors.Is(r.Err, broken) {
		t.Errorf("Err = %v, want %v", r.Err, broken)
	}
	if got := strings.Join(r.Names(), ","); got != "test_errors_total,test_used_bytes" {
		t.Errorf("Names = %s", got)
	}
	if v := r.Value(t, "test_used_bytes", map[string]string{"type": "data"}); v != 10 {
		t.Errorf("used{type=data} = %v, want 10", v)
	}
	if _, ok := r.Lookup("test_used_bytes", map[string]string{"device": "sda"}); ok {
		t.Error("Lookup matched two series as one")
	}
	if _, ok := r.Lookup("test_missing", nil); ok {
		t.Error("Lookup found a family that was not sent")
	}
	flat := r.Flat()
	want := map[string]float64{
		`test_used_bytes{device="sda",type="data"}`: 10,
		`test_used_bytes{device="sda"}`:             3,
		`test_errors_total`:                         2,
	}
	if fmt.Sprint(flat) != fmt.Sprint(want) {
		t.Errorf("Flat = %v, want %v", flat, want)
	}
	if r.Without("test_errors_total").Has("test_errors_total") || !r.Only("test_errors_total").Has("test_errors_total") {
		t.Error("Without/Only do not filter by name")
	}
}

// recorder catches a golden mismatch instead of failing the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Errorf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestGolden(t *testing.T) {
	r := Collect(t, fake{})
	r.Golden(t, "testdata/fake.prom")
	if Updating() {
		return
	}

	rec := &recorder{TB: t}
	r.Only("test_used_bytes").Golden(rec, "testdata/fake.prom")
	if !strings.Contains(rec.failed, "test_errors_total") {
		t.Errorf("a missing family was not reported as a difference: %q", rec.failed)
	}
}

func TestDuplicateSeriesFail(t *testing.T) {
	dup := replay{
		prometheus.MustNewConstMetric(errs, prometheus.CounterValue, 1),
		prometheus.MustNewConstMetric(errs, prometheus.CounterValue, 2),
	}
	if _, err := dup.Gather(); err == nil {
		t.Error("two series with the same labels gathered without error")
	}
}
