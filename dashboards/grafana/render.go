package grafana

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// datasource is the reference every panel and variable uses: the
// dashboard's $datasource variable.
var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

// panelBuilder is what the SDK's panel builders (timeseries, stat, table,
// bargauge) have in common.
type panelBuilder[T any] interface {
	cog.Builder[dashboard.Panel]
	Id(uint32) T
	Title(string) T
	Description(string) T
	Datasource(common.DataSourceRef) T
	Unit(string) T
	Min(float64) T
	Max(float64) T
	Thresholds(cog.Builder[dashboard.ThresholdsConfig]) T
	Mappings([]dashboard.ValueMapping) T
	WithTarget(cog.Builder[variants.Dataquery]) T
	GridPos(dashboard.GridPos) T
	DataLinks([]cog.Builder[dashboard.DashboardLink]) T
}

func configure[T panelBuilder[T]](b T, p Panel, id uint32, pos dashboard.GridPos) T {
	b.Id(id)
	b.Title(p.Title)
	desc := p.Description
	if c := Conditions[p.Needs]; c != "" {
		if desc != "" {
			desc += " "
		}
		desc += c
	}
	if desc != "" {
		b.Description(desc)
	}
	b.Datasource(datasource)
	b.Unit(p.Unit)
	if p.Min != nil {
		b.Min(*p.Min)
	}
	if p.Max != nil {
		b.Max(*p.Max)
	}
	steps := make([]dashboard.Threshold, len(p.Thresholds))
	for i, s := range p.Thresholds {
		steps[i] = dashboard.Threshold{Value: s.Value, Color: s.Color}
	}
	b.Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps))
	if len(p.Mappings) > 0 {
		opts := map[string]dashboard.ValueMappingResult{}
		keys := make([]float64, 0, len(p.Mappings))
		for k := range p.Mappings {
			keys = append(keys, k)
		}
		sort.Float64s(keys)
		for i, k := range keys {
			opts[strconv.FormatFloat(k, 'f', -1, 64)] = dashboard.ValueMappingResult{Text: ptr(p.Mappings[k]), Index: ptr(int32(i))}
		}
		b.Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}})
	}
	for i, qu := range p.Queries {
		t := prometheus.NewDataqueryBuilder().
			Datasource(datasource).
			RefId(string(rune('A' + i))).
			Expr(qu.Expr).
			LegendFormat(qu.Legend)
		if qu.Instant {
			t.Instant()
			if p.Kind == Table {
				t.Format(prometheus.PromQueryFormatTable)
			}
		} else {
			t.Range()
		}
		b.WithTarget(t)
	}
	b.GridPos(pos)
	var links []cog.Builder[dashboard.DashboardLink]
	if p.LinkHost {
		links = append(links, dashboard.NewDashboardLinkBuilder("Host ${__field.labels.instance}").
			Type(dashboard.DashboardLinkTypeLink).
			Url("/d/"+HostUID+"/host?${datasource:queryparam}&var-job=${__field.labels.job}&var-instance=${__field.labels.instance}&${__url_time_range}"))
	}
	switch p.LinkLogs {
	case LinkUnit:
		links = append(links, dashboard.NewDashboardLinkBuilder("Logs of ${__field.labels.unit}").
			Type(dashboard.DashboardLinkTypeLink).
			Url(logsLink+"&var-unit=^${__field.labels.unit}$"))
	case LinkContainer:
		links = append(links, dashboard.NewDashboardLinkBuilder("Logs of container ${__field.labels.name}").
			Type(dashboard.DashboardLinkTypeLink).
			Url(logsLink+"&var-container=^${__field.labels.name}$"))
	}
	if len(links) > 0 {
		b.DataLinks(links)
	}
	return b
}

func buildPanel(p Panel, id uint32, pos dashboard.GridPos) (cog.Builder[dashboard.Panel], error) {
	switch p.Kind {
	case TimeSeries:
		b := configure(timeseries.NewPanelBuilder(), p, id, pos).FillOpacity(10).ShowPoints(common.VisibilityModeNever)
		if p.Stack {
			b.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).FillOpacity(60)
		}
		return b, nil
	case Stat:
		return configure(stat.NewPanelBuilder(), p, id, pos).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})), nil
	case BarGauge:
		return configure(bargauge.NewPanelBuilder(), p, id, pos).
			DisplayMode(common.BarGaugeDisplayModeGradient).
			Orientation(common.VizOrientationHorizontal).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})), nil
	case Table:
		b := configure(table.NewPanelBuilder(), p, id, pos)
		if len(p.Queries) > 1 {
			b.WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}})
		}
		// Hide what is the same on every row of a one-host table, and
		// name the value columns after their queries' legends.
		rename := map[string]any{}
		for i, qu := range p.Queries {
			if qu.Legend == "" {
				continue
			}
			col := "Value"
			if len(p.Queries) > 1 {
				col = "Value #" + string(rune('A'+i))
			}
			rename[col] = qu.Legend
		}
		b.WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"excludeByName": map[string]any{"Time": true, "__name__": true, "job": true},
			"renameByName":  rename,
		}})
		return b, nil
	}
	return nil, fmt.Errorf("panel %q: unknown kind %q", p.Title, p.Kind)
}

