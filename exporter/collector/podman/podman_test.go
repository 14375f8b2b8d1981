package podman

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

// listed is the fixture's container list, decoded independently of the
// collector, to derive what the metrics must say.
type listed struct {
	ID       string `json:"Id"`
	Names    []string
	State    string
	ExitCode int
	PodName  string
	Image    string
}

func fixtureList(t *testing.T) []listed {
	var l []listed
	if err := json.Unmarshal(fixture(t, "containers-4.3.json"), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParseStatsFixture(t *testing.T) {
	st, err := ParseStats(bytes.NewReader(fixture(t, "stats-4.3.json")))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Stats []struct {
			ContainerID                 string
			CPUNano, MemUsage, MemLimit uint64
			PIDs                        uint64
		}
	}
	if err := json.Unmarshal(fixture(t, "stats-4.3.json"), &raw); err != nil {
		t.Fatal(err)
	}
	if len(st) != len(raw.Stats) || len(st) == 0 {
		t.Fatalf("parsed %d stats, fixture has %d", len(st), len(raw.Stats))
	}
	for _, r := range raw.Stats {
		s := st[r.ContainerID]
		if s.CPUSeconds != float64(r.CPUNano)/1e9 || s.MemUsage != float64(r.MemUsage) ||
			s.MemLimit != float64(r.MemLimit) || s.PIDs != float64(r.PIDs) {
			t.Errorf("%s: parsed %+v from %+v", r.ContainerID, s, r)
		}
	}
}

func TestParseStatsErrors(t *testing.T) {
	if _, err := ParseStats(bytes.NewReader(fixture(t, "stats-error-4.3.json"))); err == nil {
		t.Error("the service's error report parsed without error")
	}
	for _, in := range []string{"", "garbage", `{"Stats":[{"CPUNano":-1}]}`, `[1,2]`} {
		if _, err := ParseStats(strings.NewReader(in)); err == nil {
			t.Errorf("ParseStats(%q) succeeded", in)
		}
	}
	// v5 services report network per interface.
	st, err := ParseStats(strings.NewReader(`{"Error":null,"Stats":[{"ContainerID":"x","Network":{"eth0":{"RxBytes":5,"TxBytes":7},"eth1":{"RxBytes":1,"TxBytes":1}}}]}`))
	if err != nil || st["x"].NetRxBytes != 6 || st["x"].NetTxBytes != 8 {
		t.Errorf("v5 network stats: %+v %v", st, err)
	}
}

func readEvents(t testing.TB) []Event {
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(fixture(t, "events-4.3.jsonl")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestHandleEventsFixture(t *testing.T) {
	evs := readEvents(t)
	counts := map[string]*Counts{}
	want := map[string]*Counts{}
	inspects := 0
	for _, e := range evs {
		name := e.Actor.Attributes["name"]
		if e.Type == "container" {
			if want[name] == nil {
				want[name] = &Counts{}
			}
			switch e.Action {
			case "died":
				if e.Actor.Attributes["containerExitCode"] != "0" {
					want[name].NonZeroExits++
				}
			case "restart":
				want[name].RestartEvents++
			}
		}
		eff := HandleEvent(e, counts)
		if eff.Inspect != "" {
			inspects++
		}
	}
	if counts["loop"] == nil || counts["loop"].NonZeroExits == 0 || counts["loop"].RestartEvents == 0 {
		t.Fatalf("restart loop not counted: %+v", counts["loop"])
	}
	if counts["oom"] == nil || counts["oom"].NonZeroExits != 1 {
		t.Errorf("OOM-killed container's death (137) not counted: %+v", counts["oom"])
	}
	for name, w := range want {
		got := Counts{}
		if counts[name] != nil {
			got = *counts[name]
		}
		if got.NonZeroExits != w.NonZeroExits || got.RestartEvents != w.RestartEvents {
			t.Errorf("%s: counted %+v, want %+v", name, got, *w)
		}
	}
	if inspects == 0 {
		t.Error("no event asked for an inspect (died, health_status)")
	}
}

func TestParseSocketFlag(t *testing.T) {
	for in, want := range map[string][2]string{
		"root=unix:///run/podman/podman.sock":   {"root", "unix:///run/podman/podman.sock"},
		"dev=/run/user/1000/podman/podman.sock": {"dev", "unix:///run/user/1000/podman/podman.sock"},
		" a = tcp://127.0.0.1:8080 ":            {"a", "tcp://127.0.0.1:8080"},
	} {
		n, u, err := ParseSocketFlag(in)
		if err != nil || n != want[0] || u != want[1] {
			t.Errorf("ParseSocketFlag(%q) = %q, %q, %v", in, n, u, err)
		}
	}
	for _, in := range []string{"", "unix:///x", "=unix:///x", "a=", "a=relative.sock"} {
		if _, _, err := ParseSocketFlag(in); err == nil {
			t.Errorf("ParseSocketFlag(%q) accepted", in)
		}
	}
	if _, err := New(collectorConfig(), Options{Sockets: []string{"a=/x", "a=/y"}}); err == nil {
		t.Error("a socket name given twice was accepted")
	}
}

func TestDiscoverRootless(t *testing.T) {
	root, err := os.MkdirTemp("", "rootless")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"), 0o644)
	for _, uid := range []string{"1000", "1001", "1002"} {
		os.MkdirAll(filepath.Join(root, "run", "user", uid, "podman"), 0o755)
	}
	os.MkdirAll(filepath.Join(root, "run", "user", "notauid"), 0o755)
	for _, uid := range []string{"1000", "1001"} {
		l, err := net.Listen("unix", filepath.Join(root, "run", "user", uid, "podman", "podman.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	// 1002 has a regular file, not a socket.
	os.WriteFile(filepath.Join(root, "run", "user", "1002", "podman", "podman.sock"), nil, 0o644)
	got, err := DiscoverRootless(filepath.Join(root, "run", "user"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{"alice", "unix://" + filepath.Join(root, "run/user/1000/podman/podman.sock")},
		{"uid1001", "unix://" + filepath.Join(root, "run/user/1001/podman/podman.sock")},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("DiscoverRootless = %+v, want %+v", got, want)
	}
}

// TestSnapshotFromFakeService runs the collector against a unix socket that
// answers with the JSON captured from Debian's podman 4.3 service, and
// checks every figure against the fixtures.
func TestSnapshotFromFakeService(t *testing.T) {
	f := newFakeService(t)
	uri, _ := unixServer(t, f)
	p := newTest(t, 2*time.Second, "a="+uri)
	var r collectortest.Result
	waitFor(t, "snapshot with stats", func() bool {
		r = collectortest.Collect(t, p)
		_, ok := r.Lookup("panther_podman_stats_age_seconds", nil)
		return ok && r.Err == nil
	})
	if v, _ := r.Lookup("panther_podman_up", map[string]string{"socket": "a"}); v != 1 {
		t.Fatalf("up = %v", v)
	}
	list := fixtureList(t)
	states := map[string]float64{}
	for _, c := range list {
		name := c.Names[0]
		states[c.State]++
		lbl := map[string]string{"socket": "a", "name": name, "id": c.ID[:12], "image": c.Image, "pod": c.PodName}
		if v, ok := r.Lookup("panther_podman_container_info", lbl); !ok || v != 1 {
			t.Errorf("info %v missing", lbl)
		}
		if v, ok := r.Lookup("panther_podman_container_state", map[string]string{"name": name, "state": c.State}); !ok || v != 1 {
			t.Errorf("%s: state %s = %v, %v", name, c.State, v, ok)
		}
		if v, _ := r.Lookup("panther_podman_container_exit_code", map[string]string{"name": name}); v != float64(c.ExitCode) {
			t.Errorf("%s: exit code %v, want %d", name, v, c.ExitCode)
		}
		_, hasCPU := r.Lookup("panther_podman_container_cpu_seconds_total", map[string]string{"name": name})
		if hasCPU != (c.State == "running") {
			t.Errorf("%s (%s): cpu series present = %v", name, c.State, hasCPU)
		}
	}
	for s, n := range states {
		if v, _ := r.Lookup("panther_podman_containers", map[string]string{"state": s}); v != n {
			t.Errorf("containers{state=%s} = %v, want %v", s, v, n)
		}
	}
	var inspect map[string]struct {
		RestartCount int
		State        struct{ Health *struct{ Status string } }
	}
	json.Unmarshal(fixture(t, "inspect-4.3.json"), &inspect)
	for _, c := range list {
		in := inspect[c.ID]
		if v, _ := r.Lookup("panther_podman_container_restarts_total", map[string]string{"name": c.Names[0]}); v != float64(in.RestartCount) {
			t.Errorf("%s: restarts %v, want %d", c.Names[0], v, in.RestartCount)
		}
		if in.State.Health != nil && in.State.Health.Status != "" {
			if v, _ := r.Lookup("panther_podman_container_health", map[string]string{"name": c.Names[0], "health": in.State.Health.Status}); v != 1 {
				t.Errorf("%s: health %s not 1", c.Names[0], in.State.Health.Status)
			}
		}
	}
	var pods []struct {
		Name, Status string
		Containers   []json.RawMessage
	}
	json.Unmarshal(fixture(t, "pods-4.3.json"), &pods)
	for _, pd := range pods {
		if v, _ := r.Lookup("panther_podman_pod_containers", map[string]string{"name": pd.Name}); v != float64(len(pd.Containers)) {
			t.Errorf("pod %s containers %v, want %d", pd.Name, v, len(pd.Containers))
		}
	}
	var imgs []struct{ Size float64 }
	json.Unmarshal(fixture(t, "images-4.3.json"), &imgs)
	if v, _ := r.Lookup("panther_podman_images", nil); v != float64(len(imgs)) {
		t.Errorf("images %v, want %d", v, len(imgs))
	}

	// Everything else the snapshot exports, pinned; the ages move with the clock.
	r.Without("panther_podman_snapshot_age_seconds", "panther_podman_stats_age_seconds").
		Golden(t, "testdata/snapshot-4.3.prom")
}

// TestContainerVanishes: a container listed but gone by inspect time is
// left out without an error.
func TestContainerVanishes(t *testing.T) {
	f := newFakeService(t)
	list := fixtureList(t)
	gone := list[0]
	f.gone[gone.ID] = true
	uri, _ := unixServer(t, f)
	p := newTest(t, 2*time.Second, "a="+uri)
	var r collectortest.Result
	waitFor(t, "snapshot", func() bool {
		r = collectortest.Collect(t, p)
		_, ok := r.Lookup("panther_podman_snapshot_age_seconds", nil)
		up, _ := r.Lookup("panther_podman_up", nil)
		return ok && up == 1
	})
	if r.Err != nil {
		t.Errorf("error for a vanished container: %v", r.Err)
	}
	if _, ok := r.Lookup("panther_podman_container_state", map[string]string{"name": gone.Names[0], "state": gone.State}); ok {
		t.Errorf("vanished container %s still reported", gone.Names[0])
	}
	if _, ok := r.Lookup("panther_podman_container_state", map[string]string{"name": list[1].Names[0], "state": list[1].State}); !ok {
		t.Errorf("container %s missing", list[1].Names[0])
	}
}

// TestEventsCounted: events on the stream are counted per container.
func TestEventsCounted(t *testing.T) {
	f := newFakeService(t)
	f.events = append(f.events, strings.Split(strings.TrimSpace(string(fixture(t, "events-4.3.jsonl"))), "\n")...)
	uri, _ := unixServer(t, f)
	p := newTest(t, 2*time.Second, "a="+uri)
	want := map[string]*Counts{}
	for _, e := range readEvents(t) {
		HandleEvent(e, want)
	}
	waitFor(t, "events counted", func() bool {
		r := collectortest.Collect(t, p)
		for name, w := range want {
			got, _ := r.Lookup("panther_podman_container_nonzero_exits_total", map[string]string{"name": name})
			rs, _ := r.Lookup("panther_podman_container_restart_events_total", map[string]string{"name": name})
			if got != w.NonZeroExits || rs != w.RestartEvents {
				return false
			}
		}
		return true
	})
}

// TestGarbageSocket: a socket answering garbage to everything leaves the
// collector up, podman_up 0, with an error naming the socket.
func TestGarbageSocket(t *testing.T) {
	uri, _ := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Libpod-API-Version", "4.3.1")
		w.Write([]byte("\x00\xffnot json {{{"))
	}))
	good, _ := unixServer(t, newFakeService(t))
	p := newTest(t, time.Second, "bad="+uri, "good="+good)
	waitFor(t, "garbage reported", func() bool {
		r := collectortest.Collect(t, p)
		bad, _ := r.Lookup("panther_podman_up", map[string]string{"socket": "bad"})
		ok, _ := r.Lookup("panther_podman_up", map[string]string{"socket": "good"})
		return bad == 0 && ok == 1 && r.Err != nil && strings.Contains(r.Err.Error(), "socket bad") &&
			!strings.Contains(r.Err.Error(), "not connected yet")
	})
}

// TestHangingSocket: a socket that accepts and never answers does not make
// the scrape wait, and Stop still returns.
func TestHangingSocket(t *testing.T) {
	release := make(chan struct{})
	uri, srv := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	_ = srv
	p := newTest(t, 300*time.Millisecond, "hang="+uri)
	start := time.Now()
	r := collectortest.Collect(t, p)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("scrape took %s with a hanging socket", d)
	}
	if v, ok := r.Lookup("panther_podman_up", map[string]string{"socket": "hang"}); !ok || v != 0 {
		t.Errorf("up = %v, %v", v, ok)
	}
	waitFor(t, "deadline reported", func() bool {
		r := collectortest.Collect(t, p)
		return r.Err != nil && strings.Contains(r.Err.Error(), "deadline")
	})
}

// TestStatsErrorLoggedOnce: a stats call that keeps failing while the list
// works is reported on every scrape but logged once per change of state.
func TestStatsErrorLoggedOnce(t *testing.T) {
	f := newFakeService(t)
	uri, _ := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/containers/stats") {
			w.Write(fixture(t, "stats-error-4.3.json"))
			return
		}
		f.ServeHTTP(w, r)
	}))
	var buf lockedBuf
	p, err := New(collector.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))}, Options{Sockets: []string{"a=" + uri},
		ListInterval: 20 * time.Millisecond, StatsInterval: 20 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	defer p.Stop()
	waitFor(t, "stats error reported with up=1", func() bool {
		r := collectortest.Collect(t, p)
		up, _ := r.Lookup("panther_podman_up", nil)
		return up == 1 && r.Err != nil && strings.Contains(r.Err.Error(), "stats")
	})
	time.Sleep(300 * time.Millisecond) // ~15 list and stats rounds
	// Once while connecting (stats may land before the first list), once
	// more when the socket comes up; never once per round.
	if n := strings.Count(buf.String(), "service reported an error"); n < 1 || n > 2 {
		t.Errorf("stats error logged %d times:\n%s", n, buf.String())
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoPodmanIsNotPodmanDown: with no socket configured and the built-in
// default socket absent, the host has no Podman: nothing is exported, the
// collector succeeds and its note says why. Once the socket appears it is
// watched. A configured socket that is missing stays up 0 and an error.
func TestNoPodmanIsNotPodmanDown(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "podman.sock")
	p, err := New(collectorConfig(), Options{Default: "root=unix://" + sock, ListInterval: 50 * time.Millisecond,
		StatsInterval: 50 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(p.Stop)
	r := collectortest.Collect(t, p)
	if r.Err != nil {
		t.Errorf("no Podman on the host: Update error %v, want none", r.Err)
	}
	if len(r.Families) != 0 {
		t.Errorf("no Podman on the host: exported %v, want nothing", r.Names())
	}
	if n := p.Note(); !strings.Contains(n, "no Podman found") || !strings.Contains(n, sock) {
		t.Errorf("note %q does not say that no Podman was found at %s", n, sock)
	}

	// Podman gets installed: the default socket appears and is watched.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: newFakeService(t)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	waitFor(t, "default socket watched once it exists", func() bool {
		r := collectortest.Collect(t, p)
		up, ok := r.Lookup("panther_podman_up", map[string]string{"socket": "root"})
		return ok && up == 1 && r.Err == nil
	})
	if n := p.Note(); n != "" {
		t.Errorf("note %q with Podman present", n)
	}

	// The same socket named explicitly, missing: Podman down, as before.
	q := newTest(t, time.Second, "root=unix://"+filepath.Join(dir, "missing.sock"))
	waitFor(t, "configured missing socket is down", func() bool {
		r := collectortest.Collect(t, q)
		up, ok := r.Lookup("panther_podman_up", map[string]string{"socket": "root"})
		return ok && up == 0 && r.Err != nil && strings.Contains(r.Err.Error(), "socket root")
	})
}
