package podman

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

func collectorConfig() collector.Config { return collector.Config{} }

func FuzzParseStats(f *testing.F) {
	f.Add(fixture(f, "stats-4.3.json"), uint(2))
	f.Add(fixture(f, "stats-error-4.3.json"), uint(3))
	f.Add([]byte(`{"Error":null,"Stats":[{"ContainerID":"x","Network":{"eth0":{"RxBytes":5}}}]}`), uint(4))
	f.Fuzz(func(t *testing.T, b []byte, at uint) {
		_, err := ParseStats(bytes.NewReader(inputerrtest.Plant(b, at)))
		inputerrtest.CheckErr(t, "ParseStats", err)
		st, err := ParseStats(bytes.NewReader(b))
		if err != nil && st != nil {
			t.Fatal("stats and an error")
		}
	})
}

func FuzzHandleEvent(f *testing.F) {
	for _, l := range strings.Split(string(fixture(f, "events-4.3.jsonl")), "\n") {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if json.Unmarshal(b, &e) != nil {
			return
		}
		counts := map[string]*Counts{}
		HandleEvent(e, counts)
		for name, c := range counts {
			if name == "" || c.NonZeroExits < 0 || c.OOMKills < 0 || c.RestartEvents < 0 {
				t.Fatalf("bad count %q %+v", name, c)
			}
		}
	})
}

func FuzzParseSocketFlag(f *testing.F) {
	f.Add("root=unix:///run/podman/podman.sock")
	f.Add("a=/x")
	f.Fuzz(func(t *testing.T, s string) {
		n, u, err := ParseSocketFlag(s)
		if err == nil && (n == "" || !strings.Contains(u, "://")) {
			t.Fatalf("accepted %q as %q %q", s, n, u)
		}
	})
}

func FuzzParsePasswd(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
	f.Fuzz(func(t *testing.T, s string) {
		for uid, name := range ParsePasswd(strings.NewReader(s)) {
			if uid == "" || name == "" {
				t.Fatalf("empty entry %q=%q", uid, name)
			}
		}
	})
}
