package datadog

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestName(t *testing.T) {
	for _, c := range []struct {
		prom    string
		counter bool
		want    string
	}{
		{"panther_btrfs_device_errors_total", true, "panther.btrfs.device_errors"},
		{"panther_x_total", true, "panther.x"},
		{"panther_cpu_seconds_total", true, "panther.cpu.seconds"},
		{"panther_load1", false, "panther.load1"},
		{"panther_podman_container_memory_usage_bytes", false, "panther.podman.container_memory_usage_bytes"},
		{"panther_boot_stage_duration_seconds", false, "panther.boot.stage_duration_seconds"},
		{"panther_total_things", false, "panther.total.things"}, // only counters lose _total
		{"up", false, "up"},
	} {
		if got := Name(c.prom, c.counter); got != c.want {
			t.Errorf("Name(%q, %v) = %q, want %q", c.prom, c.counter, got, c.want)
		}
		if c.counter {
			if got, want := PromName(c.want), strings.TrimSuffix(c.prom, "_total"); got != want {
				t.Errorf("PromName(%q) = %q, want %q", c.want, got, want)
			}
		}
	}
}

// receiver is a real UDP or unixgram socket that records every datagram.
type receiver struct {
	conn net.PacketConn
	addr string
	got  chan string
}

func listenUDP(t *testing.T) *receiver {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newReceiver(t, c, c.LocalAddr().String())
}

func listenUnixgram(t *testing.T) *receiver {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dsd.socket")
	c, err := net.ListenPacket("unixgram", p)
	if err != nil {
		t.Fatal(err)
	}
	return newReceiver(t, c, "unix://"+p)
}

func newReceiver(t *testing.T, c net.PacketConn, addr string) *receiver {
	r := &receiver{conn: c, addr: addr, got: make(chan string, 10000)}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			r.got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

// datagrams returns what arrived within a short quiet period after a flush,
// leaving out the client's own telemetry (sent every 10s).
func (r *receiver) datagrams(t *testing.T) []string {
	t.Helper()
	var out []string
	timeout := time.After(2 * time.Second)
	for {
		select {
		case d := <-r.got:
			if !strings.HasPrefix(d, "datadog.dogstatsd.client.") {
				out = append(out, d)
			}
		case <-time.After(200 * time.Millisecond):
			return out
		case <-timeout:
			return out
		}
	}
}

func lines(ds []string) []string {
	var out []string
	for _, d := range ds {
		out = append(out, strings.Split(strings.TrimSuffix(d, "\n"), "\n")...)
	}
	sort.Strings(out)
	return out
}

type fixture struct {
	reg      *prometheus.Registry
	gauge    *prometheus.GaugeVec
	counter  *prometheus.CounterVec
	fcounter prometheus.Counter
	system   prometheus.Gauge
	runtime  prometheus.Gauge
}

func newFixture() *fixture {
	f := &fixture{reg: prometheus.NewRegistry()}
	f.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "panther_btrfs_used_bytes", Help: "h"},
		[]string{"uuid", "block_group_type", "profile"})
	f.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "panther_btrfs_device_errors_total", Help: "h"},
		[]string{"uuid", "device", "type"})
	f.fcounter = prometheus.NewCounter(prometheus.CounterOpts{Name: "panther_podman_container_cpu_seconds_total", Help: "h"})
	f.system = prometheus.NewGauge(prometheus.GaugeOpts{Name: "panther_memory_available_bytes", Help: "h"})
	f.runtime = prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_goroutines", Help: "h"})
	f.reg.MustRegister(f.gauge, f.counter, f.fcounter, f.system, f.runtime)
	return f
}

