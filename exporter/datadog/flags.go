package datadog

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// DefaultInclude sends every metric /metrics serves that DefaultExclude does
// not leave out: the panther_ metrics and the batch jobs' metrics of the
// textfile collector, whatever their names.
const DefaultInclude = `.`

// DefaultExclude leaves out the Go runtime and process metrics of the
// exporter itself (go_*, process_*, promhttp_*), and the system metrics that
// the Datadog Agent's core checks already collect (cpu, load, memory, swap,
// filesystem, disk, network: system.cpu.*, system.load.*, system.mem.*,
// system.swap.*, system.disk.*, system.fs.*, system.io.*, system.net.*).
// Datadog bills every custom series. The CPU and disk metrics are named one
// by one: the hwmon collector's panther_cpu_thermal_throttles_total and the
// diskhealth collector's panther_disk_* (SMART) have no Agent counterpart.
const DefaultExclude = `^(go|process|promhttp)_|^panther_(cpus|load1|load5|load15|memory|swap|filesystem|network)(_.*)?$` +
	`|^panther_cpu_seconds_total$|^panther_disk_(read_bytes|written_bytes|reads_completed|writes_completed|io_time_seconds)_total$`

// Options configure the sink.
type Options struct {
	// Address is host:port (UDP), unix:///path (the Agent's socket) or
	// empty to use the Agent's environment (DD_DOGSTATSD_URL, DD_AGENT_HOST
	// and DD_DOGSTATSD_PORT).
	Address   string
	Interval  time.Duration
	Tags      []string
	Include   *regexp.Regexp
	Exclude   *regexp.Regexp // nil: exclude nothing
	MaxSeries int            // per flush; 0 means no cap

	// Unbuffered sends one metric per datagram. Only for the benchmark that
	// shows what buffering saves.
	Unbuffered bool
}

var (
	flagAddress = kingpin.Flag("datadog.address",
		"DogStatsD address to send metrics to: host:port (UDP) or unix:///path/to/dsd.socket. "+
			"Empty: use DD_DOGSTATSD_URL or DD_AGENT_HOST[/DD_DOGSTATSD_PORT] when set, else the sink is off.").
		Default("").String()
	flagInterval = kingpin.Flag("datadog.interval", "How often the DogStatsD sink gathers and sends.").
			Default("15s").Duration()
	flagTags = kingpin.Flag("datadog.tags",
		"Tags added to every DogStatsD metric (key:value; repeat the flag or separate with commas).").Strings()
	flagInclude = kingpin.Flag("datadog.include", "Send only metrics whose Prometheus name matches this regex.").
			Default(DefaultInclude).String()
	flagExclude = kingpin.Flag("datadog.exclude",
		"Do not send metrics whose Prometheus name matches this regex (default: the system metrics the Agent already collects). Empty excludes nothing.").
		Default(DefaultExclude).String()
	flagMaxSeries = kingpin.Flag("datadog.max-series",
		"Most series sent per flush; the rest are dropped, counted in panther_datadog_series_dropped_total and logged once. 0: no cap.").
		Default("2000").Int()
)

// FromFlags returns the options given on the command line and whether the
// sink is enabled (an address given, or the Agent's environment set).
func FromFlags() (Options, bool, error) {
	o := Options{
		Address:   *flagAddress,
		Interval:  *flagInterval,
		MaxSeries: *flagMaxSeries,
	}
	for _, t := range *flagTags {
		for _, p := range strings.Split(t, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.Tags = append(o.Tags, p)
			}
		}
	}
	var err error
	if o.Include, err = regexp.Compile(*flagInclude); err != nil {
		return o, false, fmt.Errorf("--datadog.include: %w", err)
	}
	if *flagExclude != "" {
		if o.Exclude, err = regexp.Compile(*flagExclude); err != nil {
			return o, false, fmt.Errorf("--datadog.exclude: %w", err)
		}
	}
	if o.Interval <= 0 {
		return o, false, fmt.Errorf("--datadog.interval must be positive, got %s", o.Interval)
	}
	enabled := o.Address != "" || os.Getenv("DD_DOGSTATSD_URL") != "" || os.Getenv("DD_AGENT_HOST") != ""
	return o, enabled, nil
}

// describeAddress names where the client sends, for the start-up log.
func describeAddress(addr string) string {
	if addr != "" {
		return addr
	}
	if u := os.Getenv("DD_DOGSTATSD_URL"); u != "" {
		return u + " (DD_DOGSTATSD_URL)"
	}
	host, port := os.Getenv("DD_AGENT_HOST"), os.Getenv("DD_DOGSTATSD_PORT")
	if port == "" {
		port = "8125"
	}
	return host + ":" + port + " (DD_AGENT_HOST)"
}
