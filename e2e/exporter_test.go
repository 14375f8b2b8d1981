//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// contractSystem lists the system metrics of the contract in
// ../shared/CONVENTIONS.md that every Linux host has.
var contractSystem = []string{
	"panther_cpu_seconds_total", "panther_cpus", "panther_load1", "panther_load5", "panther_load15",
	"panther_memory_total_bytes", "panther_memory_available_bytes", "panther_swap_total_bytes",
	"panther_swap_free_bytes", "panther_filesystem_size_bytes", "panther_filesystem_avail_bytes",
	"panther_filesystem_files", "panther_filesystem_files_free", "panther_disk_read_bytes_total",
	"panther_disk_written_bytes_total", "panther_disk_io_time_seconds_total",
	"panther_network_receive_bytes_total", "panther_network_transmit_bytes_total",
	"panther_network_receive_errors_total", "panther_network_transmit_errors_total",
	"panther_boot_timestamp_seconds", "panther_pressure_waiting_seconds_total",
	"panther_exporter_build_info", "panther_scrape_collector_duration_seconds",
	"panther_scrape_collector_success",
}

func TestExporterServesCleanMetrics(t *testing.T) {
	serial(t)
	promtool := requireTool(t, "promtool")
	e := startExporter(t, "--collector.disable-defaults", "--collector.system")
	body, err := e.Get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, _ := cmd.CombinedOutput()
	if len(out) != 0 {
		t.Fatalf("promtool check metrics printed:\n%s", out)
	}
	fams, err := ParseFamilies(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range contractSystem {
		if len(fams.Series(name, nil)) == 0 {
			t.Errorf("contract metric %s missing", name)
		}
	}
	if v, ok := fams.Value("panther_scrape_collector_success", map[string]string{"collector": "system"}); !ok || v != 1 {
		t.Errorf("system collector success = %v (found %v)", v, ok)
	}
}

func TestPrometheusScrapesExporter(t *testing.T) {
	serial(t)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system")
	p := startPrometheus(t, PromConfig{Targets: []string{e.Addr}})
	v := p.WaitForSeries(t, 60*time.Second, `up{job="panther"} == 1`)
	if len(v) != 1 {
		t.Fatalf("up: %v", v)
	}
	for _, name := range contractSystem {
		p.WaitForSeries(t, 30*time.Second, name)
	}
	// The figures Prometheus stores are the exporter's: the CPU count of this machine.
	v = p.WaitForSeries(t, 10*time.Second, "panther_cpus")
	if got, want := float64(v[0].Value), float64(numCPU(t)); got != want {
		t.Errorf("panther_cpus = %v, /proc/cpuinfo has %v", got, want)
	}
}

func numCPU(t *testing.T) int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\nprocessor\t") + map[bool]int{true: 1}[strings.HasPrefix(string(b), "processor\t")]
}

func TestCollectFilters(t *testing.T) {
	serial(t)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system")
	body, err := e.Get("/metrics?exclude[]=system")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, "panther_cpus ") {
		t.Error("exclude[]=system still serves system metrics")
	}
	if !strings.Contains(body, "panther_exporter_build_info") {
		t.Error("filtered scrape lost the exporter's own metrics")
	}
	body, err = e.Get("/metrics?collect[]=system")
	if err != nil || !strings.Contains(body, "panther_cpus ") {
		t.Errorf("collect[]=system: %v", err)
	}
	if _, err := e.Get("/metrics?collect[]=nosuch"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("collect[]=nosuch: want 400, got %v", err)
	}
}

func TestLandingPageShowsCollectorState(t *testing.T) {
	serial(t)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system")
	e.Get("/metrics")
	page, err := e.Get("/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "<td>system</td><td class=\"ok\">ok</td>") {
		t.Errorf("landing page does not show system ok:\n%s", page)
	}
}

// Bad start-up input ends the process with one clear line naming the culprit.
func TestBadStartupInput(t *testing.T) {
	serial(t)
	bin := binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	badCfg := filepath.Join(t.TempDir(), "web.yml")
	os.WriteFile(badCfg, []byte("basic_auth_users:\n  alice: [not, a, hash\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "--no-such-flag"},
		{"malformed web config", []string{"--web.config.file=" + badCfg}, badCfg},
		{"port in use", []string{"--web.listen-address=" + l.Addr().String()}, "address already in use"},
		{"bad regexp", []string{"--collector.system.mount-points-exclude=("}, "--collector.system.mount-points-exclude"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"--log.level=error"}, c.args...)...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatal("still running after 20 s")
			}
			if err == nil {
				t.Fatalf("exit 0, want non-zero; output:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, c.want) {
				t.Errorf("last line %q does not name %q", last, c.want)
			}
			fmt.Println("   ", c.name, "->", last)
		})
	}
}

// SIGTERM: the exporter stops serving, logs its shutdown and exits 0.
func TestGracefulShutdown(t *testing.T) {
	serial(t)
	e := startExporter(t, "--collector.disable-defaults", "--collector.system")
	if err := e.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.done:
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
	if code := e.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, e.Output())
	}
	if !strings.Contains(e.Output(), "Shutting down") {
		t.Errorf("no shutdown line in the log:\n%s", e.Output())
	}
}