func variables(d Dashboard) []cog.Builder[dashboard.VariableModel] {
	all := dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: ptr("All")}, Value: dashboard.StringOrArrayOfString{String: ptr("$__all")}}
	instance := dashboard.NewQueryVariableBuilder("instance").
		Label("Host").
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: ptr(`label_values(panther_exporter_build_info{job=~"$job"}, instance)`)}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortNaturalAsc)
	if d.MultiInstance {
		instance.Multi(true).IncludeAll(true).AllValue(".*").Current(all)
	}
	vars := []cog.Builder[dashboard.VariableModel]{
		dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus"),
		dashboard.NewQueryVariableBuilder("job").
			Label("Job").
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: ptr(`label_values(panther_exporter_build_info, job)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortNaturalAsc).
			Multi(true).IncludeAll(true).AllValue(".*").Current(all),
		instance,
	}
	if !d.MultiInstance {
		// The host name the logs carry (services.panther-logs.hostName):
		// the instance without its port, for the links to the Logs dashboard.
		vars = append(vars, dashboard.NewQueryVariableBuilder("hostname").
			Label("Host name").
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: ptr(`label_values(panther_exporter_build_info{job=~"$job", instance=~"$instance"}, instance)`)}).
			Regex(`/^\[?([^\]]*?)\]?(?::[0-9]+)?$/`).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Hide(dashboard.VariableHideHideVariable))
	}
	return vars
}

// Build turns d into the SDK's dashboard model.
//
// It is the classic dashboard JSON model (schema v1) on purpose, which the
// SDK marks deprecated in favour of dashboardv2: every Grafana version in use
// imports v1 through the UI, the API and file provisioning, while v2 needs
// Grafana 12 with its dashboard v2 APIs.
//
//lint:ignore SA1019 the classic v1 JSON model is what most Grafana installs import (see above)
func Build(d Dashboard) (dashboard.Dashboard, error) {
	//lint:ignore SA1019 the classic v1 JSON model is what most Grafana installs import (see Build)
	b := dashboard.NewDashboardBuilder(d.Title).
		Uid(d.UID).
		Description(d.Description).
		Tags([]string{Tag}).
		Editable().
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Variables(variables(d)).
		Link(dashboard.NewDashboardLinkBuilder("pantherOS").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
	if !d.MultiInstance {
		b.Link(dashboard.NewDashboardLinkBuilder("Logs of this host").
			Type(dashboard.DashboardLinkTypeLink).
			Url(logsLink).
			Icon("doc"))
	}
	// Lay the panels out left to right, wrapping to a new line when a
	// panel would not fit in the 24 columns; every row starts a new line.
	var x, y, lineH uint32
	newline := func() { y, x, lineH = y+lineH, 0, 0 }
	id := uint32(1)
	for _, r := range d.Rows {
		newline()
		b.WithRow(dashboard.NewRowBuilder(r.Title).Id(id).GridPos(dashboard.GridPos{X: 0, Y: y, W: 24, H: 1}))
		y++
		id++
		for _, p := range r.Panels {
			w, h := p.Width, p.Height
			if w == 0 {
				w = 8
			}
			if h == 0 {
				h = 8
			}
			if x+w > 24 {
				newline()
			}
			pos := dashboard.GridPos{X: x, Y: y, W: w, H: h}
			x += w
			lineH = max(lineH, h)
			pb, err := buildPanel(p, id, pos)
			if err != nil {
				//lint:ignore SA1019 the classic v1 JSON model is what most Grafana installs import (see Build)
				return dashboard.Dashboard{}, err
			}
			b.WithPanel(pb)
			id++
		}
	}
	return b.Build()
}

// JSON renders d as the Grafana dashboard JSON committed in this directory.
func JSON(d Dashboard) ([]byte, error) {
	m, err := Build(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.UID, err)
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.UID, err)
	}
	// encoding/json escapes <, > and & for HTML; Grafana's own exports
	// don't, and the URLs of the links read better without.
	out = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(out)))
	return append(out, '\n'), nil
}
