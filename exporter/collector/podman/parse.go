package podman

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// Stats is what the collector keeps of one container's stats.
type Stats struct {
	CPUSeconds   float64
	MemUsage     float64
	MemLimit     float64
	PIDs         float64
	NetRxBytes   float64
	NetTxBytes   float64
	BlockRead    float64
	BlockWritten float64
}

// statsReport is the answer of GET /libpod/containers/stats?stream=false.
// It is decoded here rather than by the bindings because the bindings' type
// (v5) dropped the flat NetInput/NetOutput fields that a 4.x service sends,
// and its Error field (an interface) cannot be decoded at all.
type statsReport struct {
	Error json.RawMessage
	Stats []struct {
		ContainerID string
		Name        string
		CPUNano     uint64
		MemUsage    uint64
		MemLimit    uint64
		PIDs        uint64
		NetInput    uint64
		NetOutput   uint64
		Network     map[string]struct {
			RxBytes uint64
			TxBytes uint64
		}
		BlockInput  uint64
		BlockOutput uint64
	}
}

// ParseStats decodes one stats report (the first JSON document of r) into
// stats by full container ID.
func ParseStats(r io.Reader) (map[string]Stats, error) {
	var rep statsReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("decode stats: %w", inputerr.Wrap("", err))
	}
	if e := bytes.TrimSpace(rep.Error); len(e) > 0 && !bytes.Equal(e, []byte("null")) {
		// Its text quotes the host's paths and names; it is not shown.
		return nil, errors.New("stats: service reported an error (its text is not shown: it may quote the host)")
	}
	out := make(map[string]Stats, len(rep.Stats))
	for _, s := range rep.Stats {
		if s.ContainerID == "" {
			continue
		}
		st := Stats{
			CPUSeconds:   float64(s.CPUNano) / 1e9,
			MemUsage:     float64(s.MemUsage),
			MemLimit:     float64(s.MemLimit),
			PIDs:         float64(s.PIDs),
			NetRxBytes:   float64(s.NetInput),
			NetTxBytes:   float64(s.NetOutput),
			BlockRead:    float64(s.BlockInput),
			BlockWritten: float64(s.BlockOutput),
		}
		if len(s.Network) > 0 {
			st.NetRxBytes, st.NetTxBytes = 0, 0
			for _, n := range s.Network {
				st.NetRxBytes += float64(n.RxBytes)
				st.NetTxBytes += float64(n.TxBytes)
			}
		}
		out[s.ContainerID] = st
	}
	return out, nil
}

// Counts are what the events stream counted for one container name.
type Counts struct {
	OOMKills      float64
	NonZeroExits  float64
	RestartEvents float64
}

// EventEffect says what the worker should do after an event.
type EventEffect struct {
	Relist  bool   // the container/pod/image/volume lists changed
	Inspect string // container ID to inspect (after a death: was it an OOM kill?)
}

// HandleEvent counts one event into counts (by container name) and says
// what to refresh. It never fails: unknown events are ignored.
func HandleEvent(e Event, counts map[string]*Counts) EventEffect {
	var eff EventEffect
	action := string(e.Action)
	if action == "" {
		action = e.Status //nolint:staticcheck // older services fill only status
	}
	switch e.Type {
	case "container":
	case "pod", "image", "volume":
		eff.Relist = true
		return eff
	default:
		return eff
	}
	name := e.Actor.Attributes["name"]
	id := e.Actor.ID
	if id == "" {
		id = e.ID //nolint:staticcheck
	}
	get := func() *Counts {
		if name == "" {
			return &Counts{}
		}
		c := counts[name]
		if c == nil {
			c = &Counts{}
			counts[name] = c
		}
		return c
	}
	switch action {
	case "died":
		if code, err := strconv.Atoi(e.Actor.Attributes["containerExitCode"]); err == nil && code != 0 {
			get().NonZeroExits++
		}
		eff.Relist, eff.Inspect = true, id
	case "oom":
		get().OOMKills++
		eff.Relist = true
	case "restart":
		get().RestartEvents++
		eff.Relist = true
	case "health_status":
		eff.Relist, eff.Inspect = true, id
	case "create", "init", "start", "stop", "remove", "cleanup", "pause", "unpause", "rename", "kill", "exited":
		eff.Relist = true
	}
	return eff
}

// ParsePasswd maps uid to user name from an /etc/passwd file.
func ParsePasswd(r io.Reader) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] == "" {
			continue
		}
		if _, err := strconv.ParseUint(f[2], 10, 32); err != nil {
			continue
		}
		if _, dup := out[f[2]]; !dup {
			out[f[2]] = f[0]
		}
	}
	return out
}

// Socket is a named Podman API endpoint.
type Socket struct{ Name, URI string }

// DiscoverRootless finds runUser/<uid>/podman/podman.sock for every uid
// and names each after its user (from the passwd file next to runUser's
// root, i.e. <rootfs>/etc/passwd), or "uid<N>" when unknown.
func DiscoverRootless(runUser string) ([]Socket, error) {
	ents, err := os.ReadDir(runUser)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	if f, err := os.Open(filepath.Join(runUser, "..", "..", "etc", "passwd")); err == nil {
		users = ParsePasswd(f)
		f.Close()
	}
	var out []Socket
	for _, e := range ents {
		uid := e.Name()
		if _, err := strconv.ParseUint(uid, 10, 32); err != nil {
			continue
		}
		sock := filepath.Join(runUser, uid, "podman", "podman.sock")
		fi, err := os.Stat(sock)
		if err != nil || fi.Mode().Type() != os.ModeSocket {
			continue
		}
		name := users[uid]
		if name == "" {
			name = "uid" + uid
		}
		out = append(out, Socket{Name: name, URI: "unix://" + sock})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		return nil, errors.New("no rootless podman sockets under " + runUser)
	}
	return out, nil
}
