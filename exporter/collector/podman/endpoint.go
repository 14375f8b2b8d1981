package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// Container is what the snapshot keeps of one container.
type Container struct {
	ID       string // full ID
	Name     string
	Image    string
	Pod      string // pod name, "" when none
	State    string
	Health   string // healthy, unhealthy, starting; "" without a healthcheck
	ExitCode float64
	Restarts float64
	Created  float64 // Unix seconds; 0 when unknown
	Started  float64
	Finished float64
	IsInfra  bool
}

// Pod is what the snapshot keeps of one pod.
type Pod struct {
	Name       string
	State      string
	Containers int
}

// Snapshot is one socket's last complete view.
type Snapshot struct {
	Containers []Container      // sorted by name
	Stats      map[string]Stats // by full container ID
	Pods       []Pod
	Images     int
	ImageBytes float64
	Volumes    int
	ListedAt   time.Time
	StatsAt    time.Time
}

// status is a socket's health as the scrape sees it.
type status struct {
	up  bool
	err string // last error; "" when fine
}

// inspected caches what only inspect tells, per container ID.
type inspected struct {
	key            string // state|started|exited when inspected
	restarts       float64
	health         string
	hasHealthcheck bool
	oomKilled      bool
	finished       float64
}

type endpoint struct {
	name, uri string
	opts      Options
	logger    *slog.Logger

	mu       sync.Mutex
	snap     *Snapshot
	counts   map[string]*Counts
	st       status
	lastLog  string
	lastNano int64               // time of the last event seen, to resume after a reconnect
	partErr  map[string]string   // last error of the list and of the stats
	cache    []prometheus.Metric // built from snap, counts and st; nil after a change

	// owned by the list loop
	inspect   map[string]*inspected
	forceMu   sync.Mutex
	force     map[string]bool // IDs to inspect on the next list (after died/health events)
	oomDeaths map[string]bool // IDs whose death must be checked for an OOM kill
	relist    chan struct{}
}

func newEndpoint(name, uri string, o Options, logger *slog.Logger) *endpoint {
	return &endpoint{
		name: name, uri: uri, opts: o, logger: logger,
		counts:    map[string]*Counts{},
		st:        status{err: "not connected yet"},
		inspect:   map[string]*inspected{},
		force:     map[string]bool{},
		oomDeaths: map[string]bool{},
		relist:    make(chan struct{}, 1),
	}
}

// metrics returns the socket's metrics, built once per change of the
// snapshot, counters or status (see build), with the snapshot and status
// they came from.
func (e *endpoint) metrics() ([]prometheus.Metric, *Snapshot, status) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cache == nil {
		e.cache = build(e.name, e.snap, e.counts, e.st)
	}
	return e.cache, e.snap, e.st
}

// setStatus records the socket's state after the connection or the list
// (up given) or after stats (up kept), and logs each change once. The list
// and the stats each keep their own last error, so that one succeeding does
// not hide, then re-log, the other's lasting failure.
func (e *endpoint) setStatus(up bool, err error) { e.setPart(&up, "list", err) }

func (e *endpoint) setPart(up *bool, part string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	e.mu.Lock()
	was := e.st
	newUp := was.up
	if up != nil {
		newUp = *up
	}
	if !newUp && up != nil {
		e.partErr = map[string]string{} // a lost connection supersedes the rest
	}
	if e.partErr == nil {
		e.partErr = map[string]string{}
	}
	e.partErr[part] = msg
	var parts []string
	for _, k := range []string{"list", "stats"} {
		if m := e.partErr[k]; m != "" {
			parts = append(parts, m)
		}
	}
	msg = strings.Join(parts, "; ")
	up2 := newUp
	e.st = status{up: up2, err: msg}
	if was != e.st {
		e.cache = nil
	}
	logIt := msg != e.lastLog || was.up != up2
	e.lastLog = msg
	e.mu.Unlock()
	if !logIt {
		return
	}
	switch {
	case msg != "":
		e.logger.Error("podman socket", "uri", e.uri, "up", up2, "err", msg)
	case up2:
		e.logger.Info("podman socket is up", "uri", e.uri)
	}
}

// valuesCtx carries the bindings' connection values under another
// context's deadline: NewConnection puts the client into the context it
// returns, and every call must still get its own deadline.
type valuesCtx struct {
	context.Context
	vals context.Context
}

