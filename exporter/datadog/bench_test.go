package datadog_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/pantheros/monitoring/exporter/collector"
	_ "github.com/pantheros/monitoring/exporter/collector/all" // the full catalog
	"github.com/pantheros/monitoring/exporter/datadog"
)

// fullSet is a gatherer of every metric in the catalog: metrics without
// labels have one series, the others seriesPerMetric (as a host with a few
// devices, filesystems, containers or units has).
type fullSet struct{ mfs []*dto.MetricFamily }

const seriesPerMetric = 4

func newFullSet() (*fullSet, int) { // the gatherer and its number of series
	var mfs []*dto.MetricFamily
	n := 0
	for _, m := range collector.Catalog() {
		typ := dto.MetricType_GAUGE
		if m.Type == prometheus.CounterValue {
			typ = dto.MetricType_COUNTER
		}
		mf := &dto.MetricFamily{Name: proto.String(m.Name), Help: proto.String(m.Help), Type: &typ}
		count := seriesPerMetric
		if len(m.Labels) == 0 {
			count = 1
		}
		for i := 0; i < count; i++ {
			s := &dto.Metric{}
			for _, l := range m.Labels {
				s.Label = append(s.Label, &dto.LabelPair{Name: proto.String(l), Value: proto.String(fmt.Sprintf("%s-value-%d", l, i))})
			}
			v := float64(1e9 + i*12345)
			if typ == dto.MetricType_COUNTER {
				s.Counter = &dto.Counter{Value: proto.Float64(v)}
			} else {
				s.Gauge = &dto.Gauge{Value: proto.Float64(v)}
			}
			mf.Metric = append(mf.Metric, s)
			n++
		}
		mfs = append(mfs, mf)
	}
	return &fullSet{mfs: mfs}, n
}

// Gather grows every counter a little, so that each flush sends deltas.
func (f *fullSet) Gather() ([]*dto.MetricFamily, error) {
	for _, mf := range f.mfs {
		for _, m := range mf.Metric {
			if m.Counter != nil {
				m.Counter.Value = proto.Float64(m.Counter.GetValue() + 7)
			}
		}
	}
	return f.mfs, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFlush sends the full metric set (every catalog metric, no
// include/exclude, no cap) per flush, buffered as the sink does and
// unbuffered (one metric per datagram), to a UDP socket nobody reads (the
// kernel drops what overflows its buffer, as with an Agent that is slow).
// It reports datagrams, bytes and process CPU per flush.
func BenchmarkFlush(b *testing.B) {
	for _, mode := range []struct {
		name       string
		unbuffered bool
	}{{"buffered", false}, {"unbuffered", true}} {
		b.Run(mode.name, func(b *testing.B) {
			sock, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer sock.Close()
			g, _ := newFullSet()
			s, err := datadog.New(slog.New(slog.NewTextHandler(io.Discard, nil)), g, datadog.Options{
				Address:    sock.LocalAddr().String(),
				Include:    regexp.MustCompile("."),
				Unbuffered: mode.unbuffered,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.Flush() // first sight of the counters
			before := telemetry(b, s)
			cpu0 := cpuTime()
			b.ResetTimer()
			sent := 0
			for i := 0; i < b.N; i++ {
				sent += s.Flush().Series
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			after := telemetry(b, s)
			n := float64(b.N)
			b.ReportMetric(float64(sent)/n, "series/flush")
			b.ReportMetric((after["packets"]-before["packets"])/n, "packets/flush")
			b.ReportMetric((after["bytes"]-before["bytes"])/n, "bytes/flush")
			b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/flush")
		})
	}
}

func telemetry(b *testing.B, s *datadog.Sink) map[string]float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		var sum float64
		for _, m := range mf.Metric {
			sum += m.GetCounter().GetValue()
		}
		switch mf.GetName() {
		case "panther_datadog_packets_sent_total":
			out["packets"] += sum
		case "panther_datadog_packets_dropped_total":
			out["packets"] += sum // written to the socket or refused: a datagram either way
		case "panther_datadog_bytes_sent_total", "panther_datadog_bytes_dropped_total":
			out["bytes"] += sum
		}
	}
	return out
}