func newSink(t *testing.T, g prometheus.Gatherer, o Options) (*Sink, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	if o.Include == nil {
		o.Include = regexp.MustCompile(DefaultInclude)
		o.Exclude = regexp.MustCompile(DefaultExclude)
	}
	s, err := New(slog.New(slog.NewTextHandler(&logs, nil)), g, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &logs
}

func TestFlushDatagrams(t *testing.T) {
	for _, mode := range []string{"udp", "unixgram"} {
		t.Run(mode, func(t *testing.T) {
			r := listenUDP
			if mode == "unixgram" {
				r = listenUnixgram
			}
			rc := r(t)
			f := newFixture()
			f.gauge.WithLabelValues("u1", "data", "single").Set(1.5e9)
			f.gauge.WithLabelValues("u1", "metadata", "dup,x|y#z").Set(42)
			f.counter.WithLabelValues("u1", "/dev/sda", "write_io_errs").Add(3)
			f.fcounter.Add(0.5)
			f.system.Set(1000)
			f.runtime.Set(7)
			s, _ := newSink(t, f.reg, Options{Address: rc.addr, Tags: []string{"env:test"}})

			// First flush: gauges only; counters have no delta yet.
			res := s.Flush()
			if res.Series != 2 {
				t.Errorf("first flush sent %d series, want 2", res.Series)
			}
			ds := rc.datagrams(t)
			want := []string{
				"panther.btrfs.used_bytes:1500000000|g|#env:test,block_group_type:data,profile:single,uuid:u1",
				"panther.btrfs.used_bytes:42|g|#env:test,block_group_type:metadata,profile:dup_x_y_z,uuid:u1",
			}
			if got := lines(ds); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("first flush:\n got %q\nwant %q", got, want)
			}
			if len(ds) != 1 {
				t.Errorf("first flush: %d datagrams, want 1", len(ds))
			}

			// Second flush: deltas, with the float counter's fraction carried.
			f.counter.WithLabelValues("u1", "/dev/sda", "write_io_errs").Add(5)
			f.fcounter.Add(0.75) // 0.75 since last flush: 0 sent, 0.75 carried
			f.gauge.WithLabelValues("u1", "data", "single").Set(2)
			s.Flush()
			want = []string{
				"panther.btrfs.device_errors:5|c|#env:test,device:/dev/sda,type:write_io_errs,uuid:u1",
				"panther.btrfs.used_bytes:2|g|#env:test,block_group_type:data,profile:single,uuid:u1",
				"panther.btrfs.used_bytes:42|g|#env:test,block_group_type:metadata,profile:dup_x_y_z,uuid:u1",
				"panther.podman.container_cpu_seconds:0|c|#env:test",
			}
			if got := lines(rc.datagrams(t)); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("second flush:\n got %q\nwant %q", got, want)
			}

			// Third: 0.8 more plus the 0.75 carried is 1.55: 1 sent. Nothing
			// new on the error counter: a count of 0.
			f.fcounter.Add(0.8)
			s.Flush()
			got := strings.Join(lines(rc.datagrams(t)), "\n")
			for _, w := range []string{
				"panther.podman.container_cpu_seconds:1|c|#env:test",
				"panther.btrfs.device_errors:0|c|#env:test,device:/dev/sda,type:write_io_errs,uuid:u1",
			} {
				if !strings.Contains(got, w) {
					t.Errorf("third flush lacks %q:\n%s", w, got)
				}
			}

			tl := s.client.GetTelemetry()
			if tl.TotalPayloadsSent != 3 {
				t.Errorf("client telemetry: %d payloads sent, want 3", tl.TotalPayloadsSent)
			}
		})
	}
}

// A counter that goes down (the exporter or the counted thing restarted)
// sends nothing that flush, and counts normally from the new value on.
func TestCounterReset(t *testing.T) {
	rc := listenUDP(t)
	var value float64
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "panther_podman_container_restarts_total", Help: "h"},
		func() float64 { return value }))
	s, _ := newSink(t, reg, Options{Address: rc.addr})
	var sent []string
	for _, v := range []float64{10, 12, 3, 7} {
		value = v
		res := s.Flush()
		sent = append(sent, lines(rc.datagrams(t))...)
		if v == 3 && res.Resets != 1 {
			t.Errorf("reset not seen: %+v", res)
		}
	}
	want := []string{"panther.podman.container_restarts:2|c", "panther.podman.container_restarts:4|c"}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", sent, want)
	}
	if n := telemetryValue(t, s, "panther_datadog_counter_resets_total"); n != 1 {
		t.Errorf("panther_datadog_counter_resets_total = %v, want 1", n)
	}
}

// telemetryValue reads one of the sink's own metrics as /metrics shows it.
func telemetryValue(t *testing.T, s *Sink, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue() + mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}

func TestCapCountsAndLogsOnce(t *testing.T) {
	rc := listenUDP(t)
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "panther_systemd_units", Help: "h"}, []string{"state"})
	reg.MustRegister(g)
	for _, st := range []string{"a", "b", "c", "d", "e"} {
		g.WithLabelValues(st).Set(1)
	}
	s, logs := newSink(t, reg, Options{Address: rc.addr, MaxSeries: 3, Include: regexp.MustCompile(".")})
	for i := 0; i < 3; i++ {
		res := s.Flush()
		if res.Series != 3 || res.Dropped != 2 {
			t.Fatalf("flush %d: %+v, want 3 sent and 2 dropped", i, res)
		}
		if got := len(lines(rc.datagrams(t))); got != 3 {
			t.Fatalf("flush %d: %d lines arrived, want 3", i, got)
		}
	}
	if n := strings.Count(logs.String(), "max-series"); n != 1 {
		t.Errorf("cap logged %d times, want once:\n%s", n, logs)
	}
	if n := telemetryValue(t, s, "panther_datadog_series_dropped_total"); n != 6 {
		t.Errorf("panther_datadog_series_dropped_total = %v, want 6", n)
	}
}