func (v valuesCtx) Value(k any) any { return v.vals.Value(k) }

// call returns a context for one API call with the given deadline.
func call(parent, conn context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, d)
	return valuesCtx{Context: ctx, vals: conn}, cancel
}

// run connects, serves until the connection fails, and reconnects with
// exponential backoff (1 s doubling to 30 s) until ctx ends.
func (e *endpoint) run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		began := time.Now()
		err := e.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		e.setStatus(false, err)
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// serve runs one connection: the events subscription, the list loop and the
// stats loop. It returns when the service stops answering.
func (e *endpoint) serve(parent context.Context) error {
	pctx, pcancel := context.WithTimeout(parent, e.opts.Timeout)
	conn, err := bindings.NewConnection(pctx, e.uri)
	pcancel()
	if err != nil {
		return fmt.Errorf("connect: %w", inputerr.Wrap("", err))
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); errc <- e.events(ctx, conn) }()
	go func() { defer wg.Done(); errc <- e.listLoop(ctx, conn) }()
	go func() { defer wg.Done(); errc <- e.statsLoop(ctx, conn) }()
	err = <-errc
	cancel()
	wg.Wait()
	return err
}

// events subscribes to the events stream and counts what it sees. It
// resumes from the last event seen, so events during a reconnect are
// counted once.
func (e *endpoint) events(ctx context.Context, conn context.Context) error {
	e.mu.Lock()
	last := e.lastNano
	e.mu.Unlock()
	since := ""
	if last > 0 {
		since = strconv.FormatInt(last/1e9, 10)
	}
	// The stream has no deadline of its own: it ends when ctx does or when
	// the service goes away.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ch := make(chan Event, 64)
	if err := streamEvents(sctx, conn, since, ch); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer func() {
		stop()
		for range ch { //nolint:revive // drain so the decoder goroutine ends
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-ch:
			if !ok {
				return errors.New("events stream ended")
			}
			nano := ev.TimeNano
			e.mu.Lock()
			if last > 0 && nano != 0 && nano <= last {
				e.mu.Unlock()
				continue // replayed by since=
			}
			if nano > e.lastNano {
				e.lastNano = nano
			}
			eff := HandleEvent(ev, e.counts)
			e.cache = nil
			e.mu.Unlock()
			if eff.Inspect != "" {
				e.forceMu.Lock()
				e.force[eff.Inspect] = true
				if ev.Action == "died" {
					e.oomDeaths[eff.Inspect] = true
				}
				e.forceMu.Unlock()
			}
			if eff.Relist {
				select {
				case e.relist <- struct{}{}:
				default:
				}
			}
		}
	}
}

// listLoop lists on the interval and soon after events (at most once a
// second). A failed list ends the connection.
func (e *endpoint) listLoop(ctx, conn context.Context) error {
	t := time.NewTicker(e.opts.ListInterval)
	defer t.Stop()
	for {
		if err := e.list(ctx, conn); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-e.relist:
			// let a burst of events settle
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
}

func unixOrZero(t time.Time) float64 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func secsOrZero(s int64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(s)
}

// list refreshes containers (inspecting those that changed), pods, images
// and volumes, then publishes the new snapshot. Only a failure of the
// container list is fatal; the others keep their last value and report.
func (e *endpoint) list(ctx, conn context.Context) error {
	var listed []listedContainer
	if err := e.get(ctx, conn, "/containers/json", url.Values{"all": {"true"}}, &listed); err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	snap := &Snapshot{ListedAt: time.Now()}
	gone, errs := e.inspectChanged(ctx, conn, listed)
	snap.Containers = containersOf(listed, gone, e.inspect)

	e.mu.Lock()
	prev := e.snap
	e.mu.Unlock()
	errs = append(errs,
		e.listPods(ctx, conn, snap, prev),
		e.listImages(ctx, conn, snap, prev),
		e.listVolumes(ctx, conn, snap, prev))

	e.publish(snap, prev)
	e.setStatus(true, errors.Join(errs...))
	return nil
}

// get is one API call under the per-call timeout.
func (e *endpoint) get(ctx, conn context.Context, path string, query url.Values, out any, pathValues ...string) error {
	cctx, cancel := call(ctx, conn, e.opts.Timeout)
	defer cancel()
	return get(cctx, conn, path, query, out, pathValues...)
}

// inspectJob is a listed container (by index) to inspect, with the state key
// it is inspected in.
type inspectJob struct {
	i   int
	key string
}

// inspectChanged inspects, four at a time, the containers that are new,
// changed state, were named by an event, or run a healthcheck, and forgets
// the containers no longer listed. gone holds the IDs removed between list
// and inspect.
func (e *endpoint) inspectChanged(ctx, conn context.Context, listed []listedContainer) (gone map[string]bool, errs []error) {
	e.forceMu.Lock()
	force, oomDeaths := e.force, e.oomDeaths
	e.force, e.oomDeaths = map[string]bool{}, map[string]bool{}
	e.forceMu.Unlock()

	jobs := e.changed(listed, force)
	gone = map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(j inspectJob) {
			defer wg.Done()
			defer func() { <-sem }()
			c := listed[j.i]
			in, err := e.inspectOne(ctx, conn, c.ID, j.key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case isGone(err):
				gone[c.ID] = true // removed between list and inspect
				return
			case err != nil:
				errs = append(errs, fmt.Errorf("inspect %s: %w", errID(c.ID), err))
				return
			}
			if oomDeaths[c.ID] && in.oomKilled && len(c.Names) > 0 && c.Names[0] != "" {
				e.countOOMKill(c.Names[0])
			}
			e.inspect[c.ID] = in
		}(j)
	}
	wg.Wait()
	return gone, errs
}

