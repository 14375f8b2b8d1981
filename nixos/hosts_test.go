package nixos

// The four pantherOS host shapes (testdata/hosts/*.nix) evaluated whole
// by nixpkgs' module system, and what they render handed to the real
// programs that read it: the exporter started with its command line and
// scraped, every unit through `systemd-analyze verify`, the monitoring
// host's prometheus.yml through `promtool check config`, its Alertmanager
// configuration through `amtool check-config`, vmalert's and vmagent's
// flags through `-dryRun`.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/internal/execline"
)

type hostUnit struct {
	Description   string
	After, Wants  []string
	WantedBy      []string
	UnitConfig    map[string]any
	ServiceConfig map[string]any
}

type hostEval struct {
	Argv          execLine
	ServiceConfig map[string]any
	Failed        []string
	Warnings      []string
	Firewall      []int
	Units         map[string]*hostUnit
	Fleet         struct{ ScrapeConfig *string }
	Datadog       struct {
		Agent *struct {
			APIKeyFile  string `json:"apiKeyFile"`
			Hostname    string
			Tags        []string
			ExtraConfig map[string]any
		}
		ExtraGroups []string
	}
	Prometheus struct {
		Enable             bool
		Yml                string
		AlertmanagerConfig *string
	}
	LoadCredential []string
	Logs           struct {
		UploadURL   *string
		DatadogLogs bool
	}
}

func evalHost(t *testing.T, name string) hostEval {
	t.Helper()
	e := evalHostExpr(t, fmt.Sprintf("import ./testdata/hosts/%s.nix", name))
	if len(e.Failed) != 0 || len(e.Warnings) != 0 {
		t.Fatalf("%s: failed assertions %q, warnings %q", name, e.Failed, e.Warnings)
	}
	return e
}

// evalHostExpr evaluates a whole host configuration (a Nix expression).
func evalHostExpr(t *testing.T, host string) hostEval {
	t.Helper()
	out := evalNix(t, "--arg", "host", host)
	var e hostEval
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return e
}

// TestVMTestNodes: the NixOS VM test (tests/panther-exporter.nix) cannot
// run here, so what it sets through our modules is evaluated and run
// instead: its exporter node's command line starts the binary (its
// extraFlags interval replaces the module's: a repeated flag would stop
// the exporter), its monitoring node's configurations pass promtool and
// amtool.
func TestVMTestNodes(t *testing.T) {
	e := evalHostExpr(t, `import ./testdata/vm-test-node.nix { node = "host"; }`)
	if len(e.Failed) != 0 || len(e.Warnings) != 0 {
		t.Fatalf("VM test host: failed assertions %q, warnings %q", e.Failed, e.Warnings)
	}
	n := 0
	for _, a := range e.Argv {
		if strings.HasPrefix(a, "--collector.btrfs.subvolume-interval=") {
			n++
		}
	}
	if n != 1 || !slices.Contains(e.Argv, "--collector.btrfs.subvolume-interval=1s") {
		t.Errorf("VM test host: extraFlags' interval does not replace the module's: %q", e.Argv)
	}
	verifyUnits(t, e)
	scrapeHostExporter(t, e, nil, []string{"podman", "journal", "textfile"})

	m := evalHostExpr(t, `import ./testdata/vm-test-node.nix { node = "monitor"; }`)
	// The VM test's monitor has no chat or e-mail: that warning, no other.
	if len(m.Failed) != 0 || len(m.Warnings) != 1 || !strings.HasPrefix(m.Warnings[0], "services.panther-monitoring: no warnings notifier") {
		t.Fatalf("VM test monitor: failed assertions %q, warnings %q", m.Failed, m.Warnings)
	}
	promtoolCheckConfig(t, m.Prometheus.Yml)
	if !strings.Contains(m.Prometheus.Yml, `"targets":["host:9567"]`) {
		t.Errorf("the VM test's Prometheus does not scrape host:9567:\n%s", m.Prometheus.Yml)
	}
	checkAlertmanagerConfig(t, *m.Prometheus.AlertmanagerConfig)
}

