package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/pantheros/monitoring/exporter/datadog/ddcheck"
)

const (
	testAPIKey = "0123456789abcdef0123456789abcdef"
	testAppKey = "fedcba9876543210fedcba9876543210fedcba98"
)

// fakeDatadog serves the paths of the Datadog API v1 that panther-datadog
// uses, keeps monitors and dashboards in memory, and decodes every body it
// is sent strictly into the client's own models (datadogV1.Monitor,
// MonitorUpdateRequest, Dashboard): an unknown key or a bad enum fails the
// test. Like Datadog, it fills in defaults the client never sent (option
// defaults, widget ids, creator), so that comparing on the file's keys is
// exercised.
type fakeDatadog struct {
	t          *testing.T
	mu         sync.Mutex
	nextID     int64
	monitors   map[int64]map[string]any
	dashboards map[string]map[string]any
	writes     []string // METHOD path of every change
}

func newFake(t *testing.T) (*fakeDatadog, *httptest.Server) {
	f := &fakeDatadog{t: t, nextID: 1000, monitors: map[int64]map[string]any{}, dashboards: map[string]map[string]any{}}
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return f, s
}

var (
	monitorPath   = regexp.MustCompile(`^/api/v1/monitor/([0-9]+)$`)
	dashboardPath = regexp.MustCompile(`^/api/v1/dashboard/([a-z0-9-]+)$`)
)

