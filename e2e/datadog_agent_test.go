//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/internal/execline"
	"github.com/pantheros/monitoring/internal/testenv"
)

// TestDatadogAgentSocket: the exporter's sink reaches the Agent's DogStatsD
// socket with the permissions nixos/datadog.nix sets, as an unprivileged
// user in the Agent's group, and nobody else does. statsd_exporter on a
// unix datagram socket stands in for the Agent: it runs as the Agent's
// user in a directory made like the unit's RuntimeDirectory (owner agent,
// group datadog, RuntimeDirectoryMode), its socket is made 0722 as the
// Agent makes it, then the module's own ExecStartPost script narrows it.
func TestDatadogAgentSocket(t *testing.T) {
	serial(t)
	requireRoot(t)
	setpriv := requireTool(t, "setpriv")
	statsd := requireTool(t, "statsd_exporter")

	// What the module sets, evaluated.
	out, err := exec.Command(requireTool(t, "nix-instantiate"), "--eval", "--strict", "--json", "../nixos/testdata/eval.nix",
		"--arg", "nixpkgsLib", testenv.NixpkgsLib(t, ".."), "--arg", "exporter", `{ enable = true; datadog.agent = { enable = true; apiKeyFile = "/run/opnix/dd"; }; }`,
		"--arg", "monitoring", `{ enable = false; }`, "--arg", "podman", "false").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("nix-instantiate --eval ../nixos/testdata/eval.nix: %v\n%s", err, stderr)
	}
	var mod struct {
		Argv          execline.Line
		ServiceConfig struct{ SupplementaryGroups []string }
		Datadog       struct {
			Agent struct {
				ExtraConfig struct {
					DogstatsdSocket string `json:"dogstatsd_socket"`
				}
			}
			ServiceConfig struct {
				RuntimeDirectory, RuntimeDirectoryMode string
				ExecStartPost                          []string
			}
		}
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	sc := mod.Datadog.ServiceConfig
	moduleSocket := mod.Datadog.Agent.ExtraConfig.DogstatsdSocket
	if moduleSocket != "/run/"+sc.RuntimeDirectory+"/dsd.socket" || len(sc.ExecStartPost) != 1 {
		t.Fatalf("module: socket %q, RuntimeDirectory %q, ExecStartPost %q", moduleSocket, sc.RuntimeDirectory, sc.ExecStartPost)
	}
	var sinkFlags []string
	for _, a := range mod.Argv[1:] {
		if strings.HasPrefix(a, "--datadog.") {
			sinkFlags = append(sinkFlags, a)
		}
	}
	if len(sinkFlags) == 0 || sinkFlags[0] != "--datadog.address=unix://"+moduleSocket {
		t.Fatalf("module's sink flags %q do not name the socket %s", sinkFlags, moduleSocket)
	}
	var dirMode os.FileMode
	if _, err := fmt.Sscanf(sc.RuntimeDirectoryMode, "%o", &dirMode); err != nil {
		t.Fatal(err)
	}

	// The Agent's user and group (fixed ids, as the datadog user and group
	// of NixOS), the exporter's DynamicUser stand-in (nobody).
	const agentUID, datadogGID = 4251, 4252
	base, err := os.MkdirTemp("", "panther-dd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755) // like /run
	dir := filepath.Join(base, sc.RuntimeDirectory)
	if err := os.Mkdir(dir, dirMode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, agentUID, datadogGID); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, dirMode) // past the umask
	sock := filepath.Join(dir, filepath.Base(moduleSocket))

	// The Agent stand-in, as the Agent's user.
	r := &StatsdReceiver{Mode: "unixgram", Address: "unix://" + sock, webAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), t: t}
	r.Process = startProcess(t, nil, setpriv, fmt.Sprintf("--reuid=%d", agentUID), fmt.Sprintf("--regid=%d", datadogGID), "--clear-groups",
		statsd, "--web.listen-address="+r.webAddr, "--statsd.parse-dogstatsd-tags", "--statsd.listen-tcp=",
		"--statsd.listen-udp=", "--statsd.listen-unixgram="+sock, "--log.level=warn")
	eventually(t, 20*time.Second, "statsd_exporter answers as the agent user", func() error {
		if r.Exited() {
			t.Fatalf("statsd_exporter exited: %s", r.Output())
		}
		_, err := r.scrape()
		return err
	})
	// The Agent makes its socket 0722; the module's ExecStartPost (the same
	// command line, with this socket) takes "others" off it.
	if err := os.Chmod(sock, 0o722); err != nil {
		t.Fatal(err)
	}
	post := strings.Fields(strings.TrimPrefix(sc.ExecStartPost[0], "-"))
	if len(post) != 3 || filepath.Base(post[1])[33:] != "datadog-socket-mode.sh" {
		t.Fatalf("ExecStartPost %q: want SHELL SCRIPT SOCKET", sc.ExecStartPost[0])
	}
	if out, err := exec.Command("sh", "../nixos/datadog-socket-mode.sh", sock, "10").CombinedOutput(); err != nil {
		t.Fatalf("datadog-socket-mode.sh %s: %v\n%s", sock, err, out)
	}
	for path, want := range map[string]os.FileMode{dir: dirMode, sock: 0o720} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want || got&0o007 != 0 {
			t.Errorf("%s: mode %o, want %o with nothing for others", path, got, want)
		}
	}
	if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is not a socket", sock)
	}
	// The script fails, saying so, when the socket never comes.
	if out, err := exec.Command("sh", "../nixos/datadog-socket-mode.sh", filepath.Join(dir, "absent.socket"), "1").CombinedOutput(); err == nil || !strings.Contains(string(out), "absent.socket") {
		t.Errorf("datadog-socket-mode.sh on a missing socket: %v %s", err, out)
	}

	// startAs runs the exporter as nobody with the given supplementary
	// groups and the module's sink flags, aimed at this socket.
	startAs := func(groups, probe string) *Exporter {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		args := []string{"--reuid=65534", "--regid=65534", "--no-new-privs"}
		if groups == "" {
			args = append(args, "--clear-groups")
		} else {
			args = append(args, "--groups="+groups)
		}
		args = append(args, binary(t), "--web.listen-address="+addr, "--collector.disable-defaults", "--collector.system",
			"--datadog.address=unix://"+sock, "--datadog.interval=500ms", "--datadog.tags=probe:"+probe)
		for _, f := range sinkFlags[1:] {
			if !strings.HasPrefix(f, "--datadog.interval=") {
				args = append(args, f)
			}
		}
		e := &Exporter{Process: startProcess(t, nil, setpriv, args...), Addr: addr, URL: "http://" + addr}
		eventually(t, 20*time.Second, "exporter answers on "+addr, func() error {
			if e.Exited() {
				t.Fatalf("exporter exited: %s", e.Output())
			}
			_, err := e.Get("/metrics")
			return err
		})
		return e
	}
	member := startAs(fmt.Sprint(datadogGID), "member")
	outsider := startAs("", "outsider")

	probe := func(v string) map[string]string { return map[string]string{"probe": v} }
	eventually(t, 30*time.Second, "the member's metrics arrive at the Agent's socket", func() error {
		s := r.Scrape(t)
		if v, ok := s.Value("panther_scrape_collector_success", map[string]string{"probe": "member", "collector": "system"}); !ok || v != 1 {
			return fmt.Errorf("panther_scrape_collector_success{probe=member,collector=system} = %v (present %v)", v, ok)
		}
		if v, ok := s.Value("panther_datadog_flushes", probe("member")); !ok || v < 1 {
			return fmt.Errorf("panther_datadog_flushes{probe=member} = %v (present %v)", v, ok)
		}
		return nil
	})
	if v, _ := member.Scrape(t).Value("panther_datadog_packets_dropped_total", map[string]string{"reason": "writer"}); v != 0 {
		t.Errorf("the member dropped %v datagrams", v)
	}
	eventually(t, 30*time.Second, "the outsider's datagrams are refused and counted", func() error {
		if v, _ := outsider.Scrape(t).Value("panther_datadog_packets_dropped_total", map[string]string{"reason": "writer"}); v < 2 {
			return fmt.Errorf("outsider: panther_datadog_packets_dropped_total{reason=writer} = %v", v)
		}
		return nil
	})
	if n := len(r.Scrape(t).Series("panther_scrape_collector_success", probe("outsider"))); n != 0 {
		t.Errorf("an exporter outside the datadog group reached the socket (%d series)", n)
	}
}