// changed picks the containers to inspect and drops the inspect cache of
// those no longer listed.
func (e *endpoint) changed(listed []listedContainer, force map[string]bool) []inspectJob {
	var jobs []inspectJob
	seen := map[string]bool{}
	for i, c := range listed {
		seen[c.ID] = true
		key := fmt.Sprintf("%s|%d|%d", c.State, c.StartedAt, c.ExitedAt)
		old := e.inspect[c.ID]
		if old == nil || old.key != key || force[c.ID] || (old.hasHealthcheck && c.State == "running") {
			jobs = append(jobs, inspectJob{i, key})
		}
	}
	for id := range e.inspect {
		if !seen[id] {
			delete(e.inspect, id)
		}
	}
	return jobs
}

// inspectOne reads what only inspect tells of one container.
func (e *endpoint) inspectOne(ctx, conn context.Context, id, key string) (*inspected, error) {
	var data inspectedContainer
	if err := e.get(ctx, conn, "/containers/%s/json", nil, &data, id); err != nil {
		return nil, err
	}
	in := &inspected{key: key, restarts: float64(data.RestartCount)}
	if data.Config != nil && data.Config.Healthcheck != nil && len(data.Config.Healthcheck.Test) > 0 && data.Config.Healthcheck.Test[0] != "NONE" {
		in.hasHealthcheck = true
	}
	if data.State != nil {
		in.oomKilled = data.State.OOMKilled
		in.finished = unixOrZero(data.State.FinishedAt)
		if data.State.Health != nil && data.State.Health.Status != "" {
			in.health = data.State.Health.Status
			in.hasHealthcheck = true
		}
	}
	return in, nil
}

// isGone tells a container removed since it was listed.
func isGone(err error) bool {
	if err == nil {
		return false
	}
	var me interface{ Code() int }
	return errors.As(err, &me) && me.Code() == http.StatusNotFound || isNoSuch(err)
}

// countOOMKill counts an OOM kill of the named container that inspect
// confirmed after its death.
func (e *endpoint) countOOMKill(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts[name] == nil {
		e.counts[name] = &Counts{}
	}
	e.counts[name].OOMKills++
	e.cache = nil
}