func (f *fakeDatadog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("DD-API-KEY") != testAPIKey || r.Header.Get("DD-APPLICATION-KEY") != testAppKey {
		http.Error(w, `{"errors":["Forbidden"]}`, http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodGet {
		f.writes = append(f.writes, r.Method+" "+r.URL.Path)
	}
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/api/v1/monitor":
		f.listMonitors(w, r)
	case r.Method == http.MethodPost && p == "/api/v1/monitor":
		var m datadogV1.Monitor
		if !f.decode(w, body, &m) {
			return
		}
		if m.Id != nil {
			f.fail(w, "POST /api/v1/monitor with an id")
			return
		}
		f.nextID++
		doc := generic(f.t, m)
		doc["id"] = float64(f.nextID)
		f.monitors[f.nextID] = withMonitorDefaults(doc)
		writeJSON(w, f.monitors[f.nextID])
	case monitorPath.MatchString(p):
		id, _ := strconv.ParseInt(monitorPath.FindStringSubmatch(p)[1], 10, 64)
		have, ok := f.monitors[id]
		if !ok {
			http.Error(w, `{"errors":["Monitor not found"]}`, http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, have)
		case http.MethodPut:
			var u datadogV1.MonitorUpdateRequest
			if !f.decode(w, body, &u) {
				return
			}
			for k, v := range generic(f.t, u) { // the fields sent replace
				have[k] = v
			}
			writeJSON(w, withMonitorDefaults(have))
		case http.MethodDelete:
			delete(f.monitors, id)
			writeJSON(w, map[string]any{"deleted_monitor_id": id})
		default:
			f.fail(w, r.Method+" "+p)
		}
	case r.Method == http.MethodGet && p == "/api/v1/dashboard":
		f.listDashboards(w, r)
	case r.Method == http.MethodPost && p == "/api/v1/dashboard":
		var d datadogV1.Dashboard
		if !f.decode(w, body, &d) {
			return
		}
		f.nextID++
		id := fmt.Sprintf("abc-%03d-xyz", f.nextID%1000)
		doc := generic(f.t, d)
		doc["id"] = id
		f.dashboards[id] = withDashboardDefaults(doc, &f.nextID)
		writeJSON(w, f.dashboards[id])
	case dashboardPath.MatchString(p):
		id := dashboardPath.FindStringSubmatch(p)[1]
		if _, ok := f.dashboards[id]; !ok {
			http.Error(w, `{"errors":["Dashboard not found"]}`, http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, f.dashboards[id])
		case http.MethodPut:
			var d datadogV1.Dashboard
			if !f.decode(w, body, &d) {
				return
			}
			doc := generic(f.t, d)
			doc["id"] = id
			f.dashboards[id] = withDashboardDefaults(doc, &f.nextID)
			writeJSON(w, f.dashboards[id])
		case http.MethodDelete:
			delete(f.dashboards, id)
			writeJSON(w, map[string]any{"deleted_dashboard_id": id})
		default:
			f.fail(w, r.Method+" "+p)
		}
	default:
		f.fail(w, r.Method+" "+p)
	}
}

func (f *fakeDatadog) fail(w http.ResponseWriter, what string) {
	f.t.Errorf("fake Datadog: unexpected request %s", what)
	http.Error(w, `{"errors":["unexpected"]}`, http.StatusBadRequest)
}

// decode decodes a request body into a model of the client, strictly.
func (f *fakeDatadog) decode(w http.ResponseWriter, body []byte, v any) bool {
	if err := json.Unmarshal(body, v); err != nil {
		f.t.Errorf("fake Datadog: body does not decode into %T: %v\n%s", v, err, body)
		http.Error(w, `{"errors":["bad body"]}`, http.StatusBadRequest)
		return false
	}
	if p := ddcheck.Strict(v); len(p) > 0 {
		f.t.Errorf("fake Datadog: body is not strictly a %T: %v", v, p)
		http.Error(w, `{"errors":["bad body"]}`, http.StatusBadRequest)
		return false
	}
	return true
}

func (f *fakeDatadog) listMonitors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var want []string
	if mt := q.Get("monitor_tags"); mt != "" {
		want = strings.Split(mt, ",")
	}
	page, _ := strconv.Atoi(q.Get("page"))
	size, err := strconv.Atoi(q.Get("page_size"))
	if err != nil || size < 1 {
		size = 100
	}
	var ids []int64
	for id, m := range f.monitors {
		tags := map[string]bool{}
		for _, t := range m["tags"].([]any) {
			tags[t.(string)] = true
		}
		ok := true
		for _, t := range want {
			ok = ok && tags[t]
		}
		if ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := []any{}
	for i := page * size; i < len(ids) && i < (page+1)*size; i++ {
		out = append(out, f.monitors[ids[i]])
	}
	writeJSON(w, out)
}

func (f *fakeDatadog) listDashboards(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, _ := strconv.Atoi(q.Get("start"))
	count, err := strconv.Atoi(q.Get("count"))
	if err != nil || count < 1 {
		count = 100
	}
	var ids []string
	for id := range f.dashboards {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := []any{}
	for i := start; i < len(ids) && i < start+count; i++ {
		d := f.dashboards[ids[i]]
		out = append(out, map[string]any{"id": d["id"], "title": d["title"], "description": d["description"],
			"layout_type": d["layout_type"], "url": "/dashboard/" + ids[i], "author_handle": "someone@example.com"})
	}
	writeJSON(w, map[string]any{"dashboards": out})
}

func withMonitorDefaults(m map[string]any) map[string]any {
	opts, _ := m["options"].(map[string]any)
	if opts == nil {
		opts = map[string]any{}
		m["options"] = opts
	}
	for k, v := range map[string]any{"notify_audit": false, "new_group_delay": float64(60), "silenced": map[string]any{}, "include_tags": true} {
		if _, ok := opts[k]; !ok {
			opts[k] = v
		}
	}
	m["creator"] = map[string]any{"email": "someone@example.com", "handle": "someone@example.com", "name": "Someone"}
	m["overall_state"] = "No Data"
	m["multi"] = true
	if _, ok := m["restricted_roles"]; !ok {
		m["restricted_roles"] = nil
	}
	return m
}

func withDashboardDefaults(d map[string]any, next *int64) map[string]any {
	var ids func(ws any)
	ids = func(ws any) {
		list, _ := ws.([]any)
		for _, w := range list {
			wm := w.(map[string]any)
			*next++
			wm["id"] = float64(*next)
			if def, ok := wm["definition"].(map[string]any); ok {
				ids(def["widgets"])
			}
		}
	}
	ids(d["widgets"])
	d["author_handle"] = "someone@example.com"
	d["url"] = "/dashboard/" + d["id"].(string)
	if _, ok := d["notify_list"]; !ok {
		d["notify_list"] = []any{}
	}
	return d
}

func generic(t *testing.T, v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeDatadog) seedMonitor(m map[string]any) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	m["id"] = float64(f.nextID)
	f.monitors[f.nextID] = withMonitorDefaults(m)
	return f.nextID
}

func (f *fakeDatadog) seedDashboard(id string, d map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d["id"] = id
	f.dashboards[id] = withDashboardDefaults(d, &f.nextID)
}

func (f *fakeDatadog) takeWrites() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.writes
	f.writes = nil
	return w
}

