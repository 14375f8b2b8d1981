package podman

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

const marker = inputerrtest.Marker

// ParseStats with the marker in each place its errors could quote: the
// service's error report, a value of the wrong type, broken JSON.
func TestParseStatsQuotesNoInput(t *testing.T) {
	for _, in := range []string{
		`{"Error":"` + marker + `","Stats":[]}`,
		`{"Error":{"msg":"` + marker + `"},"Stats":[]}`,
		`{"Error":null,"Stats":[{"ContainerID":"x","CPUNano":"` + marker + `"}]}`,
		`{"Error":null,"Stats":[{"ContainerID":"x","CPUNano":-1` + marker + `}]}`,
		`{"Error":null,"Stats":[{"ContainerID":"x","CPUNano":` + marker + `}]}`,
		marker,
	} {
		_, err := ParseStats(strings.NewReader(in))
		if err == nil {
			t.Fatalf("ParseStats(%q): no error", in)
		}
		inputerrtest.CheckErr(t, "ParseStats", err)
	}
}

// A service whose every answer carries the marker: error replies with it
// in the message (JSON and plain text), lists with it in a mistyped field,
// broken JSON around it. The collector's errors and log name the socket and
// the kind of failure only.
func TestServiceAnswersQuoteNothing(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"json error reply": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"cause":"` + marker + `","message":"` + marker + `","response":500}`))
		},
		"text error reply": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(marker))
		},
		"conflict reply": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(marker))
		},
		"mistyped field": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`[{"Id":"` + marker + `","Names":"` + marker + `","State":7,"ExitCode":"` + marker + `"}]`))
		},
		"broken json": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`[{"Id":` + marker + `}]`))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeService(t)
			uri, _ := unixServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Libpod-API-Version", "4.3.1")
				if strings.HasSuffix(r.URL.Path, "/_ping") || strings.HasSuffix(r.URL.Path, "/events") {
					f.ServeHTTP(w, r)
					return
				}
				h(w, r)
			}))
			logger, logs := inputerrtest.Logger()
			p, err := New(collector.Config{Logger: logger}, Options{Sockets: []string{"s=" + uri},
				ListInterval: 20 * time.Millisecond, StatsInterval: 20 * time.Millisecond, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			p.Start()
			defer p.Stop()
			var last collectortest.Result
			// The list's error drops the connection, so the stats' error
			// shows in the log rather than in every scrape's error.
			waitFor(t, "the list's and the stats' errors reported", func() bool {
				last = collectortest.Collect(t, p)
				return last.Err != nil && strings.Contains(last.Err.Error(), "socket s") &&
					strings.Contains(logs(), "list containers") && strings.Contains(logs(), "stats")
			})
			inputerrtest.CheckErr(t, "collector error", last.Err)
			inputerrtest.Check(t, "log", logs())
		})
	}
}
