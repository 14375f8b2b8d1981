package grafana

import (
	"encoding/json"
	"strings"
)

// LogsUID is the Logs dashboard's UID; the host, containers and boot
// dashboards link to it.
const LogsUID = "panther-logs"

// LogsFile is the Logs dashboard's JSON file.
const LogsFile = "logs.json"

// logsQuery is the LogsQL query of the Logs dashboard: every filter is a
// regular expression whose default (empty) matches everything, so a
// variable left alone filters nothing. host and role are the fields
// services.panther-logs.upload adds to every entry; CONTAINER_NAME is what
// Podman's journald log driver writes; PRIORITY is the journal's 0..7.
const logsQuery = `host:~"^${host:regex}$" AND _SYSTEMD_UNIT:~"${unit:regex}" AND CONTAINER_NAME:~"${container:regex}" AND PRIORITY:~"^${priority}$" AND _msg:~"${text:regex}"`

// LogsQuery returns the Logs dashboard's LogsQL with the variables set,
// for the end-to-end test that runs it against VictoriaLogs.
func LogsQuery(host, unit, container, priority, text string) string {
	return strings.NewReplacer("${host:regex}", host, "${unit:regex}", unit, "${container:regex}", container,
		"${priority}", priority, "${text:regex}", text).Replace(logsQuery)
}

// Logs is the Logs dashboard: the journal of the fleet from VictoriaLogs
// (the victoriametrics-logs-datasource plugin), filtered by host, unit,
// container, priority and text. It is not built from the Prometheus model
// of the other dashboards (its queries are LogsQL), so it is JSON here.
func Logs() ([]byte, error) {
	ds := map[string]any{"type": "victoriametrics-logs-datasource", "uid": "${logs}"}
	textbox := func(name, label, def string) map[string]any {
		return map[string]any{"type": "textbox", "name": name, "label": label, "query": def,
			"current": map[string]any{"text": def, "value": def}}
	}
	priorities := []struct{ text, value string }{
		{"err and worse", "[0-3]"}, {"warning and worse", "[0-4]"}, {"notice and worse", "[0-5]"},
		{"all", "[0-7]"}, {"crit and worse", "[0-2]"},
	}
	var opts []map[string]any
	var values []string
	for i, p := range priorities {
		opts = append(opts, map[string]any{"text": p.text, "value": p.value, "selected": i == 3})
		values = append(values, p.text+" : "+p.value)
	}
	d := map[string]any{
		"uid":           LogsUID,
		"title":         "pantherOS / Logs",
		"description":   "The journal of every host shipped to VictoriaLogs by systemd-journal-upload, filtered by host, unit, container, priority and text. The host, containers and boot dashboards link here with their host, unit or container and time range.",
		"tags":          []string{Tag},
		"editable":      true,
		"refresh":       "1m",
		"time":          map[string]any{"from": "now-6h", "to": "now"},
		"timezone":      "browser",
		"schemaVersion": 39,
		"links": []map[string]any{{"title": "pantherOS", "type": "dashboards", "tags": []string{Tag},
			"asDropdown": true, "includeVars": false, "keepTime": true}},
		"templating": map[string]any{"list": []map[string]any{
			{"type": "datasource", "name": "logs", "label": "Logs data source", "query": "victoriametrics-logs-datasource"},
			textbox("host", "Host (regex)", ""),
			textbox("unit", "Unit (regex)", ""),
			textbox("container", "Container (regex)", ""),
			{"type": "custom", "name": "priority", "label": "Priority", "query": strings.Join(values, ","),
				"current": map[string]any{"text": "all", "value": "[0-7]"}, "options": opts},
			textbox("text", "Text (regex)", ""),
		}},
		"panels": []map[string]any{
			{"id": 1, "type": "timeseries", "title": "Entries by unit", "datasource": ds,
				"description": "Journal entries per unit matching the filters.",
				"gridPos":     map[string]any{"x": 0, "y": 0, "w": 24, "h": 7},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": "short", "custom": map[string]any{"drawStyle": "bars", "stacking": map[string]any{"mode": "normal"}}}, "overrides": []any{}},
				"targets": []map[string]any{{"refId": "A", "datasource": ds, "queryType": "statsRange",
					"expr": logsQuery + " | stats by (_SYSTEMD_UNIT) count() entries", "legendFormat": "{{_SYSTEMD_UNIT}}"}}},
			{"id": 2, "type": "logs", "title": "Journal", "datasource": ds,
				"description": "Newest first. Fields: host, role, _SYSTEMD_UNIT, CONTAINER_NAME, PRIORITY and the rest of the journal entry.",
				"gridPos":     map[string]any{"x": 0, "y": 7, "w": 24, "h": 20},
				"options": map[string]any{"showTime": true, "wrapLogMessage": true, "sortOrder": "Descending",
					"enableLogDetails": true, "dedupStrategy": "none"},
				"targets": []map[string]any{{"refId": "A", "datasource": ds, "queryType": "instant",
					"expr": logsQuery + " | sort by (_time) desc | limit 1000"}}},
		},
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	out = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(out)))
	return append(out, '\n'), nil
}

// logsLink is the dashboard link of a one-host dashboard to the logs of its
// host over the same time range ($hostname is the instance without port).
const logsLink = "/d/" + LogsUID + "/logs?var-host=${hostname}&${__url_time_range}"