// containersOf builds the snapshot's containers, sorted by name, from the
// list and what inspect added.
func containersOf(listed []listedContainer, gone map[string]bool, inspect map[string]*inspected) []Container {
	var out []Container
	for _, c := range listed {
		if gone[c.ID] || len(c.Names) == 0 {
			continue
		}
		ct := Container{
			ID: c.ID, Name: c.Names[0], Image: c.Image, Pod: c.PodName, State: c.State,
			ExitCode: float64(c.ExitCode), Restarts: float64(c.Restarts),
			Created: unixOrZero(c.Created), Started: secsOrZero(c.StartedAt), IsInfra: c.IsInfra,
		}
		if c.Exited {
			ct.Finished = secsOrZero(c.ExitedAt)
		}
		if in := inspect[c.ID]; in != nil {
			ct.Restarts = max(ct.Restarts, in.restarts)
			ct.Health = in.health
			if in.finished > 0 && c.Exited {
				ct.Finished = in.finished
			}
		}
		out = append(out, ct)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// listPods fills snap.Pods; on failure it keeps prev's.
func (e *endpoint) listPods(ctx, conn context.Context, snap, prev *Snapshot) error {
	var ps []listedPod
	err := e.get(ctx, conn, "/pods/json", nil, &ps)
	if err != nil && prev != nil {
		snap.Pods = prev.Pods
	}
	for _, p := range ps {
		snap.Pods = append(snap.Pods, Pod{Name: p.Name, State: p.Status, Containers: len(p.Containers)})
	}
	sort.Slice(snap.Pods, func(i, j int) bool { return snap.Pods[i].Name < snap.Pods[j].Name })
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	return nil
}

// listImages fills snap's image count and bytes; on failure it keeps prev's.
func (e *endpoint) listImages(ctx, conn context.Context, snap, prev *Snapshot) error {
	var imgs []listedImage
	if err := e.get(ctx, conn, "/images/json", nil, &imgs); err != nil {
		if prev != nil {
			snap.Images, snap.ImageBytes = prev.Images, prev.ImageBytes
		}
		return fmt.Errorf("list images: %w", err)
	}
	for _, im := range imgs {
		snap.Images++
		snap.ImageBytes += float64(im.Size)
	}
	return nil
}

// listVolumes fills snap's volume count; on failure it keeps prev's.
func (e *endpoint) listVolumes(ctx, conn context.Context, snap, prev *Snapshot) error {
	var vols []json.RawMessage
	if err := e.get(ctx, conn, "/volumes/json", nil, &vols); err != nil {
		if prev != nil {
			snap.Volumes = prev.Volumes
		}
		return fmt.Errorf("list volumes: %w", err)
	}
	snap.Volumes = len(vols)
	return nil
}

// publish makes snap the endpoint's view, keeping the last stats (the stats
// loop refreshes them on its own interval).
func (e *endpoint) publish(snap, prev *Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if prev != nil {
		snap.Stats, snap.StatsAt = prev.Stats, prev.StatsAt
	}
	e.snap = snap
	e.cache = nil
}

func isNoSuch(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.noSuch
}

// statsLoop takes stats of every container on the interval. A failed stats
// call is reported but does not end the connection: the list still works.
func (e *endpoint) statsLoop(ctx, conn context.Context) error {
	t := time.NewTicker(e.opts.StatsInterval)
	defer t.Stop()
	for {
		st, err := e.stats(ctx, conn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.mu.Lock()
		if err == nil {
			if e.snap == nil {
				e.snap = &Snapshot{}
			}
			s := *e.snap
			s.Stats, s.StatsAt = st, time.Now()
			e.snap = &s
			e.cache = nil
		}
		e.mu.Unlock()
		e.setPart(nil, "stats", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// stats asks for one report of every container, using the endpoint both
// 4.x and 5.x services serve, and decodes it with ParseStats.
func (e *endpoint) stats(ctx, conn context.Context) (map[string]Stats, error) {
	client, err := bindings.GetClient(conn)
	if err != nil {
		return nil, inputerr.Wrap("", err)
	}
	sctx, cancel := call(ctx, conn, 3*e.opts.Timeout)
	defer cancel()
	params := url.Values{}
	params.Set("stream", "false")
	resp, err := client.DoRequest(sctx, nil, http.MethodGet, "/containers/stats", params, nil)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", inputerr.Wrap("", err))
	}
	defer resp.Body.Close()
	if !resp.IsSuccess() {
		return nil, fmt.Errorf("stats: %w", process(resp, nil))
	}
	return ParseStats(resp.Body)
}

// errID is the 12-character form of a container ID for an error, or
// "a container" when the answer's ID is not hex (it is the answer's bytes).
func errID(id string) string {
	if len(id) < 12 {
		return "a container"
	}
	for _, c := range id[:12] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "a container"
		}
	}
	return id[:12]
}