// With nobody listening, flushes go on, cost nothing but dropped packets,
// and the drops are counted; when the receiver is back, data flows.
func TestReceiverDown(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "dsd.socket")
	f := newFixture()
	f.gauge.WithLabelValues("u", "data", "single").Set(1)
	s, _ := newSink(t, f.reg, Options{Address: "unix://" + sock})
	for i := 0; i < 3; i++ {
		done := make(chan struct{})
		go func() { s.Flush(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("flush blocked with the receiver down")
		}
	}
	if n := telemetryValue(t, s, "panther_datadog_flushes_total"); n != 3 {
		t.Errorf("flushes = %v, want 3", n)
	}
	if tl := s.client.GetTelemetry(); tl.TotalPayloadsDropped == 0 {
		t.Errorf("no drops counted with the receiver down: %+v", tl)
	}
	c, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, c, "unix://"+sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.Flush()
		if got := lines(rc.datagrams(t)); len(got) > 0 {
			if got[0] != "panther.btrfs.used_bytes:1|g|#block_group_type:data,profile:single,uuid:u" {
				t.Errorf("after restart got %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived after the receiver came back")
		}
	}
}

// The environment of the Agent enables the sink without a flag.
func TestFromEnv(t *testing.T) {
	rc := listenUDP(t)
	host, port, _ := net.SplitHostPort(rc.addr)
	t.Setenv("DD_AGENT_HOST", host)
	t.Setenv("DD_DOGSTATSD_PORT", port)
	t.Setenv("DD_DOGSTATSD_URL", "")
	if _, err := kingpin.CommandLine.Parse(nil); err != nil {
		t.Fatal(err)
	}
	_, enabled, err := FromFlags()
	if err != nil || !enabled {
		t.Fatalf("FromFlags with DD_AGENT_HOST: enabled=%v err=%v", enabled, err)
	}
	f := newFixture()
	f.gauge.WithLabelValues("u", "data", "single").Set(3)
	s, _ := newSink(t, f.reg, Options{})
	s.Flush()
	if got := lines(rc.datagrams(t)); len(got) != 1 || !strings.HasPrefix(got[0], "panther.btrfs.used_bytes:3|g") {
		t.Errorf("via DD_AGENT_HOST got %q", got)
	}
}

// Timestamp gauges also send their age: Datadog has no time().
func TestAgeOfTimestamps(t *testing.T) {
	rc := listenUDP(t)
	reg := prometheus.NewRegistry()
	ts := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "panther_btrfs_scrub_last_finished_timestamp_seconds", Help: "h"}, []string{"uuid"})
	reg.MustRegister(ts)
	before := time.Now()
	ts.WithLabelValues("u1").Set(float64(before.Unix() - 3600))
	ts.WithLabelValues("never").Set(0) // no scrub yet: no age
	s, _ := newSink(t, reg, Options{Address: rc.addr})
	s.Flush()
	got := lines(rc.datagrams(t))
	if len(got) != 3 {
		t.Fatalf("got %q, want the two timestamps and one age", got)
	}
	var age float64
	if _, err := fmt.Sscanf(got[0], "panther.btrfs.scrub_last_finished_age_seconds:%g|g|#uuid:u1", &age); err != nil {
		t.Fatalf("age line %q: %v", got[0], err)
	}
	if max := time.Since(before).Seconds() + 3601; age < 3599 || age > max {
		t.Errorf("age %v, want about 3600", age)
	}
}

// DD_DOGSTATSD_URL names the Agent's socket.
func TestFromEnvURL(t *testing.T) {
	rc := listenUnixgram(t)
	t.Setenv("DD_AGENT_HOST", "")
	t.Setenv("DD_DOGSTATSD_URL", rc.addr)
	if _, err := kingpin.CommandLine.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, enabled, err := FromFlags(); err != nil || !enabled {
		t.Fatalf("FromFlags with DD_DOGSTATSD_URL: enabled=%v err=%v", enabled, err)
	}
	f := newFixture()
	f.gauge.WithLabelValues("u", "data", "single").Set(4)
	s, _ := newSink(t, f.reg, Options{})
	if s.client.GetTransport() != "uds" {
		t.Errorf("transport %q, want uds", s.client.GetTransport())
	}
	s.Flush()
	if got := lines(rc.datagrams(t)); len(got) != 1 || !strings.HasPrefix(got[0], "panther.btrfs.used_bytes:4|g") {
		t.Errorf("via DD_DOGSTATSD_URL got %q", got)
	}
}

type blockingGatherer struct {
	entered, release chan struct{}
}

func (g blockingGatherer) Gather() ([]*dto.MetricFamily, error) {
	close(g.entered)
	<-g.release
	return nil, nil
}

// A flush stuck in its gather (a slow collector) never holds up the sink's
// telemetry on /metrics.
func TestTelemetryDoesNotWaitForFlush(t *testing.T) {
	rc := listenUDP(t)
	g := blockingGatherer{entered: make(chan struct{}), release: make(chan struct{})}
	s, _ := newSink(t, g, Options{Address: rc.addr})
	done := make(chan struct{})
	go func() { s.Flush(); close(done) }()
	<-g.entered
	got := make(chan float64)
	go func() { got <- telemetryValue(t, s, "panther_datadog_flushes_total") }()
	select {
	case v := <-got:
		if v != 1 {
			t.Errorf("flushes %v while the first is in flight, want 1", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sink's Collect waited for a flush")
	}
	close(g.release)
	<-done
}
