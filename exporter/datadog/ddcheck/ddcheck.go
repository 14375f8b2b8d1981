// Package ddcheck checks Datadog monitors and dashboards offline: that a JSON
// body decodes strictly into the datadog-api-client-go models, that its
// queries only name metrics the DogStatsD sink emits (or that the Datadog
// Agent's core checks collect, for the system metrics the sink leaves out by
// default), and, for monitors, that the critical threshold is the query's.
// The tests of rules/datadog and dashboards/datadog use it.
package ddcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/datadog"
)

// AgentMetrics are metrics of the Datadog Agent's core checks (disk, io,
// network, cpu, load, memory) that monitors and dashboards may use in place
// of the panther_ system metrics the sink excludes by default
// (datadog.DefaultExclude). Listed by name so that a typo still fails.
var AgentMetrics = map[string]bool{
	"system.cpu.user": true, "system.cpu.system": true, "system.cpu.iowait": true, "system.cpu.idle": true,
	"system.cpu.stolen": true, "system.core.count": true,
	"system.load.1": true, "system.load.5": true, "system.load.15": true, "system.load.norm.1": true,
	"system.load.norm.5": true, "system.load.norm.15": true,
	"system.mem.total": true, "system.mem.usable": true, "system.mem.pct_usable": true,
	"system.swap.total": true, "system.swap.free": true, "system.swap.pct_free": true,
	"system.disk.total": true, "system.disk.free": true, "system.disk.used": true, "system.disk.in_use": true,
	"system.fs.inodes.total": true, "system.fs.inodes.free": true, "system.fs.inodes.in_use": true,
	"system.io.util": true, "system.io.rkb_s": true, "system.io.wkb_s": true,
	"system.net.bytes_rcvd": true, "system.net.bytes_sent": true,
	"system.net.packets_in.error": true, "system.net.packets_out.error": true,
	"system.uptime": true,
}

// Emitted returns every DogStatsD name the sink sends with its default
// include and exclude, derived from the catalog (import
// exporter/collector/all first) and datadog.Name, age series included.
func Emitted() map[string]bool {
	include := regexp.MustCompile(datadog.DefaultInclude)
	exclude := regexp.MustCompile(datadog.DefaultExclude)
	out := map[string]bool{}
	for _, m := range collector.Catalog() {
		if !include.MatchString(m.Name) || exclude.MatchString(m.Name) {
			continue
		}
		counter := m.Type == prometheus.CounterValue
		out[datadog.Name(m.Name, counter)] = true
		if age, ok := datadog.AgeName(m.Name); ok && !counter {
			out[datadog.Name(age, false)] = true
		}
	}
	return out
}

// metricRe finds the metric of a query: after an aggregator and a colon
// (avg:panther.load1{...}), or as the first argument of a function.
var metricRe = regexp.MustCompile(`(?:^|[^a-z_])(?:avg|sum|min|max|count):([a-zA-Z][a-zA-Z0-9_.]*)`)

// QueryMetrics lists the metric names a metric query names.
func QueryMetrics(q string) []string {
	var out []string
	for _, m := range metricRe.FindAllStringSubmatch(q, -1) {
		out = append(out, m[1])
	}
	return out
}

// UnknownMetrics returns the metrics of q that are neither emitted nor the
// Agent's.
func UnknownMetrics(q string, emitted map[string]bool) []string {
	var bad []string
	for _, m := range QueryMetrics(q) {
		if !emitted[m] && !AgentMetrics[m] {
			bad = append(bad, m)
		}
	}
	return bad
}

// Strict reports every UnparsedObject, AdditionalProperties and invalid
// enum in a decoded model, walking it by reflection, with its path.
func Strict(v any) []string {
	var problems []string
	walk(reflect.ValueOf(v), "$", &problems)
	return problems
}

type validator interface{ IsValid() bool }

