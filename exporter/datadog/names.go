package datadog

import "strings"

// Name maps a Prometheus metric name to its DogStatsD name.
//
// The rule (CONVENTIONS: panther_btrfs_device_errors_total ->
// panther.btrfs.device_errors): a counter loses its _total suffix, then the
// first underscore (after the namespace) and the second one (after the
// subsystem, the first word that follows the namespace) become dots; the rest
// of the name keeps its underscores. So namespace.subsystem.name:
//
//	panther_btrfs_device_errors_total -> panther.btrfs.device_errors
//	panther_cpu_seconds_total         -> panther.cpu.seconds
//	panther_podman_container_restarts_total -> panther.podman.container_restarts
//	panther_load1                     -> panther.load1
//	panther_datadog_packets_sent_total -> panther.datadog.packets_sent
//
// A name without underscores is kept as it is. Characters a Datadog name
// cannot hold become '_'.
func Name(promName string, counter bool) string {
	if counter {
		promName = strings.TrimSuffix(promName, "_total")
	}
	promName = strings.Map(safeNameRune, promName)
	i := strings.IndexByte(promName, '_')
	if i < 0 {
		return promName
	}
	ns, rest := promName[:i], promName[i+1:]
	if j := strings.IndexByte(rest, '_'); j >= 0 {
		return ns + "." + rest[:j] + "." + rest[j+1:]
	}
	return ns + "." + rest
}

// safeNameRune keeps what a Datadog metric name may hold (ASCII letters,
// digits, '_' and '.') and turns anything else into '_': a ':' of a
// recording-rule style name in a textfile would end the name in a datagram.
func safeNameRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
		return r
	}
	return '_'
}

// PromName is the inverse of Name for names of the panther_ namespace: it
// returns the Prometheus name a DogStatsD name came from, without the
// _total a counter had. Used by the offline checks and the e2e tests.
func PromName(ddName string) string {
	return strings.Replace(strings.Replace(ddName, ".", "_", 1), ".", "_", 1)
}

// tagValue makes a label value safe inside a DogStatsD datagram: ',' ends a
// tag, '|' a field, '#' starts the tags and a newline ends the metric.
var tagReplacer = strings.NewReplacer(",", "_", "|", "_", "#", "_", "\n", "_", "\r", "_")

func tag(name, value string) string {
	return name + ":" + tagReplacer.Replace(value)
}

// AgeName returns the Prometheus-style name of the age series the sink
// derives from a timestamp gauge: *_timestamp_seconds -> *_age_seconds
// (panther_btrfs_scrub_last_finished_timestamp_seconds ->
// panther_btrfs_scrub_last_finished_age_seconds, sent as
// panther.btrfs.scrub_last_finished_age_seconds), and *_mtime_seconds (a
// file's modification time, as node_exporter's textfile collector names it)
// -> *_mtime_age_seconds. ok is false for other names.
func AgeName(promName string) (string, bool) {
	if base, ok := strings.CutSuffix(promName, "_timestamp_seconds"); ok {
		return base + "_age_seconds", true
	}
	if base, ok := strings.CutSuffix(promName, "_mtime_seconds"); ok {
		return base + "_mtime_age_seconds", true
	}
	return "", false
}
