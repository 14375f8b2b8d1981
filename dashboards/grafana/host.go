package grafana

// Host shows the system resources of one host.
func Host() Dashboard {
	return Dashboard{
		UID:         HostUID,
		Title:       "pantherOS / Host",
		File:        "host.json",
		Description: "System resources of one pantherOS host: CPU, memory, pressure, filesystems, disks, network, and hardware health (disks, temperatures, battery, clock, kernel limits).",
		Rows: []Row{
			{Title: "System", Panels: []Panel{
				{Title: "CPU busy", Kind: Stat, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0), Width: 4, Height: 4,
					Queries: []Query{q(cpuBusy, "busy")}},
				{Title: "Memory used", Kind: Stat, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0), Width: 4, Height: 4,
					Queries: []Query{qi(`1 - panther_memory_available_bytes{`+sel+`} / panther_memory_total_bytes{`+sel+`}`, "used")}},
				{Title: "Load per CPU (5m)", Kind: Stat, Unit: "short", Thresholds: Steps("green", 1, "orange", 2, "red"), Width: 4, Height: 4,
					Queries: []Query{qi(`panther_load5{`+sel+`} / panther_cpus{`+sel+`}`, "load5/cpu")}},
				{Title: "CPUs", Kind: Stat, Unit: "short", Thresholds: Steps("blue"), Width: 4, Height: 4,
					Queries: []Query{qi(`panther_cpus{`+sel+`}`, "cpus")}},
				{Title: "Uptime", Kind: Stat, Unit: "s", Thresholds: Steps("orange", 3600, "green"), Width: 4, Height: 4,
					Queries: []Query{qi(`time() - panther_boot_timestamp_seconds{`+sel+`}`, "uptime")}},
				{Title: "Collectors failing", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 4, Height: 4,
					Queries: []Query{qi(`count(panther_scrape_collector_success{`+sel+`} == 0) or vector(0)`, "failing")}},
				{Title: "CPU by mode", Kind: TimeSeries, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Stack: true,
					Description: "Share of all CPUs' time in each mode.",
					Queries: []Query{q(`sum by (job, instance, mode) (rate(panther_cpu_seconds_total{mode!~"idle|guest|guest_nice", `+sel+`}[$__rate_interval]))
  / on (job, instance) group_left panther_cpus{`+sel+`}`, "{{mode}}")}},
				{Title: "Load", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green"), Min: ptr(0.0),
					Queries: []Query{
						q(`panther_load1{`+sel+`}`, "load1"), q(`panther_load5{`+sel+`}`, "load5"),
						q(`panther_load15{`+sel+`}`, "load15"), q(`panther_cpus{`+sel+`}`, "CPUs"),
					}},
				{Title: "Memory", Kind: TimeSeries, Unit: "bytes", Thresholds: Steps("green"), Min: ptr(0.0),
					Queries: []Query{
						q(`panther_memory_total_bytes{`+sel+`} - panther_memory_available_bytes{`+sel+`}`, "used"),
						q(`panther_memory_cached_bytes{`+sel+`} + panther_memory_buffers_bytes{`+sel+`}`, "cache and buffers"),
						q(`panther_memory_free_bytes{`+sel+`}`, "free"),
						q(`panther_memory_total_bytes{`+sel+`}`, "total"),
						q(`panther_swap_total_bytes{`+sel+`} - panther_swap_free_bytes{`+sel+`}`, "swap used"),
					}},
			}},
			{Title: "Pressure", Panels: []Panel{
				{Title: "Some tasks stalled", Kind: TimeSeries, Unit: "percentunit", Thresholds: Steps("green", 0.1, "orange", 0.3, "red"), Min: ptr(0.0), Width: 12,
					Description: "Share of time in which at least one task waited for the resource (PSI some).",
					Queries:     []Query{q(`rate(panther_pressure_waiting_seconds_total{`+sel+`}[$__rate_interval])`, "{{resource}}")}},
				{Title: "All tasks stalled", Kind: TimeSeries, Unit: "percentunit", Thresholds: Steps("green", 0.05, "orange", 0.1, "red"), Min: ptr(0.0), Width: 12,
					Description: "Share of time in which all non-idle tasks were stalled on the resource (PSI full).",
					Queries:     []Query{q(`rate(panther_pressure_stalled_seconds_total{`+sel+`}[$__rate_interval])`, "{{resource}}")}},
			}},
			{Title: "Filesystems", Panels: []Panel{
				{Title: "Space used", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Queries: []Query{qi(`1 - panther_filesystem_avail_bytes{`+sel+`} / (panther_filesystem_size_bytes{`+sel+`} > 0)`, "{{mountpoint}}")}},
				{Title: "Inodes used", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Queries: []Query{qi(`1 - panther_filesystem_files_free{`+sel+`} / (panther_filesystem_files{`+sel+`} > 0)`, "{{mountpoint}}")}},
				{Title: "Filesystems", Kind: Table, Unit: "bytes", Thresholds: Steps("green"),
					Queries: []Query{
						qi(`panther_filesystem_size_bytes{`+sel+`}`, "Size"),
						qi(`panther_filesystem_avail_bytes{`+sel+`}`, "Available"),
					}},
				{Title: "Space available", Kind: TimeSeries, Unit: "bytes", Thresholds: Steps("red", 1<<30, "green"), Min: ptr(0.0), Width: 12,
					Queries: []Query{q(`panther_filesystem_avail_bytes{`+sel+`}`, "{{mountpoint}}")}},
				{Title: "Read-only or failing", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 12,
					Description: "Filesystems mounted read-only, and those whose statfs failed or hung.",
					Queries: []Query{
						qi(`sum(panther_filesystem_readonly{`+sel+`})`, "read-only"),
						qi(`sum(panther_filesystem_device_error{`+sel+`})`, "statfs failing"),
					}},
			}},
			{Title: "Disks", Panels: []Panel{
				{Title: "Disk throughput", Kind: TimeSeries, Unit: "Bps", Thresholds: Steps("green"),
					Queries: []Query{
						q(`rate(panther_disk_read_bytes_total{`+sel+`}[$__rate_interval])`, "{{device}} read"),
						q(`-rate(panther_disk_written_bytes_total{`+sel+`}[$__rate_interval])`, "{{device}} written"),
					}},
				{Title: "Disk IOPS", Kind: TimeSeries, Unit: "iops", Thresholds: Steps("green"),
					Queries: []Query{
						q(`rate(panther_disk_reads_completed_total{`+sel+`}[$__rate_interval])`, "{{device}} reads"),
						q(`-rate(panther_disk_writes_completed_total{`+sel+`}[$__rate_interval])`, "{{device}} writes"),
					}},
				{Title: "Disk busy", Kind: TimeSeries, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Description: "Share of time the device was doing I/O.",
					Queries:     []Query{q(`rate(panther_disk_io_time_seconds_total{`+sel+`}[$__rate_interval])`, "{{device}}")}},
			}},
			{Title: "Network", Panels: []Panel{
				{Title: "Network traffic", Kind: TimeSeries, Unit: "Bps", Thresholds: Steps("green"), Width: 12,
					Queries: []Query{
						q(`rate(panther_network_receive_bytes_total{device!="lo", `+sel+`}[$__rate_interval])`, "{{device}} in"),
						q(`-rate(panther_network_transmit_bytes_total{device!="lo", `+sel+`}[$__rate_interval])`, "{{device}} out"),
					}},
				{Title: "Network errors and drops", Kind: TimeSeries, Unit: "pps", Thresholds: Steps("green", 1, "red"), Width: 12,
					Queries: []Query{
						q(`rate(panther_network_receive_errors_total{`+sel+`}[$__rate_interval]) + rate(panther_network_receive_drop_total{`+sel+`}[$__rate_interval])`, "{{device}} in"),
						q(`rate(panther_network_transmit_errors_total{`+sel+`}[$__rate_interval]) + rate(panther_network_transmit_drop_total{`+sel+`}[$__rate_interval])`, "{{device}} out"),
					}},
			}},
			{Title: "Health", Panels: []Panel{
				{Title: "Disk health", Kind: Stat, Unit: "none", Thresholds: upDown, Mappings: map[float64]string{0: "FAILING", 1: "passed"}, Width: 6,
					Description: "SMART overall health of each disk (diskhealth collector, read every few hours; a sleeping disk keeps its last verdict).",
					Queries:     []Query{qi(`panther_disk_health_ok{`+sel+`}`, "{{device}}")}},
				{Title: "Disk wear and spare", Kind: BarGauge, Unit: "percentunit", Thresholds: Steps("green", 0.8, "orange", 0.9, "red"), Min: ptr(0.0), Max: ptr(1.0), Width: 6,
					Description: "Rated endurance used (wear) and spare blocks used up (1 - available spare) per disk.",
					Queries: []Query{
						qi(`panther_disk_wear_ratio{`+sel+`}`, "{{device}} wear"),
						qi(`1 - panther_disk_available_spare_ratio{`+sel+`}`, "{{device}} spare used"),
					}},
				{Title: "Disk media errors", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 6,
					Description: "NVMe media errors; ATA pending, uncorrectable and reallocated sectors.",
					Queries: []Query{
						qi(`panther_disk_media_errors_total{`+sel+`}`, "{{device}} media errors"),
						qi(`panther_disk_pending_sectors{`+sel+`} + panther_disk_uncorrectable_sectors{`+sel+`}`, "{{device}} bad sectors"),
						qi(`panther_disk_reallocated_sectors{`+sel+`}`, "{{device}} reallocated"),
					}},
				{Title: "Clock", Kind: Stat, Unit: "s", Thresholds: Steps("green", 0.1, "orange", 1, "red"), Width: 6,
					Description: "Estimated error of the kernel clock (adjtimex); red when no NTP daemon synchronises it.",
					Queries: []Query{
						qi(`panther_time_estimated_error_seconds{`+sel+`} + 1e3 * (1 - panther_time_synchronized{`+sel+`})`, "error (+1000 s when unsynchronised)"),
					}},
				{Title: "Temperatures", Kind: TimeSeries, Unit: "celsius", Thresholds: Steps("green", 80, "orange", 95, "red"), Width: 12,
					Description: "hwmon sensors (chip and sensor as the kernel names them) and thermal zones.",
					Queries: []Query{
						q(`panther_hwmon_temperature_celsius{`+sel+`}`, "{{chip}} {{sensor}}"),
						q(`panther_thermal_zone_temperature_celsius{`+sel+`}`, "{{sensor}} {{type}}"),
					}},
				{Title: "Headroom to critical temperature", Kind: BarGauge, Unit: "celsius", Thresholds: Steps("red", 5, "orange", 15, "green"), Min: ptr(0.0), Width: 6,
					Description: "Degrees left before each sensor's critical temperature, where hardware throttles hard or shuts down.",
					Queries:     []Query{qi(`panther_hwmon_temperature_critical_celsius{`+sel+`} - panther_hwmon_temperature_celsius{`+sel+`}`, "{{chip}} {{sensor}}")}},
				{Title: "Thermal throttling", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green", 1, "orange"), Min: ptr(0.0), Width: 6,
					Description: "Times per second the CPUs throttled for heat (Intel thermal_throttle counters).",
					Queries:     []Query{q(`rate(panther_cpu_thermal_throttles_total{`+sel+`}[$__rate_interval])`, "{{type}}")}},
				{Title: "Battery", Kind: BarGauge, Unit: "percentunit", Thresholds: Steps("red", 0.2, "orange", 0.5, "green"), Min: ptr(0.0), Max: ptr(1.0), Width: 8,
					Description: "Charge and health (full charge against design capacity) of each battery.",
					Queries: []Query{
						qi(`panther_battery_capacity_ratio{`+sel+`}`, "{{supply}} charge"),
						qi(`panther_battery_health_ratio{`+sel+`}`, "{{supply}} health"),
					}},
				{Title: "On AC power", Kind: Stat, Unit: "none", Thresholds: Steps("orange", 1, "green"), Mappings: map[float64]string{0: "no", 1: "yes"}, Width: 4,
					Queries: []Query{qi(`max(panther_power_supply_online{`+sel+`})`, "AC")}},
				{Title: "Kernel limits used", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0), Width: 6,
					Queries: []Query{
						qi(`panther_filefd_allocated{`+sel+`} / panther_filefd_maximum{`+sel+`}`, "file handles"),
						qi(`panther_conntrack_entries{`+sel+`} / panther_conntrack_limit{`+sel+`}`, "conntrack"),
					}},
				{Title: "TCP retransmits and listen overflows", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green"), Min: ptr(0.0), Width: 6,
					Queries: []Query{
						q(`rate(panther_tcp_retransmitted_segments_total{`+sel+`}[$__rate_interval]) / rate(panther_tcp_out_segments_total{`+sel+`}[$__rate_interval])`, "retransmitted share"),
						q(`rate(panther_tcp_listen_overflows_total{`+sel+`}[$__rate_interval])`, "listen overflows/s"),
					}},
			}},
			{Title: "Exporter", Panels: []Panel{
				{Title: "Collector success", Kind: Stat, Unit: "none", Thresholds: upDown, Mappings: map[float64]string{0: "failing", 1: "ok"}, Width: 12,
					Queries: []Query{qi(`panther_scrape_collector_success{`+sel+`}`, "{{collector}}")}},
				{Title: "Collector duration", Kind: TimeSeries, Unit: "s", Thresholds: Steps("green", 1, "orange", 5, "red"), Min: ptr(0.0), Width: 12,
					Queries: []Query{q(`panther_scrape_collector_duration_seconds{`+sel+`}`, "{{collector}}")}},
			}},
		},
	}
}