func walk(v reflect.Value, path string, problems *[]string) {
	if !v.IsValid() {
		return
	}
	if v.CanInterface() {
		if val, ok := v.Interface().(validator); ok && v.Kind() != reflect.Pointer && v.Kind() != reflect.Interface {
			if !val.IsValid() {
				*problems = append(*problems, fmt.Sprintf("%s: invalid enum value %v", path, v.Interface()))
			}
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walk(v.Elem(), path, problems)
		}
	case reflect.Struct:
		t := v.Type()
		if t == reflect.TypeOf(datadogV1.LogStreamWidgetDefinition{}) {
			return // its query is a log search, not a metric query
		}
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			fv := v.Field(i)
			switch f.Name {
			case "UnparsedObject":
				if !fv.IsZero() && !(fv.Kind() == reflect.Map && fv.Len() == 0) {
					*problems = append(*problems, fmt.Sprintf("%s: not parsed (UnparsedObject): %v", path, fv.Interface()))
				}
				continue
			case "AdditionalProperties":
				if fv.Len() > 0 {
					keys := make([]string, 0, fv.Len())
					for _, k := range fv.MapKeys() {
						keys = append(keys, k.String())
					}
					sort.Strings(keys)
					*problems = append(*problems, fmt.Sprintf("%s: unknown keys %v", path, keys))
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			walk(fv, path+"."+f.Name, problems)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walk(v.MapIndex(k), fmt.Sprintf("%s[%v]", path, k), problems)
		}
	}
}

// RoundTrip checks that marshalling the decoded model gives back the same
// JSON document as the file (as generic values): nothing dropped or renamed.
func RoundTrip(file []byte, v any) error {
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var a, b any
	if err := json.Unmarshal(file, &a); err != nil {
		return err
	}
	if err := json.Unmarshal(again, &b); err != nil {
		return err
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("the model does not round-trip:\n file: %s\nmodel: %s", compact(file), again)
	}
	return nil
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// DecodeMonitor decodes a monitor body (API v1) strictly.
func DecodeMonitor(b []byte) (*datadogV1.Monitor, error) {
	var m datadogV1.Monitor
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if p := Strict(m); len(p) > 0 {
		return nil, fmt.Errorf("not strictly a datadogV1.Monitor:\n  %s", strings.Join(p, "\n  "))
	}
	return &m, RoundTrip(b, m)
}

// DecodeDashboard decodes a dashboard body (API v1) strictly.
func DecodeDashboard(b []byte) (*datadogV1.Dashboard, error) {
	var d datadogV1.Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	if p := Strict(d); len(p) > 0 {
		return nil, fmt.Errorf("not strictly a datadogV1.Dashboard:\n  %s", strings.Join(p, "\n  "))
	}
	return &d, RoundTrip(b, d)
}

var thresholdRe = regexp.MustCompile(`(>=|<=|>|<)\s*(-?[0-9][0-9.eE+-]*)\s*$`)

// QueryThreshold returns the comparison and number a monitor query ends with.
func QueryThreshold(q string) (string, float64, error) {
	m := thresholdRe.FindStringSubmatch(q)
	if m == nil {
		return "", 0, fmt.Errorf("query %q does not end in a comparison with a number", q)
	}
	v, err := strconv.ParseFloat(m[2], 64)
	return m[1], v, err
}

// Queries returns every metric query string in a decoded dashboard: the
// q of old-style requests and the query of formula-and-function queries,
// in every widget, groups included. It walks the model by reflection.
func Queries(v any) []string {
	var out []string
	collect(reflect.ValueOf(v), &out)
	return out
}

func collect(v reflect.Value, out *[]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collect(v.Elem(), out)
		}
	case reflect.Struct:
		t := v.Type()
		if t == reflect.TypeOf(datadogV1.LogStreamWidgetDefinition{}) {
			return // its query is a log search, not a metric query
		}
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "UnparsedObject" || f.Name == "AdditionalProperties" {
				continue
			}
			fv := v.Field(i)
			if (f.Name == "Q" || f.Name == "Query") && fv.Kind() == reflect.Pointer && !fv.IsNil() && fv.Elem().Kind() == reflect.String {
				*out = append(*out, fv.Elem().String())
				continue
			}
			if (f.Name == "Q" || f.Name == "Query") && fv.Kind() == reflect.String {
				*out = append(*out, fv.String())
				continue
			}
			collect(fv, out)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			collect(v.Index(i), out)
		}
	}
}

// OpenMetricsNamespace is the namespace of the Agent's OpenMetrics check
// that scrapes /metrics instead of the DogStatsD sink (nixos/datadog.nix).
const OpenMetricsNamespace = "panther"

// OpenMetricsMetrics returns the metrics list of that check: each metric the
// sink sends with its defaults (a counter with and without _total, as the
// check may name its family either way), renamed to the sink's DogStatsD
// name without the namespace, so both routes give the same names (a counter
// gains the check's ".count" suffix). Sorted by Prometheus name.
func OpenMetricsMetrics() []map[string]string {
	include := regexp.MustCompile(datadog.DefaultInclude)
	exclude := regexp.MustCompile(datadog.DefaultExclude)
	seen := map[string]string{}
	for _, m := range collector.Catalog() {
		if !include.MatchString(m.Name) || exclude.MatchString(m.Name) {
			continue
		}
		counter := m.Type == prometheus.CounterValue
		dd := strings.TrimPrefix(datadog.Name(m.Name, counter), OpenMetricsNamespace+".")
		seen[m.Name] = dd
		if counter {
			// The check's parser names a counter family without _total;
			// both spellings are listed, so either way it matches once.
			seen[strings.TrimSuffix(m.Name, "_total")] = dd
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]map[string]string, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]string{n: seen[n]})
	}
	return out
}
