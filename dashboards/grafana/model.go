// Package grafana holds the pantherOS Grafana dashboards as Go code. The
// dashboards are described in a small typed model (Dashboard, Row, Panel,
// Query) that the tests and the end-to-end checks walk, and rendered to
// Grafana JSON with the Grafana Foundation SDK. `make dashboards` writes the
// JSON files beside this file; a test fails when they are stale.
package grafana

import (
	"sort"
	"strings"
)

// Condition names what must be true on a host before a panel can show
// data. Most panels show data whenever the exporter and its collector run
// (Always); some only once something happened (a scrub ran, a snapshot
// exists, an alert fires). The end-to-end test checks every panel under
// its condition.
type Condition string

const (
	// Always: the exporter runs and its collectors can read the host.
	Always Condition = ""
	// AlertFiring: at least one alert of the host is firing (the ALERTS series).
	AlertFiring Condition = "alert-firing"
	// BtrfsScrubbed: a scrub of the Btrfs filesystem has finished.
	BtrfsScrubbed Condition = "btrfs-scrubbed"
	// BtrfsSnapshot: a read-only snapshot of a subvolume exists.
	BtrfsSnapshot Condition = "btrfs-snapshot"
	// BtrfsQuotas: quotas (qgroups) are enabled on the Btrfs filesystem.
	BtrfsQuotas Condition = "btrfs-quotas"
	// ContainerExited: a container has exited (it has an exit code).
	ContainerExited Condition = "container-exited"
	// ContainerHealthcheck: a container has a health check.
	ContainerHealthcheck Condition = "container-healthcheck"
	// UnitFailed: a systemd unit is in the failed state.
	UnitFailed Condition = "unit-failed"
)

// Conditions describes every condition, for the dashboards' panel
// descriptions and for the tests.
var Conditions = map[Condition]string{
	Always:               "",
	AlertFiring:          "Shows data only while an alert of the host is firing.",
	BtrfsScrubbed:        "Shows data once a scrub has finished on the filesystem.",
	BtrfsSnapshot:        "Shows data once a snapshot of a subvolume exists.",
	BtrfsQuotas:          "Shows data only when quotas (qgroups) are enabled on the filesystem.",
	ContainerExited:      "Shows data once a container has exited.",
	ContainerHealthcheck: "Shows data only for containers that have a health check.",
	UnitFailed:           "Shows data only while a systemd unit has failed.",
}

// Kind is a Grafana panel type.
type Kind string

const (
	TimeSeries Kind = "timeseries"
	Stat       Kind = "stat"
	Table      Kind = "table"
	BarGauge   Kind = "bargauge"
)

// Query is one PromQL target of a panel. Expr may use the dashboard
// variables $job and $instance and Grafana's $__rate_interval, $__range,
// $__interval.
type Query struct {
	Expr    string
	Legend  string
	Instant bool // an instant query (tables, stats of the current state)
}

// Step is a threshold step: from Value on (nil: from minus infinity), the
// panel colours Color.
type Step struct {
	Value *float64
	Color string
}

// Steps builds threshold steps from a base colour and (value, colour)
// pairs: Steps("green", 0.8, "orange", 0.95, "red").
func Steps(base string, rest ...any) []Step {
	out := []Step{{Color: base}}
	for i := 0; i+1 < len(rest); i += 2 {
		v := toFloat(rest[i])
		out = append(out, Step{Value: &v, Color: rest[i+1].(string)})
	}
	return out
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic("threshold value must be int or float64")
}

// Panel is one panel of a dashboard.
type Panel struct {
	Title       string
	Description string
	Kind        Kind
	Unit        string // Grafana unit id: bytes, s, percentunit, Bps, short, none ...
	Thresholds  []Step
	Min, Max    *float64
	Queries     []Query
	// Needs is what must be true for the panel to show data.
	Needs Condition
	// Mappings turn values into text (0 -> "no").
	Mappings map[float64]string
	// LinkHost links each series to the Host dashboard of its instance.
	LinkHost bool
	// LinkLogs links each series to the Logs dashboard of the host, with
	// the series' "unit" label as its unit or its "name" label as its
	// container (LinkUnit, LinkContainer), over the same time range.
	LinkLogs LogsLink
	// Stack stacks the series of a time series panel.
	Stack bool
	// Width and Height in grid units (24 wide); zero means 8 by 8.
	Width, Height uint32
}

// LogsLink says which label of a series names its logs.
type LogsLink string

const (
	LinkNone      LogsLink = ""
	LinkUnit      LogsLink = "unit"
	LinkContainer LogsLink = "container"
)

// Row groups panels under a title.
type Row struct {
	Title  string
	Panels []Panel
}

// Dashboard is one dashboard.
type Dashboard struct {
	UID         string // stable: links and provisioning rely on it
	Title       string
	File        string // JSON file name in dashboards/grafana/
	Description string
	// MultiInstance lets the instance variable select several hosts
	// (the Fleet); otherwise one host is shown at a time.
	MultiInstance bool
	Rows          []Row
}

// All returns every dashboard, in a stable order.
func All() []Dashboard {
	return []Dashboard{Fleet(), Host(), Storage(), Containers(), Boot(), Performance()}
}

// Panels returns every panel of d in order.
func (d Dashboard) Panels() []Panel {
	var out []Panel
	for _, r := range d.Rows {
		out = append(out, r.Panels...)
	}
	return out
}

// Tag is carried by every pantherOS dashboard; the dashboards' link bar
// lists the dashboards with it.
const Tag = "pantheros"

// UIDs of the dashboards, for links between them.
const (
	FleetUID       = "panther-fleet"
	HostUID        = "panther-host"
	StorageUID     = "panther-storage"
	ContainersUID  = "panther-containers"
	BootUID        = "panther-boot"
	PerformanceUID = "panther-performance"
)

// sel is the label matcher every query of a dashboard uses.
const sel = `job=~"$job", instance=~"$instance"`

// q builds a range query; qi an instant one.
func q(expr, legend string) Query  { return Query{Expr: expr, Legend: legend} }
func qi(expr, legend string) Query { return Query{Expr: expr, Legend: legend, Instant: true} }

// Substitute replaces the dashboard and Grafana variables of expr with
// concrete values, so that the query can be parsed or run. vars maps a
// variable name (without $) to its value; the Grafana interval variables
// default to the given interval.
func Substitute(expr string, vars map[string]string, interval string) string {
	all := map[string]string{
		"__rate_interval": interval,
		"__interval":      interval,
		"__range":         interval,
	}
	for k, v := range vars {
		all[k] = v
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	// Longest names first, so $__rate_interval is not cut by a shorter name.
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, k := range names {
		expr = strings.ReplaceAll(expr, "${"+k+"}", all[k])
		expr = strings.ReplaceAll(expr, "$"+k, all[k])
	}
	return expr
}

func ptr[T any](v T) *T { return &v }
