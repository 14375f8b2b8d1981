// Package apply puts the pantherOS Datadog monitors (rules/datadog/monitors)
// and dashboards (dashboards/datadog) into a Datadog organisation through
// the official datadog-api-client-go, idempotently: it reads what is there,
// shows what it would change (Plan), and changes only that (Apply).
//
// A monitor is found again by its tag alert:<AlertName>, a dashboard by the
// marker panther-dashboard:<file name> that its description carries, never
// by name: renaming a monitor or a dashboard in the repository updates it in
// place. Existing objects are compared on the keys the file sets (Datadog
// fills in defaults and widget ids, which are not differences).
package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/pantheros/monitoring/exporter/datadog/ddcheck"
)

// ListTag is the tag every pantherOS monitor carries; monitors are listed
// by it and then matched by their alert: tag.
const ListTag = "service:pantheros"

// DashboardMarker returns the stable key written into a dashboard's
// description, by which it is found again.
func DashboardMarker(key string) string { return "panther-dashboard:" + key }

// Monitor is a monitor body from the repository, its message expanded.
type Monitor struct {
	File  string
	Alert string // the value of its alert: tag
	Body  datadogV1.Monitor
}

// Dashboard is a dashboard body from the repository, its description marked.
type Dashboard struct {
	File string
	Key  string // file name without .json
	Body datadogV1.Dashboard
}

// LoadMonitors reads monitors/*.json, checks each strictly against the
// client's model and fills in the notification handles.
func LoadMonitors(dir string, n Notify) ([]Monitor, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no monitors (*.json) in %s", dir)
	}
	var out []Monitor
	seen := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := ddcheck.DecodeMonitor(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		alert := ""
		for _, t := range m.Tags {
			if v, ok := strings.CutPrefix(t, "alert:"); ok {
				alert = v
			}
		}
		if alert == "" {
			return nil, fmt.Errorf("%s: no alert:<AlertName> tag, so it could not be found again", f)
		}
		if !contains(m.Tags, ListTag) {
			return nil, fmt.Errorf("%s: no %s tag, so it would not be listed again", f, ListTag)
		}
		if prev, dup := seen[alert]; dup {
			return nil, fmt.Errorf("%s and %s both carry alert:%s", prev, f, alert)
		}
		seen[alert] = f
		msg, err := n.Expand(m.GetMessage(), m.Query)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		m.SetMessage(msg)
		out = append(out, Monitor{File: f, Alert: alert, Body: *m})
	}
	return out, nil
}

// LoadDashboards reads *.json of dir, checks each strictly against the
// client's model and appends the marker to its description.
func LoadDashboards(dir string) ([]Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards (*.json) in %s", dir)
	}
	var out []Dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d, err := ddcheck.DecodeDashboard(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		key := strings.TrimSuffix(filepath.Base(f), ".json")
		desc := strings.TrimSpace(d.GetDescription())
		if desc != "" {
			desc += "\n\n"
		}
		d.SetDescription(desc + "Managed by panther-datadog (" + DashboardMarker(key) + "): edit dashboards/datadog/" + key + ".json, not this copy.")
		out = append(out, Dashboard{File: f, Key: key, Body: *d})
	}
	return out, nil
}

// Kind of a planned step.
type Kind string

const (
	Create    Kind = "create"
	Update    Kind = "update"
	Unchanged Kind = "unchanged"
	Orphan    Kind = "orphan" // in Datadog with our tag or marker, no file; kept unless pruning
	Delete    Kind = "delete" // an orphan, with pruning
)

// Step is one object of the plan.
type Step struct {
	Kind    Kind
	Object  string // "monitor" or "dashboard"
	Key     string // alert:<Name> or panther-dashboard:<key>
	ID      string // Datadog id of the existing object
	File    string
	Changes []string // for Update: path: Datadog's value -> the file's

	monitor   *datadogV1.Monitor
	dashboard *datadogV1.Dashboard
}

func (s Step) String() string {
	sign := map[Kind]string{Create: "+", Update: "~", Unchanged: "=", Orphan: "?", Delete: "-"}[s.Kind]
	line := fmt.Sprintf("%s %s %s %s", sign, s.Kind, s.Object, s.Key)
	if s.ID != "" {
		line += " (id " + s.ID + ")"
	}
	if s.File != "" {
		line += " from " + s.File
	}
	if s.Kind == Orphan {
		line += ": in Datadog, not in the repository (kept; --prune deletes it)"
	}
	for _, c := range s.Changes {
		line += "\n    " + c
	}
	return line
}

// Plan is what Apply would do.
type Plan []Step