// TestExtraFlagsReplace: a flag of extraFlags replaces the module's of the
// same name (--no-X included), repeatable ones are added, and the binary
// starts with the result and serves /metrics.
func TestExtraFlagsReplace(t *testing.T) {
	var e hostEval
	out := evalNix(t, "--arg", "podman", "true", "--arg", "exporter", `{ enable = true; datadog.address = "127.0.0.1:8125"; datadog.tags = [ "env:test" ];
		extraFlags = [ "--collector.btrfs.subvolume-interval=10m" "--no-collector.journal" "--datadog.tags=team:sre" "--collector.podman.socket=user=unix:///run/user/1000/podman/podman.sock" ]; }`)
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatal(err)
	}
	count := func(prefix string) int {
		n := 0
		for _, a := range e.Argv {
			if a == prefix || strings.HasSuffix(prefix, "=") && strings.HasPrefix(a, prefix) {
				n++
			}
		}
		return n
	}
	for prefix, want := range map[string]int{
		"--collector.btrfs.subvolume-interval=": 1, "--collector.journal": 0, "--no-collector.journal": 1,
		"--datadog.tags=": 3, "--collector.podman.socket=": 1,
	} {
		if got := count(prefix); got != want {
			t.Errorf("%d flags %s..., want %d: %q", got, prefix, want, e.Argv)
		}
	}
	// (--help would not do: it answers before kingpin checks for repeats.)
	scrapeHostExporter(t, e, []string{"journal"}, []string{"podman"})
}

func TestHostShapes(t *testing.T) {
	hosts := []struct {
		name   string
		role   string
		units  []string
		check  func(t *testing.T, e hostEval)
		absent []string // collectors the host must not run
		extra  []string // collectors it must run beyond the defaults
		// The exporter's sandbox: capabilities, groups, address filter.
		caps, groups, ipAllow string
	}{
		{"yoga", "workstation", []string{"panther-exporter", "panther-vmagent"}, checkWorkstation, nil, []string{"podman", "journal"},
			"[CAP_DAC_READ_SEARCH CAP_SYS_ADMIN]", "[podman systemd-journal]", "<nil>"},
		{"zephyrus", "workstation", []string{"panther-exporter", "panther-vmagent"}, checkWorkstation, nil, []string{"podman", "journal", "diskhealth"},
			"[CAP_DAC_READ_SEARCH CAP_SYS_ADMIN CAP_SYS_RAWIO]", "[podman systemd-journal]", "<nil>"},
		{"hetzner-vps", "server", []string{"panther-exporter"}, checkAgentHost, nil, []string{"podman", "journal"},
			"[CAP_DAC_READ_SEARCH CAP_SYS_ADMIN]", "[podman datadog systemd-journal]", "[localhost 192.0.2.20]"},
		{"ovh-cloud", "server", []string{"panther-exporter", "panther-vmalert"}, checkMonitoringHost, []string{"podman"}, []string{"journal"},
			"[CAP_DAC_READ_SEARCH CAP_SYS_ADMIN]", "[systemd-journal]", "<nil>"},
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			e := evalHost(t, h.name)
			var units []string
			for n, u := range e.Units {
				if u != nil {
					units = append(units, n)
				}
			}
			sort.Strings(units)
			if !slices.Equal(units, h.units) {
				t.Errorf("units %q, want %q", units, h.units)
			}
			sc := e.ServiceConfig
			if got := fmt.Sprint(sc["CapabilityBoundingSet"]); got != h.caps || fmt.Sprint(sc["AmbientCapabilities"]) != h.caps {
				t.Errorf("exporter capabilities %s (ambient %v), want %s", got, sc["AmbientCapabilities"], h.caps)
			}
			if got := fmt.Sprint(sc["SupplementaryGroups"]); got != h.groups {
				t.Errorf("exporter SupplementaryGroups %s, want %s", got, h.groups)
			}
			if got := fmt.Sprint(sc["IPAddressAllow"]); got != h.ipAllow || (h.ipAllow != "<nil>") != (sc["IPAddressDeny"] == "any") {
				t.Errorf("exporter IPAddressAllow %s (IPAddressDeny %v), want %s", got, sc["IPAddressDeny"], h.ipAllow)
			}
			if sc["DynamicUser"] != true || sc["ProtectSystem"] != "strict" || sc["NoNewPrivileges"] != true {
				t.Errorf("exporter sandbox lost its base: %v", sc)
			}
			verifyUnits(t, e)
			scrapeHostExporter(t, e, h.absent, h.extra)
			if e.Logs.UploadURL == nil || !strings.Contains(*e.Logs.UploadURL, "extra_fields=host="+h.name+",role="+h.role) {
				t.Errorf("journal upload URL %v does not carry host=%s,role=%s", e.Logs.UploadURL, h.name, h.role)
			}
			h.check(t, e)
		})
	}
}

