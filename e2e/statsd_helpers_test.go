//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StatsdReceiver is a real prometheus/statsd_exporter standing in for the
// Datadog Agent's DogStatsD server (it parses DogStatsD tags). What it
// receives shows on its own /metrics with dots turned into underscores:
// panther.btrfs.used_bytes{uuid:…} arrives as panther_btrfs_used_bytes{uuid="…"}.
type StatsdReceiver struct {
	*Process
	Mode    string // "udp" or "unixgram"
	Address string // what to pass to --datadog.address
	webAddr string
	args    []string
	t       testing.TB
}

// startStatsdReceiver starts statsd_exporter listening in mode "udp" (on a
// free loopback port) or "unixgram" (on a socket in a temporary directory).
// Stop and Start it again with Stop and Restart; it is stopped at cleanup.
func startStatsdReceiver(t testing.TB, mode string) *StatsdReceiver {
	t.Helper()
	requireTool(t, "statsd_exporter")
	r := &StatsdReceiver{Mode: mode, webAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), t: t}
	r.args = []string{"--web.listen-address=" + r.webAddr, "--statsd.parse-dogstatsd-tags",
		"--statsd.listen-tcp=", "--log.level=warn"}
	switch mode {
	case "udp":
		addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
		r.args = append(r.args, "--statsd.listen-udp="+addr, "--statsd.listen-unixgram=")
		r.Address = addr
	case "unixgram":
		sock := filepath.Join(t.TempDir(), "dsd.socket")
		r.args = append(r.args, "--statsd.listen-udp=", "--statsd.listen-unixgram="+sock)
		r.Address = "unix://" + sock
	default:
		t.Fatalf("startStatsdReceiver: unknown mode %q", mode)
	}
	r.Restart()
	return r
}

// Restart starts the receiver again on the same address after Stop.
func (r *StatsdReceiver) Restart() {
	r.t.Helper()
	if r.Mode == "unixgram" {
		os.Remove(r.Address[len("unix://"):]) // a stale socket file blocks the bind
	}
	r.Process = startProcess(r.t, nil, requireTool(r.t, "statsd_exporter"), r.args...)
	eventually(r.t, 20*time.Second, "statsd_exporter answers on "+r.webAddr, func() error {
		if r.Exited() {
			r.t.Fatalf("statsd_exporter exited: %s", r.Output())
		}
		_, err := r.scrape()
		return err
	})
}

func (r *StatsdReceiver) scrape() (Families, error) {
	e := &Exporter{URL: "http://" + r.webAddr}
	body, err := e.Get("/metrics")
	if err != nil {
		return nil, err
	}
	return ParseFamilies(body)
}

// Scrape returns what the receiver has received, as its /metrics shows it.
func (r *StatsdReceiver) Scrape(t testing.TB) Families {
	t.Helper()
	f, err := r.scrape()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
