// Package nodeexporter runs the real node_exporter for tests that compare
// with it (the system collector's figures, the compatibility rules): found
// as $NODE_EXPORTER_BIN, Debian's prometheus-node-exporter or node_exporter,
// started on a free loopback port, scraped once.
package nodeexporter

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pantheros/monitoring/internal/testenv"
)

// Scrape starts node_exporter with args (a listen address is added) and
// returns one scrape of it. Without a node_exporter the test fails in CI
// and is skipped elsewhere (testenv); the process is stopped at cleanup.
func Scrape(t *testing.T, args ...string) map[string]*dto.MetricFamily {
	t.Helper()
	bin := testenv.ToolOrEnv(t, "NODE_EXPORTER_BIN", "prometheus-node-exporter", "node_exporter")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--web.listen-address=" + addr}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("node_exporter: %s\n%s", resp.Status, stderr.String())
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			mfs, err := p.TextToMetricFamilies(resp.Body)
			if err != nil {
				t.Fatalf("node_exporter output: %v", err)
			}
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter did not answer on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond) // poll interval inside the deadline loop
	}
}