// Changes counts the steps that change something.
func (p Plan) Changes() int {
	n := 0
	for _, s := range p {
		if s.Kind == Create || s.Kind == Update || s.Kind == Delete {
			n++
		}
	}
	return n
}

func (p Plan) String() string {
	var b strings.Builder
	count := map[Kind]int{}
	for _, s := range p {
		count[s.Kind]++
		if s.Kind != Unchanged {
			b.WriteString(s.String())
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "plan: %d to create, %d to update, %d to delete, %d unchanged, %d orphaned\n",
		count[Create], count[Update], count[Delete], count[Unchanged], count[Orphan])
	return b.String()
}

// Client talks to one Datadog organisation.
type Client struct {
	ctx        context.Context
	monitors   *datadogV1.MonitorsApi
	dashboards *datadogV1.DashboardsApi
}

// NewClient returns a client for a Datadog site (datadoghq.com,
// datadoghq.eu, ...) or, when apiURL is set, for that base URL (a proxy, or
// a test server).
func NewClient(site, apiURL, apiKey, appKey string) (*Client, error) {
	ctx := context.WithValue(context.Background(), datadog.ContextAPIKeys, map[string]datadog.APIKey{
		"apiKeyAuth": {Key: apiKey},
		"appKeyAuth": {Key: appKey},
	})
	if apiURL != "" {
		u, err := url.Parse(apiURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("--api-url %q: want http(s)://host[:port]", apiURL)
		}
		ctx = context.WithValue(ctx, datadog.ContextServerIndex, 1)
		ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{"protocol": u.Scheme, "name": u.Host})
	} else if site != "" {
		ctx = context.WithValue(ctx, datadog.ContextServerIndex, 2)
		ctx = context.WithValue(ctx, datadog.ContextServerVariables, map[string]string{"site": site})
	}
	cfg := datadog.NewConfiguration()
	api := datadog.NewAPIClient(cfg)
	return &Client{ctx: ctx, monitors: datadogV1.NewMonitorsApi(api), dashboards: datadogV1.NewDashboardsApi(api)}, nil
}

// apiError turns a client error into one line with the status and the
// API's error text (which names the problem, never our keys).
func apiError(what string, err error) error {
	if e, ok := err.(datadog.GenericOpenAPIError); ok {
		return fmt.Errorf("%s: %s: %s", what, e.Error(), strings.TrimSpace(string(e.Body())))
	}
	return fmt.Errorf("%s: %w", what, err)
}

const pageSize = 100

func (c *Client) listMonitors() ([]datadogV1.Monitor, error) {
	var all []datadogV1.Monitor
	for page := int64(0); ; page++ {
		ms, _, err := c.monitors.ListMonitors(c.ctx, *datadogV1.NewListMonitorsOptionalParameters().
			WithMonitorTags(ListTag).WithPage(page).WithPageSize(pageSize))
		if err != nil {
			return nil, apiError("list monitors (GET /api/v1/monitor)", err)
		}
		all = append(all, ms...)
		if len(ms) < pageSize {
			return all, nil
		}
	}
}

func (c *Client) listDashboards() ([]datadogV1.DashboardSummaryDefinition, error) {
	var all []datadogV1.DashboardSummaryDefinition
	for start := int64(0); ; start += pageSize {
		s, _, err := c.dashboards.ListDashboards(c.ctx, *datadogV1.NewListDashboardsOptionalParameters().
			WithStart(start).WithCount(pageSize))
		if err != nil {
			return nil, apiError("list dashboards (GET /api/v1/dashboard)", err)
		}
		all = append(all, s.Dashboards...)
		if len(s.Dashboards) < pageSize {
			return all, nil
		}
	}
}

// Plan compares the repository's monitors and dashboards with Datadog's.
// With prune, objects that carry our tag or marker but have no file are
// deleted; otherwise they are reported as orphans.
func (c *Client) Plan(monitors []Monitor, dashboards []Dashboard, prune bool) (Plan, error) {
	existing, err := c.listMonitors()
	if err != nil {
		return nil, err
	}
	byAlert := monitorsByAlert(existing)
	plan, err := planMonitors(monitors, byAlert)
	if err != nil {
		return nil, err
	}
	summaries, err := c.listDashboards()
	if err != nil {
		return nil, err
	}
	byKey := dashboardsByKey(summaries)
	dplan, err := c.planDashboards(dashboards, byKey)
	if err != nil {
		return nil, err
	}
	plan = append(plan, dplan...)
	orphans := append(monitorOrphans(monitors, byAlert, prune), dashboardOrphans(dashboards, byKey, prune)...)
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Key+orphans[i].ID < orphans[j].Key+orphans[j].ID })
	return append(plan, orphans...), nil
}

