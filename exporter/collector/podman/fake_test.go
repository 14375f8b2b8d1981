package podman

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantheros/monitoring/exporter/collector"
)

// unixServer serves h on a unix socket in a temporary directory and
// returns the socket's URI.
func unixServer(t *testing.T, h http.Handler) (string, *httptest.Server) {
	t.Helper()
	dir, err := os.MkdirTemp("", "podman-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "podman.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + path, srv
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var versioned = regexp.MustCompile(`^/v[0-9][0-9A-Za-z.-]*/libpod`)

// fakeService answers the libpod API with the fixtures captured from
// Debian's podman 4.3 service (testdata/*-4.3.json).
type fakeService struct {
	t       *testing.T
	mu      sync.Mutex
	gone    map[string]bool // inspect answers 404 for these IDs
	events  []string        // lines sent on /events, then the stream stays open
	inspect map[string]json.RawMessage
}

func newFakeService(t *testing.T) *fakeService {
	f := &fakeService{t: t, gone: map[string]bool{}}
	if err := json.Unmarshal(fixture(t, "inspect-4.3.json"), &f.inspect); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versioned.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Libpod-API-Version", "4.3.1")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case path == "/_ping":
		w.Write([]byte("OK"))
	case path == "/containers/json":
		w.Write(fixture(f.t, "containers-4.3.json"))
	case path == "/containers/stats":
		w.Write(fixture(f.t, "stats-4.3.json"))
	case path == "/pods/json":
		w.Write(fixture(f.t, "pods-4.3.json"))
	case path == "/images/json":
		w.Write(fixture(f.t, "images-4.3.json"))
	case path == "/volumes/json":
		w.Write(fixture(f.t, "volumes-4.3.json"))
	case path == "/events":
		f.mu.Lock()
		lines := f.events
		f.mu.Unlock()
		for _, l := range lines {
			w.Write([]byte(l + "\n"))
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		f.mu.Lock()
		gone := f.gone[id]
		f.mu.Unlock()
		data, ok := f.inspect[id]
		if gone || !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"cause":"no such container","message":"no container with name or ID \"` + id + `\" found: no such container","response":404}`))
			return
		}
		w.Write(data)
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"cause":"not found","message":"not found","response":404}`))
	}
}

func newTest(t *testing.T, timeout time.Duration, sockets ...string) *Podman {
	t.Helper()
	p, err := New(collector.Config{}, Options{Sockets: sockets, ListInterval: 50 * time.Millisecond,
		StatsInterval: 50 * time.Millisecond, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