// checkWorkstation: the laptop pushes (vmagent, buffer on disk), opens no
// port, and Debian's vmagent takes its flags and scrape config.
func checkWorkstation(t *testing.T, e hostEval) {
	if len(e.Firewall) != 0 {
		t.Errorf("a roaming workstation opens ports %v", e.Firewall)
	}
	if e.Fleet.ScrapeConfig == nil {
		t.Fatal("push: no vmagent scrape config")
	}
	argv := unitArgv(t, e.Units["panther-vmagent"])
	if !slices.Contains(argv, "-remoteWrite.url=http://ovh-cloud.lan:8428/api/v1/write") {
		t.Errorf("vmagent does not push to the monitoring host: %q", argv)
	}
	vmagentDryRun(t, argv, *e.Fleet.ScrapeConfig)
	if e.Datadog.Agent != nil {
		t.Errorf("a workstation runs the Datadog Agent")
	}
}

// checkAgentHost: the Datadog Agent reads its key from the OpNix file,
// tags the host as the exporter does, reads the journal, and the exporter
// sends to the Agent's socket as a member of its group.
func checkAgentHost(t *testing.T, e hostEval) {
	a := e.Datadog.Agent
	if a == nil {
		t.Fatal("no Datadog Agent")
	}
	if a.APIKeyFile != "/run/opnix/secrets/datadog-api-key" || a.Hostname != "hetzner-vps" {
		t.Errorf("Agent apiKeyFile %q, hostname %q", a.APIKeyFile, a.Hostname)
	}
	for _, tag := range []string{"role:server", "instance:hetzner-vps", "env:prod", "provider:hetzner"} {
		if !slices.Contains(a.Tags, tag) {
			t.Errorf("Agent tags %q lack %s", a.Tags, tag)
		}
	}
	if !slices.Contains(e.Datadog.ExtraGroups, "systemd-journal") || !e.Logs.DatadogLogs {
		t.Errorf("the Agent ships the journal: extraGroups %q, logs %v", e.Datadog.ExtraGroups, e.Logs.DatadogLogs)
	}
	socket, _ := a.ExtraConfig["dogstatsd_socket"].(string)
	if socket == "" || !slices.Contains(e.Argv, "--datadog.address=unix://"+socket) {
		t.Errorf("exporter argv %q does not send to the Agent's socket %q", e.Argv, socket)
	}
	if groups := fmt.Sprint(e.ServiceConfig["SupplementaryGroups"]); !strings.Contains(groups, "datadog") {
		t.Errorf("the exporter is not in the Agent's group: SupplementaryGroups %s", groups)
	}
	if !slices.Equal(e.Firewall, []int{9567}) {
		t.Errorf("the scraped server opens %v, want [9567]", e.Firewall)
	}
}