// monitorsByAlert groups Datadog's monitors by their alert:<name> tag, the
// key that ties a monitor to its file in the repository.
func monitorsByAlert(existing []datadogV1.Monitor) map[string][]datadogV1.Monitor {
	byAlert := map[string][]datadogV1.Monitor{}
	for _, m := range existing {
		for _, t := range m.Tags {
			if v, ok := strings.CutPrefix(t, "alert:"); ok {
				byAlert[v] = append(byAlert[v], m)
			}
		}
	}
	return byAlert
}

// planMonitors gives one step per repository monitor: create, update or
// unchanged. Two Datadog monitors with one alert tag are an error, since
// either could be the one to update.
func planMonitors(monitors []Monitor, byAlert map[string][]datadogV1.Monitor) (Plan, error) {
	var plan Plan
	for i := range monitors {
		m := &monitors[i]
		step := Step{Object: "monitor", Key: "alert:" + m.Alert, File: m.File, monitor: &m.Body}
		switch have := byAlert[m.Alert]; len(have) {
		case 0:
			step.Kind = Create
		case 1:
			changes, err := Diff(m.Body, have[0], "tags")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.File, err)
			}
			step.ID = strconv.FormatInt(have[0].GetId(), 10)
			step.Changes, step.Kind = changes, updateKind(changes)
		default:
			var ids []string
			for _, h := range have {
				ids = append(ids, strconv.FormatInt(h.GetId(), 10))
			}
			return nil, fmt.Errorf("%d monitors in Datadog carry alert:%s (ids %s): delete all but one, then run again",
				len(have), m.Alert, strings.Join(ids, ", "))
		}
		plan = append(plan, step)
	}
	return plan, nil
}

// monitorOrphans are Datadog monitors with an alert tag no repository
// monitor has.
func monitorOrphans(monitors []Monitor, byAlert map[string][]datadogV1.Monitor, prune bool) []Step {
	wanted := map[string]bool{}
	for _, m := range monitors {
		wanted[m.Alert] = true
	}
	var orphans []Step
	for alert, have := range byAlert {
		if wanted[alert] {
			continue
		}
		for _, h := range have {
			orphans = append(orphans, Step{Kind: orphanKind(prune), Object: "monitor", Key: "alert:" + alert, ID: strconv.FormatInt(h.GetId(), 10)})
		}
	}
	return orphans
}

// dashboardsByKey groups Datadog's dashboard ids by the panther-dashboard:<key>
// marker in their description.
func dashboardsByKey(summaries []datadogV1.DashboardSummaryDefinition) map[string][]string {
	byKey := map[string][]string{}
	for _, s := range summaries {
		desc := s.GetDescription()
		if i := strings.Index(desc, "panther-dashboard:"); i >= 0 {
			key := strings.TrimPrefix(desc[i:], "panther-dashboard:")
			if j := strings.IndexAny(key, " )\n\t"); j >= 0 {
				key = key[:j]
			}
			byKey[key] = append(byKey[key], s.GetId())
		}
	}
	return byKey
}

// planDashboards gives one step per repository dashboard. The list call
// carries no widgets, so each matched dashboard is fetched to diff it.
func (c *Client) planDashboards(dashboards []Dashboard, byKey map[string][]string) (Plan, error) {
	var plan Plan
	for i := range dashboards {
		d := &dashboards[i]
		step := Step{Object: "dashboard", Key: DashboardMarker(d.Key), File: d.File, dashboard: &d.Body}
		switch ids := byKey[d.Key]; len(ids) {
		case 0:
			step.Kind = Create
		case 1:
			have, _, err := c.dashboards.GetDashboard(c.ctx, ids[0])
			if err != nil {
				return nil, apiError("get dashboard "+ids[0], err)
			}
			changes, err := Diff(d.Body, have)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", d.File, err)
			}
			step.ID = ids[0]
			step.Changes, step.Kind = changes, updateKind(changes)
		default:
			return nil, fmt.Errorf("%d dashboards in Datadog carry %s (ids %s): delete all but one, then run again",
				len(ids), DashboardMarker(d.Key), strings.Join(ids, ", "))
		}
		plan = append(plan, step)
	}
	return plan, nil
}

// dashboardOrphans are Datadog dashboards with a marker no repository
// dashboard has.
func dashboardOrphans(dashboards []Dashboard, byKey map[string][]string, prune bool) []Step {
	wanted := map[string]bool{}
	for _, d := range dashboards {
		wanted[d.Key] = true
	}
	var orphans []Step
	for key, ids := range byKey {
		if wanted[key] {
			continue
		}
		for _, id := range ids {
			orphans = append(orphans, Step{Kind: orphanKind(prune), Object: "dashboard", Key: DashboardMarker(key), ID: id})
		}
	}
	return orphans
}

