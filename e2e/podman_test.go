//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startPodmanExporter runs the exporter with only the podman collector on
// the given services, refreshing fast enough for tests.
func startPodmanExporter(t testing.TB, svcs ...*PodmanService) *Exporter {
	t.Helper()
	args := []string{"--collector.disable-defaults", "--collector.podman",
		"--collector.podman.list-interval=2s", "--collector.podman.stats-interval=1s",
		"--collector.podman.timeout=5s"}
	for _, s := range svcs {
		args = append(args, "--collector.podman.socket="+s.Flag())
	}
	return startExporter(t, args...)
}

// scrapeNoFail fetches /metrics without failing the test (for eventually).
func scrapeNoFail(e *Exporter) (Families, error) {
	body, err := e.Get("/metrics")
	if err != nil {
		return nil, err
	}
	return ParseFamilies(body)
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// volatile containers change state while we look (the restart loop); only
// their identity and monotonic counts are compared exactly.
var volatile = map[string]bool{"looper": true}

// comparePS checks every container figure of the scrape against
// `podman ps --all --format json` and `podman inspect` of the same service.
func comparePS(t *testing.T, f Families, s *PodmanService) error {
	ps := s.PS(t)
	if got := len(f.Series("panther_podman_container_info", lbl("socket", s.Name))); got != len(ps) {
		return fmt.Errorf("%s: %d containers exported, podman ps lists %d", s.Name, got, len(ps))
	}
	byState := map[string]float64{}
	for name, c := range ps {
		byState[c.State]++
		id := c.ID[:12]
		if v, ok := f.Value("panther_podman_container_info", lbl("socket", s.Name, "name", name, "id", id, "image", c.Image, "pod", c.PodName)); !ok || v != 1 {
			return fmt.Errorf("%s/%s: no info series with id=%s image=%s pod=%q", s.Name, name, id, c.Image, c.PodName)
		}
		var in []struct {
			RestartCount int
			State        struct {
				OOMKilled bool
				Health    *struct{ Status string }
			}
		}
		s.PodmanJSON(t, &in, "inspect", "--type", "container", name)
		if len(in) != 1 {
			return fmt.Errorf("inspect %s: %d results", name, len(in))
		}
		restarts, _ := f.Value("panther_podman_container_restarts_total", lbl("socket", s.Name, "name", name))
		if volatile[name] {
			if restarts > float64(in[0].RestartCount) || restarts < 1 {
				return fmt.Errorf("%s/%s: restarts %v, inspect says %d now", s.Name, name, restarts, in[0].RestartCount)
			}
			continue
		}
		if restarts != float64(in[0].RestartCount) {
			return fmt.Errorf("%s/%s: restarts %v, inspect says %d", s.Name, name, restarts, in[0].RestartCount)
		}
		if h := in[0].State.Health; h != nil && h.Status != "" {
			if v, _ := f.Value("panther_podman_container_health", lbl("socket", s.Name, "name", name, "health", h.Status)); v != 1 {
				return fmt.Errorf("%s/%s: health %q not 1", s.Name, name, h.Status)
			}
		}
		if v, ok := f.Value("panther_podman_container_state", lbl("socket", s.Name, "name", name, "state", c.State)); !ok || v != 1 {
			return fmt.Errorf("%s/%s: state %s not 1 (%v)", s.Name, name, c.State, ok)
		}
		if v, _ := f.Value("panther_podman_container_exit_code", lbl("socket", s.Name, "name", name)); v != float64(c.ExitCode) {
			return fmt.Errorf("%s/%s: exit code %v, podman ps says %d", s.Name, name, v, c.ExitCode)
		}
		if v, _ := f.Value("panther_podman_container_created_timestamp_seconds", lbl("socket", s.Name, "name", name)); int64(v) != c.Created {
			return fmt.Errorf("%s/%s: created %v, podman ps says %d", s.Name, name, v, c.Created)
		}
		if c.StartedAt > 0 {
			if v, _ := f.Value("panther_podman_container_started_timestamp_seconds", lbl("socket", s.Name, "name", name)); int64(v) != c.StartedAt {
				return fmt.Errorf("%s/%s: started %v, podman ps says %d", s.Name, name, v, c.StartedAt)
			}
		}
		if c.State == "exited" && c.ExitedAt > 0 {
			if v, _ := f.Value("panther_podman_container_finished_timestamp_seconds", lbl("socket", s.Name, "name", name)); int64(v) != c.ExitedAt {
				return fmt.Errorf("%s/%s: finished %v, podman ps says %d", s.Name, name, v, c.ExitedAt)
			}
		}
	}
	if _, in := ps["looper"]; !in {
		for state, n := range byState {
			if v, _ := f.Value("panther_podman_containers", lbl("socket", s.Name, "state", state)); v != n {
				return fmt.Errorf("%s: containers{state=%s} = %v, podman ps counts %v", s.Name, state, v, n)
			}
		}
	}
	var pods []struct {
		Name, Status string
		Containers   []struct{ Id string }
	}
	s.PodmanJSON(t, &pods, "pod", "ps", "--format", "json")
	for _, p := range pods {
		if v, _ := f.Value("panther_podman_pod_containers", lbl("socket", s.Name, "name", p.Name)); v != float64(len(p.Containers)) {
			return fmt.Errorf("%s: pod %s has %v containers, podman pod ps says %d", s.Name, p.Name, v, len(p.Containers))
		}
		if v, _ := f.Value("panther_podman_pod_state", lbl("socket", s.Name, "name", p.Name, "state", p.Status)); v != 1 {
			return fmt.Errorf("%s: pod %s state %s not 1", s.Name, p.Name, p.Status)
		}
	}
	var imgs, vols []map[string]any
	s.PodmanJSON(t, &imgs, "images", "--format", "json")
	s.PodmanJSON(t, &vols, "volume", "ls", "--format", "json")
	if v, _ := f.Value("panther_podman_images", lbl("socket", s.Name)); v != float64(len(imgs)) {
		return fmt.Errorf("%s: images %v, podman images lists %d", s.Name, v, len(imgs))
	}
	if v, _ := f.Value("panther_podman_volumes", lbl("socket", s.Name)); v != float64(len(vols)) {
		return fmt.Errorf("%s: volumes %v, podman volume ls lists %d", s.Name, v, len(vols))
	}
	return nil
}

var humanSize = regexp.MustCompile(`^([0-9.]+)([kMGT]?B)$`)

// parseHuman reads podman's decimal sizes ("340kB", "25.28GB").
func parseHuman(s string) (float64, error) {
	m := humanSize.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("size %q", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[m[2]]
	return v * mult, err
}

func parsePair(s string) (float64, float64, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("pair %q", s)
	}
	x, err := parseHuman(a)
	if err != nil {
		return 0, 0, err
	}
	y, err := parseHuman(b)
	return x, y, err
}

// near: podman prints sizes to 3-4 significant digits.
func near(a, b float64) bool { return math.Abs(a-b) <= 0.01*math.Max(math.Abs(a), math.Abs(b))+1000 }

// compareStats checks the running containers' stats against `podman stats
// --no-stream --format json` taken right after the scrape.
func compareStats(t *testing.T, f Families, s *PodmanService) error {
	st := s.Stats(t)
	ps := s.PS(t)
	age, ok := f.Value("panther_podman_stats_age_seconds", lbl("socket", s.Name))
	if !ok {
		return fmt.Errorf("%s: no stats yet", s.Name)
	}
	n := 0
	for name, c := range ps {
		if c.State != "running" || volatile[name] {
			continue
		}
		p, ok := st[name]
		if !ok {
			return fmt.Errorf("%s/%s: not in podman stats", s.Name, name)
		}
		l := lbl("socket", s.Name, "name", name)
		cpu, ok := f.Value("panther_podman_container_cpu_seconds_total", l)
		if !ok {
			return fmt.Errorf("%s/%s: no cpu series", s.Name, name)
		}
		d, err := time.ParseDuration(p.CPUTime)
		if err != nil {
			return err
		}
		// The exporter's sample is at most age old; CPU can only have grown
		// since, by at most one CPU's worth.
		if cpu > d.Seconds()+0.001 || d.Seconds()-cpu > age+3 {
			return fmt.Errorf("%s/%s: cpu %v s, podman stats %v (sample age %.1fs)", s.Name, name, cpu, d, age)
		}
		use, limit, err := parsePair(p.MemUsage)
		if err != nil {
			return err
		}
		mu, _ := f.Value("panther_podman_container_memory_usage_bytes", l)
		ml, _ := f.Value("panther_podman_container_memory_limit_bytes", l)
		if !near(mu, use) || !near(ml, limit) {
			return fmt.Errorf("%s/%s: memory %v/%v, podman stats %q", s.Name, name, mu, ml, p.MemUsage)
		}
		pids, _ := f.Value("panther_podman_container_pids", l)
		if strconv.Itoa(int(pids)) != p.PIDs {
			return fmt.Errorf("%s/%s: pids %v, podman stats %s", s.Name, name, pids, p.PIDs)
		}
		rx, tx, err := parsePair(p.NetIO)
		if err != nil {
			return err
		}
		erx, _ := f.Value("panther_podman_container_network_receive_bytes_total", l)
		etx, _ := f.Value("panther_podman_container_network_transmit_bytes_total", l)
		if !near(erx, rx) || !near(etx, tx) {
			return fmt.Errorf("%s/%s: net %v/%v, podman stats %q", s.Name, name, erx, etx, p.NetIO)
		}
		br, bw, err := parsePair(p.BlockIO)
		if err != nil {
			return err
		}
		ebr, _ := f.Value("panther_podman_container_block_read_bytes_total", l)
		ebw, _ := f.Value("panther_podman_container_block_written_bytes_total", l)
		if !near(ebr, br) || !near(ebw, bw) {
			return fmt.Errorf("%s/%s: block %v/%v, podman stats %q", s.Name, name, ebr, ebw, p.BlockIO)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no running container compared", s.Name)
	}
	return nil
}

// diedNonZero counts the deaths with a non-zero exit code that podman
// logged for name since since.
func diedNonZero(t *testing.T, s *PodmanService, name string, since time.Time) (died, restarts float64) {
	for _, e := range s.PodmanEvents(t, name, since) {
		switch e["Status"] {
		case "died":
			if code, _ := e["ContainerExitCode"].(float64); code != 0 {
				died++
			}
		case "restart":
			restarts++
		}
	}
	return died, restarts
}

// compareEvents checks the exporter's event counters against `podman
// events` for containers created after the exporter subscribed.
func compareEvents(t *testing.T, e *Exporter, s *PodmanService, since time.Time, names ...string) error {
	for _, name := range names {
		f1, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		died, restarts := diedNonZero(t, s, name, since)
		f2, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		l := lbl("socket", s.Name, "name", name)
		d1, _ := f1.Value("panther_podman_container_nonzero_exits_total", l)
		d2, _ := f2.Value("panther_podman_container_nonzero_exits_total", l)
		r1, _ := f1.Value("panther_podman_container_restart_events_total", l)
		r2, _ := f2.Value("panther_podman_container_restart_events_total", l)
		// podman events was read between two scrapes.
		if died < d1 || died > d2 || restarts < r1 || restarts > r2 {
			return fmt.Errorf("%s/%s: exporter counted deaths %v..%v restarts %v..%v; podman events: %v deaths, %v restarts",
				s.Name, name, d1, d2, r1, r2, died, restarts)
		}
		if died == 0 {
			return fmt.Errorf("%s/%s: no non-zero death logged yet", s.Name, name)
		}
	}
	return nil
}

func TestPodmanCollector(t *testing.T) {
	serial(t)
	a := startPodmanService(t, "alpha")
	b := startPodmanService(t, "beta")
	podmanImage(t, a)
	podmanImage(t, b)

	// Present before the exporter starts.
	a.Run(t, "sleeper", nil, "sleep", "1000000")
	a.Run(t, "burner", []string{"--cpus", "0.2"}, "sh", "-c", "while :; do :; done")
	a.Run(t, "hc", []string{"--health-cmd", "exit 1", "--health-interval", "0", "--health-retries", "1"}, "sleep", "1000000")
	a.CreatePod(t, "pod1")
	a.Run(t, "pod1-a", []string{"--pod", "pod1"}, "sleep", "1000000")
	a.Run(t, "pod1-b", []string{"--pod", "pod1"}, "sleep", "1000000")
	a.MustPodman(t, "volume", "create", "vol1")
	b.Run(t, "b-sleeper", nil, "sleep", "1000000")
	b.Run(t, "b-exited", nil, "sh", "-c", "exit 0")

	e := startPodmanExporter(t, a, b)
	eventually(t, 30*time.Second, "both sockets up", func() error {
		f, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		for _, s := range []*PodmanService{a, b} {
			if v, _ := f.Value("panther_podman_up", lbl("socket", s.Name)); v != 1 {
				return fmt.Errorf("podman_up{socket=%s} = %v", s.Name, v)
			}
		}
		return nil
	})

	// Created after the exporter subscribed to events, so that every
	// event of theirs is counted.
	since := time.Now().Add(-time.Second)
	a.Run(t, "exit3", nil, "sh", "-c", "exit 3")
	a.Run(t, "oom", []string{"--memory", "20m", "--memory-swap", "20m"}, "sh", "-c", "x=a; while :; do x=$x$x; done")
	a.Run(t, "looper", []string{"--restart", "always"}, "sh", "-c", "sleep 2; exit 1")
	// Healthchecks run from systemd timers normally; drive it by hand.
	if _, err := a.Podman("healthcheck", "run", "hc"); err == nil {
		t.Fatal("podman healthcheck run hc succeeded; its check is `exit 1`")
	}
	eventually(t, 60*time.Second, "exit3 and oom exited, looper restarted twice", func() error {
		ps := a.PS(t)
		if ps["exit3"].State != "exited" || ps["oom"].State != "exited" {
			return fmt.Errorf("exit3 %s, oom %s", ps["exit3"].State, ps["oom"].State)
		}
		var in []struct{ RestartCount int }
		a.PodmanJSON(t, &in, "inspect", "--type", "container", "looper")
		if len(in) != 1 || in[0].RestartCount < 2 {
			return fmt.Errorf("looper restarts: %+v", in)
		}
		return nil
	})
	if ps := a.PS(t); ps["oom"].ExitCode != 137 || ps["exit3"].ExitCode != 3 {
		t.Fatalf("oom exited %d (want 137, SIGKILL by the OOM killer), exit3 exited %d", ps["oom"].ExitCode, ps["exit3"].ExitCode)
	}

	for _, s := range []*PodmanService{a, b} {
		eventually(t, 60*time.Second, "metrics of "+s.Name+" agree with podman ps/inspect", func() error {
			f, err := scrapeNoFail(e)
			if err != nil {
				return err
			}
			return comparePS(t, f, s)
		})
		eventually(t, 60*time.Second, "stats of "+s.Name+" agree with podman stats", func() error {
			f, err := scrapeNoFail(e)
			if err != nil {
				return err
			}
			return compareStats(t, f, s)
		})
	}
	eventually(t, 60*time.Second, "event counters agree with podman events", func() error {
		return compareEvents(t, e, a, since, "exit3", "oom", "looper")
	})
	// OOM kills: podman records them in inspect's OOMKilled (Debian's 4.3
	// with conmon 2.1.6 does not: conmon writes its oom file where 4.3 does
	// not look, so there the count must be 0, as podman says).
	eventually(t, 30*time.Second, "oom kills agree with podman inspect", func() error {
		var in []struct{ State struct{ OOMKilled bool } }
		a.PodmanJSON(t, &in, "inspect", "--type", "container", "oom")
		want := 0.0
		if len(in) == 1 && in[0].State.OOMKilled {
			want = 1
		}
		f, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		if v, ok := f.Value("panther_podman_container_oom_kills_total", lbl("socket", "alpha", "name", "oom")); !ok || v != want {
			return fmt.Errorf("oom_kills_total{oom} = %v (%v), podman inspect OOMKilled gives %v", v, ok, want)
		}
		return nil
	})
	f := e.Scrape(t)
	if v, _ := f.Value("panther_podman_container_health", lbl("socket", "alpha", "name", "hc", "health", "unhealthy")); v != 1 {
		t.Errorf("hc not unhealthy after a failed healthcheck run")
	}
	if v, _ := f.Value("panther_podman_pods", lbl("socket", "alpha", "state", "Running")); v != 1 {
		t.Errorf("pods{state=Running} = %v", v)
	}

	// Kill alpha: the scrape still answers, alpha is down, beta is not.
	a.Kill()
	eventually(t, 30*time.Second, "alpha down, beta up", func() error {
		f, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		if v, ok := f.Value("panther_podman_up", lbl("socket", "alpha")); !ok || v != 0 {
			return fmt.Errorf("up{alpha} = %v", v)
		}
		if v, _ := f.Value("panther_podman_up", lbl("socket", "beta")); v != 1 {
			return fmt.Errorf("up{beta} = %v", v)
		}
		if len(f.Series("panther_podman_container_info", lbl("socket", "alpha"))) != 0 {
			return fmt.Errorf("alpha's containers still reported while it is down")
		}
		return comparePS(t, f, b)
	})

	// Restart it: data and event counting resume.
	a.Restart()
	since2 := time.Now().Add(-time.Second)
	eventually(t, 60*time.Second, "alpha back up", func() error {
		f, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		if v, _ := f.Value("panther_podman_up", lbl("socket", "alpha")); v != 1 {
			return fmt.Errorf("up{alpha} = %v", v)
		}
		return nil
	})
	a.Run(t, "after-restart", nil, "sh", "-c", "exit 5")
	eventually(t, 60*time.Second, "alpha agrees with podman again", func() error {
		f, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		return comparePS(t, f, a)
	})
	eventually(t, 60*time.Second, "events counted after the restart", func() error {
		return compareEvents(t, e, a, since2, "after-restart")
	})
}

// TestPodmanRootless: --collector.podman.rootless finds a user's rootless
// service under /run/user/<uid> and names its socket after the user.
func TestPodmanRootless(t *testing.T) {
	serial(t)
	r := startRootlessPodman(t, "panther-rootless")
	if _, err := r.Podman("run", "-d", "--network", "none", "--name", "rl-sleeper", PodmanImage, "sleep", "1000000"); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, "--collector.disable-defaults", "--collector.podman", "--collector.podman.rootless",
		"--collector.podman.socket=none=unix:///nonexistent/podman.sock", "--collector.podman.list-interval=2s",
		"--collector.podman.stats-interval=1s")
	eventually(t, 60*time.Second, "the rootless socket is found and agrees with the user's podman ps", func() error {
		f, err := scrapeNoFail(e)
		if err != nil {
			return err
		}
		if v, _ := f.Value("panther_podman_up", lbl("socket", r.User)); v != 1 {
			return fmt.Errorf("podman_up{socket=%s} = %v", r.User, v)
		}
		if v, ok := f.Value("panther_podman_up", lbl("socket", "none")); !ok || v != 0 {
			return fmt.Errorf("podman_up{socket=none} = %v, %v", v, ok)
		}
		out, err := r.Podman("ps", "--all", "--format", "json")
		if err != nil {
			return err
		}
		var ps []PodmanPS
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			return err
		}
		if got := len(f.Series("panther_podman_container_info", lbl("socket", r.User))); got != len(ps) || got == 0 {
			return fmt.Errorf("%d containers exported, the user's podman ps lists %d", got, len(ps))
		}
		for _, c := range ps {
			if v, _ := f.Value("panther_podman_container_info", lbl("socket", r.User, "id", c.ID[:12], "name", c.Names[0])); v != 1 {
				return fmt.Errorf("no info for %s %s", c.ID[:12], c.Names[0])
			}
			if v, _ := f.Value("panther_podman_container_state", lbl("socket", r.User, "name", c.Names[0], "state", c.State)); v != 1 {
				return fmt.Errorf("%s: state %s not 1", c.Names[0], c.State)
			}
		}
		return nil
	})
}