// checkMonitoringHost: prometheus.yml passes promtool, the Alertmanager
// configuration passes amtool and routes as the policy says, vmalert takes
// its flags and the rule files.
func checkMonitoringHost(t *testing.T, e hostEval) {
	if !e.Prometheus.Enable {
		t.Fatal("Prometheus is off on the monitoring host")
	}
	promtoolCheckConfig(t, e.Prometheus.Yml)
	for _, want := range []string{`"targets":["hetzner-vps.lan:9567"]`, `"remote_write":[{"url":"http://127.0.0.1:8428/api/v1/write"}]`} {
		if !strings.Contains(e.Prometheus.Yml, want) {
			t.Errorf("prometheus.yml lacks %s:\n%s", want, e.Prometheus.Yml)
		}
	}
	if e.Prometheus.AlertmanagerConfig == nil {
		t.Fatal("no Alertmanager")
	}
	checkAlertmanagerConfig(t, *e.Prometheus.AlertmanagerConfig)
	for _, c := range []string{"pagerduty-routing-key:/run/opnix/secrets/pagerduty-routing-key", "chat-webhook-url:/run/opnix/secrets/chat-webhook-url"} {
		if !slices.Contains(e.LoadCredential, c) {
			t.Errorf("Alertmanager LoadCredential %q lacks %s", e.LoadCredential, c)
		}
	}
	argv := unitArgv(t, e.Units["panther-vmalert"])
	rules := 0
	for _, a := range argv {
		if r, ok := strings.CutPrefix(a, "-rule="); ok {
			rules++
			if _, err := os.Stat(r); err != nil {
				t.Errorf("vmalert rule file: %v", err)
			}
		}
	}
	if rules == 0 {
		t.Errorf("vmalert has no -rule: %q", argv)
	}
	runDry(t, "vmalert", argv)
}

// promtoolCheckConfig runs promtool check config on a rendered prometheus.yml.
func promtoolCheckConfig(t *testing.T, yml string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(f, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	output(t, exec.Command(tool(t, "promtool"), "check", "config", f))
}

// unitArgv is a unit's ExecStart as the argv systemd runs.
func unitArgv(t *testing.T, u *hostUnit) []string {
	t.Helper()
	if u == nil {
		t.Fatal("no such unit")
	}
	line, _ := u.ServiceConfig["ExecStart"].(string)
	argv, err := execline.Split(line)
	if err != nil || len(argv) == 0 {
		t.Fatalf("ExecStart %q: %v", line, err)
	}
	return argv
}

// realProgram is the program on this machine for a unit's store path.
func realProgram(t *testing.T, unitName, argv0 string) string {
	switch {
	case !strings.HasPrefix(argv0, "/nix/store/"):
		return argv0
	case unitName == "panther-exporter":
		return binary(t)
	default:
		return tool(t, filepath.Base(argv0))
	}
}

// renderUnitFile writes a unit as NixOS's systemd library does ([Unit],
// [Service], [Install]), the store path of ExecStart's program replaced by
// the program on this machine so that verify can check it.
func renderUnitFile(t *testing.T, name string, u *hostUnit) string {
	t.Helper()
	var b strings.Builder
	line := func(k string, v any) { writeUnitSetting(&b, k, v) }
	section := func(m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "ExecStart" {
				argv0 := unitArgv(t, u)[0]
				s := m[k].(string)
				fmt.Fprintf(&b, "ExecStart=%s\n", strings.Replace(s, `"`+argv0+`"`, `"`+realProgram(t, name, argv0)+`"`, 1))
				continue
			}
			line(k, m[k])
		}
	}
	b.WriteString("[Unit]\n")
	line("Description", u.Description)
	for _, a := range u.After {
		line("After", a)
	}
	for _, w := range u.Wants {
		line("Wants", w)
	}
	section(u.UnitConfig)
	b.WriteString("\n[Service]\n")
	section(u.ServiceConfig)
	b.WriteString("\n[Install]\n")
	for _, w := range u.WantedBy {
		line("WantedBy", w)
	}
	return b.String()
}

// verifyUnits runs systemd-analyze verify over every unit the pantherOS
// modules define on the host. verify exits 0 on an unknown key or a bad
// value ("ignoring"), so any line it prints about the files fails.
func verifyUnits(t *testing.T, e hostEval) {
	t.Helper()
	if out := unitComplaints(t, e.Units); out != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
}

// unitComplaints is what systemd-analyze verify says about the units, or
// "" when it accepts them.
func unitComplaints(t *testing.T, units map[string]*hostUnit) string {
	t.Helper()
	sa := tool(t, "systemd-analyze")
	dir := t.TempDir()
	var files []string
	for name, u := range units {
		if u == nil {
			continue
		}
		f := filepath.Join(dir, name+".service")
		if err := os.WriteFile(f, []byte(renderUnitFile(t, name, u)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, files...)...)
	out, err := cmd.CombinedOutput()
	var complaints []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, dir) || strings.Contains(l, "panther-") {
			complaints = append(complaints, l)
		}
	}
	if err != nil || len(complaints) > 0 {
		return fmt.Sprintf("%v\n%s", err, out)
	}
	return ""
}