func keyFiles(t *testing.T) []string {
	dir := t.TempDir()
	api, app := filepath.Join(dir, "api"), filepath.Join(dir, "app")
	os.WriteFile(api, []byte(testAPIKey+"\n"), 0o600)
	os.WriteFile(app, []byte(testAppKey), 0o600)
	return []string{"--api-key-file=" + api, "--app-key-file=" + app}
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out)
	return out.String(), err
}

func countLines(s, prefix string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// The whole cycle against the fake API: a plan that changes nothing, an
// apply that creates, updates (a monitor found by its alert: tag although
// renamed and edited by hand; a dashboard found by its marker) and leaves
// what is not ours alone, then a second apply that changes nothing, then
// pruning the orphans.
func TestApplyTwice(t *testing.T) {
	f, srv := newFake(t)
	monitorFiles, _ := filepath.Glob("../../monitors/*.json")
	dashboardFiles, _ := filepath.Glob("../../../../dashboards/datadog/*.json")
	if len(monitorFiles) < 20 || len(dashboardFiles) < 4 {
		t.Fatalf("found %d monitors, %d dashboards", len(monitorFiles), len(dashboardFiles))
	}
	// Already in Datadog: ExporterDown, renamed and with a query edited by
	// hand; a monitor of an alert the repository no longer has; someone
	// else's monitor; the host dashboard with an old title; someone else's
	// dashboard.
	edited := f.seedMonitor(map[string]any{"name": "renamed by hand", "type": "query alert",
		"query": "sum(last_5m):sum:panther.datadog.flushes{*} by {host}.as_count() < 5", "message": "old",
		"tags":    []any{"alert:ExporterDown", "service:pantheros", "severity:critical", "source:panther-exporter"},
		"options": map[string]any{"thresholds": map[string]any{"critical": float64(5)}}})
	orphan := f.seedMonitor(map[string]any{"name": "gone", "type": "query alert", "query": "avg(last_5m):avg:panther.load1{*} > 1",
		"message": "x", "tags": []any{"alert:NoLongerAnAlert", "service:pantheros"}, "options": map[string]any{}})
	foreign := f.seedMonitor(map[string]any{"name": "someone else's", "type": "query alert", "query": "avg(last_5m):avg:system.load.1{*} > 1",
		"message": "@someone", "tags": []any{"team:web"}, "options": map[string]any{}})
	f.seedDashboard("old-hos-t00", map[string]any{"title": "old host title", "layout_type": "ordered", "widgets": []any{},
		"description": "Managed by panther-datadog (panther-dashboard:host): edit dashboards/datadog/host.json, not this copy."})
	f.seedDashboard("oth-er0-000", map[string]any{"title": "someone else's", "layout_type": "ordered", "widgets": []any{}, "description": "mine"})

	args := append([]string{"--monitors=../../monitors", "--dashboards=../../../../dashboards/datadog",
		"--notify-config=../../notify.yaml", "--api-url=" + srv.URL}, keyFiles(t)...)

	// plan: shows, changes nothing; --detailed-exitcode says there are changes.
	out, err := runCmd(t, append([]string{"plan", "--detailed-exitcode"}, args...)...)
	if ec, ok := err.(exitCode); !ok || ec != 2 {
		t.Fatalf("plan --detailed-exitcode with changes: err %v, want exit 2\n%s", err, out)
	}
	if w := f.takeWrites(); len(w) > 0 {
		t.Fatalf("plan wrote: %v", w)
	}
	if got, want := countLines(out, "+ create monitor"), len(monitorFiles)-1; got != want {
		t.Errorf("plan creates %d monitors, want %d:\n%s", got, want, out)
	}
	if !strings.Contains(out, fmt.Sprintf("~ update monitor alert:ExporterDown (id %d)", edited)) ||
		!strings.Contains(out, `name: "renamed by hand" -> "[pantherOS] ExporterDown`) ||
		!strings.Contains(out, `query: "sum(last_5m):sum:panther.datadog.flushes{*} by {host}.as_count() < 5" -> "sum(last_5m):sum:panther.datadog.flushes{role:server} by {host}.as_count() < 1"`) {
		t.Errorf("plan does not show the edited monitor's update with its changes:\n%s", out)
	}
	if !strings.Contains(out, "~ update dashboard panther-dashboard:host (id old-hos-t00)") ||
		countLines(out, "+ create dashboard") != len(dashboardFiles)-1 {
		t.Errorf("plan of the dashboards:\n%s", out)
	}
	if !strings.Contains(out, fmt.Sprintf("? orphan monitor alert:NoLongerAnAlert (id %d)", orphan)) {
		t.Errorf("plan does not report the orphan:\n%s", out)
	}
	if strings.Contains(out, "someone else") || strings.Contains(out, "oth-er0-000") || strings.Contains(out, fmt.Sprint(foreign)) {
		t.Errorf("plan touches objects that are not pantherOS's:\n%s", out)
	}

	// apply, the first time.
	out, err = runCmd(t, append([]string{"apply"}, args...)...)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	writes := f.takeWrites()
	if want := len(monitorFiles) + len(dashboardFiles); len(writes) != want {
		t.Errorf("first apply: %d writes, want %d: %v", len(writes), want, writes)
	}
	// What Datadog now holds: every monitor once, handles filled in.
	f.mu.Lock()
	byAlert := map[string]map[string]any{}
	for _, m := range f.monitors {
		for _, tag := range m["tags"].([]any) {
			if a, ok := strings.CutPrefix(tag.(string), "alert:"); ok {
				byAlert[a] = m
			}
		}
	}
	if len(f.monitors) != len(monitorFiles)+2 || len(f.dashboards) != len(dashboardFiles)+1 {
		t.Errorf("Datadog holds %d monitors, %d dashboards; want %d, %d", len(f.monitors), len(f.dashboards), len(monitorFiles)+2, len(dashboardFiles)+1)
	}
	if m := byAlert["ExporterDown"]; m == nil || int64(m["id"].(float64)) != edited || !strings.HasSuffix(m["message"].(string), "@pagerduty-pantheros") {
		t.Errorf("ExporterDown not updated in place with its pager handle: %v", m)
	}
	if m := byAlert["BootSlowerThanUsual"]; m == nil || !strings.HasSuffix(m["message"].(string), "@slack-pantheros-alerts") {
		t.Errorf("BootSlowerThanUsual without its warning handle: %v", m)
	}
	for a, m := range byAlert {
		if strings.Contains(m["message"].(string), "panther.notify") {
			t.Errorf("%s: placeholder left in the message", a)
		}
	}
	if f.dashboards["oth-er0-000"]["description"] != "mine" || f.monitors[foreign]["message"] != "@someone" {
		t.Error("someone else's monitor or dashboard was changed")
	}
	if d := f.dashboards["old-hos-t00"]; d == nil || d["title"] != "pantherOS: Host" {
		t.Errorf("host dashboard not updated in place: %v", d["title"])
	}
	f.mu.Unlock()

	// apply, the second time: nothing to change.
	out, err = runCmd(t, append([]string{"apply"}, args...)...)
	if err != nil {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	if w := f.takeWrites(); len(w) > 0 {
		t.Errorf("second apply wrote %v:\n%s", w, out)
	}
	if !strings.Contains(out, fmt.Sprintf("plan: 0 to create, 0 to update, 0 to delete, %d unchanged, 1 orphaned", len(monitorFiles)+len(dashboardFiles))) ||
		!strings.Contains(out, "nothing to change") {
		t.Errorf("second apply's plan:\n%s", out)
	}
	if out, err := runCmd(t, append([]string{"plan", "--detailed-exitcode"}, args...)...); err != nil {
		t.Errorf("plan --detailed-exitcode without changes: %v\n%s", err, out)
	}

	// A change of handles is a change of every message of that class.
	out, err = runCmd(t, append([]string{"plan", "--notify=warning.workstation=@slack-laptops"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(out, "~ update monitor"); n != 0 {
		// Monitors not grouped by role use the server's handles.
		t.Logf("%d monitors change with warning.workstation", n)
	}
	out, err = runCmd(t, append([]string{"plan", "--notify=warning.server=@slack-servers"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(out, "~ update monitor"); n == 0 || !strings.Contains(out, `-> "`) || !strings.Contains(out, "@slack-servers") {
		t.Errorf("changing warning.server updates no monitor:\n%s", out)
	}

	// --prune deletes the orphan, only it.
	out, err = runCmd(t, append([]string{"apply", "--prune"}, args...)...)
	if err != nil {
		t.Fatalf("apply --prune: %v\n%s", err, out)
	}
	if w := f.takeWrites(); len(w) != 1 || w[0] != fmt.Sprintf("DELETE /api/v1/monitor/%d", orphan) {
		t.Errorf("apply --prune wrote %v, want only the orphan's DELETE", w)
	}
}

func TestRefusals(t *testing.T) {
	f, srv := newFake(t)
	base := []string{"--monitors=../../monitors", "--dashboards=../../../../dashboards/datadog", "--notify-config=../../notify.yaml", "--api-url=" + srv.URL}
	keys := keyFiles(t)

	// Two monitors with the same alert tag: refuse, naming both.
	a := f.seedMonitor(map[string]any{"name": "a", "type": "query alert", "query": "q", "message": "", "tags": []any{"alert:ExporterDown", "service:pantheros"}})
	b := f.seedMonitor(map[string]any{"name": "b", "type": "query alert", "query": "q", "message": "", "tags": []any{"alert:ExporterDown", "service:pantheros"}})
	_, err := runCmd(t, append(append([]string{"apply"}, base...), keys...)...)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("ids %d, %d", a, b)) {
		t.Errorf("duplicate alert tags: %v", err)
	}
	if w := f.takeWrites(); len(w) > 0 {
		t.Errorf("wrote despite duplicates: %v", w)
	}

	// A wrong key: the API's refusal, without the key.
	dir := t.TempDir()
	bad := filepath.Join(dir, "api")
	os.WriteFile(bad, []byte("not-the-key-4242\n"), 0o600)
	_, err = runCmd(t, append(append([]string{"plan"}, base...), "--api-key-file="+bad, keys[1])...)
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "not-the-key-4242") {
		t.Errorf("wrong key: %v", err)
	}
	// A missing key file is named; an empty one too.
	_, err = runCmd(t, append(append([]string{"plan"}, base...), "--api-key-file="+filepath.Join(dir, "nope"), keys[1])...)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "nope")) {
		t.Errorf("missing key file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	_, err = runCmd(t, append(append([]string{"plan"}, base...), "--api-key-file="+empty, keys[1])...)
	if err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty key file: %v", err)
	}
	// Handles missing for a class, or not a handle.
	_, err = runCmd(t, append([]string{"plan", "--monitors=../../monitors", "--dashboards=../../../../dashboards/datadog", "--api-url=" + srv.URL}, keys...)...)
	if err == nil || !strings.Contains(err.Error(), "no handle for critical.server") {
		t.Errorf("no handles: %v", err)
	}
	_, err = runCmd(t, append(append([]string{"plan", "--notify=critical.server=page me"}, base...), keys...)...)
	if err == nil || !strings.Contains(err.Error(), `"page me" is not a notification handle`) {
		t.Errorf("bad handle: %v", err)
	}
	if _, err := runCmd(t); err == nil || !strings.Contains(err.Error(), "plan|apply") {
		t.Errorf("no subcommand: %v", err)
	}
}