// updateKind is Update when there is something to change, else Unchanged.
func updateKind(changes []string) Kind {
	if len(changes) == 0 {
		return Unchanged
	}
	return Update
}

func orphanKind(prune bool) Kind {
	if prune {
		return Delete
	}
	return Orphan
}

// Apply carries out a plan, step by step; it stops at the first error,
// naming the object (what was done before stays done: running again
// finishes the rest).
func (c *Client) Apply(plan Plan, log func(string)) error {
	for _, s := range plan {
		var err error
		switch {
		case s.Kind == Create && s.monitor != nil:
			var m datadogV1.Monitor
			m, _, err = c.monitors.CreateMonitor(c.ctx, *s.monitor)
			if err == nil {
				s.ID = strconv.FormatInt(m.GetId(), 10)
			}
		case s.Kind == Update && s.monitor != nil:
			var body datadogV1.MonitorUpdateRequest
			if err = convert(*s.monitor, &body); err == nil {
				id, _ := strconv.ParseInt(s.ID, 10, 64)
				_, _, err = c.monitors.UpdateMonitor(c.ctx, id, body)
			}
		case s.Kind == Delete && s.Object == "monitor":
			id, _ := strconv.ParseInt(s.ID, 10, 64)
			_, _, err = c.monitors.DeleteMonitor(c.ctx, id)
		case s.Kind == Create && s.dashboard != nil:
			var d datadogV1.Dashboard
			d, _, err = c.dashboards.CreateDashboard(c.ctx, *s.dashboard)
			if err == nil {
				s.ID = d.GetId()
			}
		case s.Kind == Update && s.dashboard != nil:
			_, _, err = c.dashboards.UpdateDashboard(c.ctx, s.ID, *s.dashboard)
		case s.Kind == Delete && s.Object == "dashboard":
			_, _, err = c.dashboards.DeleteDashboard(c.ctx, s.ID)
		default:
			continue
		}
		if err != nil {
			return apiError(fmt.Sprintf("%s %s %s", s.Kind, s.Object, s.Key), err)
		}
		log(fmt.Sprintf("%sd %s %s (id %s)", strings.TrimSuffix(string(s.Kind), "e"), s.Object, s.Key, s.ID))
	}
	return nil
}

func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

// Diff compares what a file wants with what Datadog has, on the keys the
// file sets (recursively: objects by key, arrays element by element). The
// top-level keys named in unordered are compared as sets (tags).
func Diff(want, have any, unordered ...string) ([]string, error) {
	var w, h map[string]any
	if err := convert(want, &w); err != nil {
		return nil, err
	}
	if err := convert(have, &h); err != nil {
		return nil, err
	}
	for _, k := range unordered {
		w[k], h[k] = sortedStrings(w[k]), sortedStrings(h[k])
	}
	var out []string
	diff("", w, h, &out)
	sort.Strings(out)
	return out, nil
}

func sortedStrings(v any) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	s := make([]string, 0, len(list))
	for _, x := range list {
		s = append(s, fmt.Sprint(x))
	}
	sort.Strings(s)
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func diff(path string, want, have any, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			*out = append(*out, change(path, have, want))
			return
		}
		for k, wv := range w {
			hv, present := h[k]
			if !present {
				*out = append(*out, change(path+"."+k, nil, wv))
				continue
			}
			diff(path+"."+k, wv, hv, out)
		}
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			*out = append(*out, change(path, have, want))
			return
		}
		for i := range w {
			diff(fmt.Sprintf("%s[%d]", path, i), w[i], h[i], out)
		}
	default:
		if !reflect.DeepEqual(want, have) {
			*out = append(*out, change(path, have, want))
		}
	}
}

func change(path string, have, want any) string {
	path = strings.TrimPrefix(path, ".")
	hs, ok1 := have.(string)
	ws, ok2 := want.(string)
	if ok1 && ok2 && (len(hs) > 120 || len(ws) > 120) {
		// Long text (a message): show where it starts to differ.
		i := 0
		for i < len(hs) && i < len(ws) && hs[i] == ws[i] {
			i++
		}
		from := max(0, i-40)
		return fmt.Sprintf("%s (from character %d): %s -> %s", path, from, short(elide(hs, from)), short(elide(ws, from)))
	}
	return fmt.Sprintf("%s: %s -> %s", path, short(have), short(want))
}

func elide(s string, from int) string {
	if from > 0 {
		s = "..." + s[from:]
	}
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func short(v any) string {
	if v == nil {
		return "(none)"
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	s := strings.TrimSuffix(buf.String(), "\n")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