// TestUnitComplaintsFail: the verify check fails on what verify only warns
// about (a bad value, an unknown key, a missing program).
func TestUnitComplaintsFail(t *testing.T) {
	for _, sc := range []map[string]any{
		{"ExecStart": `"/bin/true"`, "Restart": "sometimes"},
		{"ExecStart": `"/bin/true"`, "ProtectSytem": "strict"},
		{"ExecStart": `"/nonexistent/bin/x"`},
	} {
		u := &hostUnit{Description: "x", WantedBy: []string{"multi-user.target"}, ServiceConfig: sc}
		if out := unitComplaints(t, map[string]*hostUnit{"panther-vmalert": u}); out == "" {
			t.Errorf("systemd-analyze verify accepted %v", sc)
		} else {
			t.Logf("%v: %s", sc, strings.TrimSpace(out))
		}
	}
}

// scrapeHostExporter starts the exporter with the host's command line
// (only the listen address, state file and store paths moved to this
// machine; a Datadog socket to one the test reads) and scrapes it: every
// flag is accepted, the collectors the host must run report, those it must
// not are absent, and the sink's datagrams reach the socket.
func scrapeHostExporter(t *testing.T, e hostEval, absent, extra []string) {
	t.Helper()
	if len(e.Argv) < 2 {
		t.Fatalf("exporter argv %q", e.Argv)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	store := regexp.MustCompile(`/nix/store/[a-z0-9]{32}-[^/]+/bin/([^/ ]+)`)
	var dsd net.PacketConn
	argv := []string{}
	for _, a := range e.Argv[1:] {
		switch {
		case strings.HasPrefix(a, "--web.listen-address="):
			a = "--web.listen-address=" + addr
		case strings.HasPrefix(a, "--collector.journal.state-file="):
			a = "--collector.journal.state-file=" + filepath.Join(dir, "journal.state")
		case strings.HasPrefix(a, "--datadog.address=unix://"):
			sock := filepath.Join(dir, "dsd.socket")
			if dsd, err = net.ListenPacket("unixgram", sock); err != nil {
				t.Fatal(err)
			}
			defer dsd.Close()
			a = "--datadog.address=unix://" + sock
		}
		a = store.ReplaceAllStringFunc(a, func(p string) string { return tool(t, store.FindStringSubmatch(p)[1]) })
		if strings.Contains(a, "/nix/store/") {
			t.Fatalf("flag %q names a store path this test cannot map", a)
		}
		argv = append(argv, a)
	}
	cmd := exec.Command(binary(t), argv...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); logs <- string(b) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				body = string(b)
				break
			}
		}
		select {
		case werr := <-exited:
			t.Fatalf("the exporter with the host's flags %q exited: %v\n%s", argv, werr, <-logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter with the host's flags %q did not serve /metrics in 20s: %v", argv, err)
		}
	}
	for _, c := range append([]string{"system", "btrfs", "boot", "nix"}, extra...) {
		if !strings.Contains(body, `panther_scrape_collector_success{collector="`+c+`"}`) {
			t.Errorf("collector %s does not report", c)
		}
	}
	for _, c := range absent {
		if strings.Contains(body, `collector="`+c+`"`) {
			t.Errorf("collector %s runs on a host without it", c)
		}
	}
	if dsd != nil {
		// The client's own telemetry comes first; wait for the collectors'.
		dsd.SetReadDeadline(time.Now().Add(45 * time.Second))
		buf := make([]byte, 65536)
		for {
			n, _, err := dsd.ReadFrom(buf)
			if err != nil {
				t.Errorf("no panther datagram with the role tag on the Agent's socket: %v", err)
				break
			}
			if got := string(buf[:n]); strings.Contains(got, "panther.") && strings.Contains(got, "role:server") {
				break
			}
		}
	}
}
