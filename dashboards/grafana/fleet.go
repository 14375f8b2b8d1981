package grafana

// Threshold palettes used across the dashboards.
var (
	ratioHigh = Steps("green", 0.8, "orange", 0.9, "red") // fill and usage ratios
	anyBad    = Steps("green", 1, "red")                  // counts where one is bad
	upDown    = Steps("red", 1, "green")                  // 1 is good
	yesNo     = map[float64]string{0: "no", 1: "yes"}
)

// cpuBusy is the busy ratio of all CPUs of each host (idle and iowait
// count as not busy; guest time is already in user).
const cpuBusy = `1 - sum by (job, instance) (rate(panther_cpu_seconds_total{mode=~"idle|iowait", ` + sel + `}[$__rate_interval]))
  / sum by (job, instance) (rate(panther_cpu_seconds_total{mode!~"guest|guest_nice", ` + sel + `}[$__rate_interval]))`

// Fleet shows every host at a glance.
func Fleet() Dashboard {
	host := func(p Panel) Panel { p.LinkHost = true; return p }
	return Dashboard{
		UID:           FleetUID,
		Title:         "pantherOS / Fleet",
		File:          "fleet.json",
		Description:   "Every pantherOS host at a glance; click a host to open its Host dashboard.",
		MultiInstance: true,
		Rows: []Row{{
			Title: "Hosts",
			Panels: []Panel{
				host(Panel{
					Title: "Exporter up", Kind: Stat, Unit: "none", Thresholds: upDown,
					Mappings: map[float64]string{0: "down", 1: "up"},
					Queries:  []Query{qi(`up{`+sel+`}`, "{{instance}}")},
					Width:    24, Height: 4,
				}),
				host(Panel{
					Title: "CPU busy", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Description: "Busy share of all CPUs over 5 minutes (recording rule instance:panther_cpu_utilisation:rate5m).",
					Queries:     []Query{qi(`instance:panther_cpu_utilisation:rate5m{`+sel+`}`, "{{instance}}")},
				}),
				host(Panel{
					Title: "Memory used", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Queries: []Query{qi(`1 - instance:panther_memory_available:ratio{`+sel+`}`, "{{instance}}")},
				}),
				host(Panel{
					Title: "Fullest filesystem", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Description: "The highest fill ratio of any filesystem of the host.",
					Queries:     []Query{qi(`1 - min by (job, instance) (instance_mountpoint:panther_filesystem_avail:ratio{`+sel+`})`, "{{instance}}")},
				}),
				host(Panel{
					Title: "Firing alerts", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 12, Height: 5,
					Description: "Alerts firing per host (0 when none).",
					Queries: []Query{qi(`count by (job, instance) (ALERTS{alertstate="firing", `+sel+`})
  or on (job, instance) (0 * up{`+sel+`})`, "{{instance}}")},
				}),
				host(Panel{
					Title: "Reboot required", Kind: Stat, Unit: "none", Thresholds: anyBad, Mappings: yesNo, Width: 12, Height: 5,
					Description: "The booted system differs from the current NixOS generation.",
					Queries:     []Query{qi(`instance:panther_nixos_reboot_required:max{`+sel+`}`, "{{instance}}")},
				}),
				host(Panel{
					Title: "Alerts firing now", Kind: Table, Unit: "none", Thresholds: anyBad, Width: 12, Needs: AlertFiring,
					Queries: []Query{qi(`ALERTS{alertstate="firing", `+sel+`}`, "")},
				}),
				host(Panel{
					Title: "Uptime", Kind: BarGauge, Unit: "s", Thresholds: Steps("orange", 3600, "green"), Width: 12,
					Description: "Time since boot; orange for an hour after a reboot.",
					Queries:     []Query{qi(`time() - panther_boot_timestamp_seconds{`+sel+`}`, "{{instance}}")},
				}),
				host(Panel{
					Title: "Collectors failing", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 24, Height: 4,
					Description: "Collectors whose last scrape failed or timed out, per host.",
					Queries:     []Query{qi(`count by (job, instance) (panther_scrape_collector_success{`+sel+`} == 0) or on (job, instance) (0 * up{`+sel+`})`, "{{instance}}")},
				}),
			},
		}},
	}
}
