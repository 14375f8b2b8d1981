package grafana

// Containers shows the Podman services and containers of one host.
func Containers() Dashboard {
	return Dashboard{
		UID:         ContainersUID,
		Title:       "pantherOS / Containers",
		File:        "containers.json",
		Description: "Podman endpoints (sockets) and their containers on one pantherOS host.",
		Rows: []Row{
			{Title: "Sockets", Panels: []Panel{
				{Title: "Podman API up", Kind: Stat, Unit: "none", Thresholds: upDown, Mappings: map[float64]string{0: "down", 1: "up"}, Width: 6,
					Queries: []Query{qi(`panther_podman_up{`+sel+`}`, "{{socket}}")}},
				{Title: "Containers by state", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green"), Min: ptr(0.0), Stack: true, Width: 10,
					Queries: []Query{q(`panther_podman_containers{`+sel+`}`, "{{socket}} {{state}}")}},
				{Title: "Images and pods", Kind: Stat, Unit: "short", Thresholds: Steps("green"), Width: 8,
					Queries: []Query{
						qi(`panther_podman_images{`+sel+`}`, "{{socket}} images"),
						qi(`sum by (job, instance, socket) (panther_podman_pods{`+sel+`})`, "{{socket}} pods"),
					}},
			}},
			{Title: "Containers", Panels: []Panel{
				{Title: "Container CPU", Kind: TimeSeries, Unit: "percentunit", Thresholds: Steps("green", 0.8, "orange", 1, "red"), Min: ptr(0.0), Width: 12, LinkLogs: LinkContainer,
					Description: "CPU time per second; 1 is one whole CPU.",
					Queries:     []Query{q(`rate(panther_podman_container_cpu_seconds_total{`+sel+`}[$__rate_interval])`, "{{socket}}/{{name}}")}},
				{Title: "Container memory", Kind: TimeSeries, Unit: "bytes", Thresholds: Steps("green"), Min: ptr(0.0), Width: 12, LinkLogs: LinkContainer,
					Queries: []Query{q(`panther_podman_container_memory_usage_bytes{`+sel+`}`, "{{socket}}/{{name}}")}},
				{Title: "Memory of limit", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0),
					Description: "Memory use over the container's limit (the host's memory when it has none).",
					Queries:     []Query{qi(`instance_socket_name:panther_podman_container_memory_usage:ratio{`+sel+`}`, "{{socket}}/{{name}}")}},
				{Title: "Container processes", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green", 500, "orange", 900, "red"), Min: ptr(0.0),
					Queries: []Query{q(`panther_podman_container_pids{`+sel+`}`, "{{socket}}/{{name}}")}},
				{Title: "Container block I/O", Kind: TimeSeries, Unit: "Bps", Thresholds: Steps("green"),
					Queries: []Query{
						q(`rate(panther_podman_container_block_read_bytes_total{`+sel+`}[$__rate_interval])`, "{{socket}}/{{name}} read"),
						q(`-rate(panther_podman_container_block_written_bytes_total{`+sel+`}[$__rate_interval])`, "{{socket}}/{{name}} written"),
					}},
				{Title: "State", Kind: Table, Unit: "none", Thresholds: Steps("green"), Width: 12, LinkLogs: LinkContainer,
					Queries: []Query{qi(`panther_podman_container_state{`+sel+`} == 1`, "")}},
				{Title: "Health", Kind: Stat, Unit: "none", Thresholds: Steps("green"), Width: 12, Needs: ContainerHealthcheck,
					Description: "Health check state of containers that have one.",
					Queries:     []Query{qi(`panther_podman_container_health{`+sel+`} == 1`, "{{socket}}/{{name}} {{health}}")}},
			}},
			{Title: "Trouble", Panels: []Panel{
				{Title: "Restarts (15m)", Kind: BarGauge, Unit: "short", Thresholds: Steps("green", 1, "orange", 5, "red"), Width: 6, LinkLogs: LinkContainer,
					Description: "Restarts by the restart policy in the last 15 minutes.",
					Queries:     []Query{qi(`instance_socket_name:panther_podman_container_restarts:increase15m{`+sel+`}`, "{{socket}}/{{name}}")}},
				{Title: "Non-zero exits (1h)", Kind: BarGauge, Unit: "short", Thresholds: anyBad, Width: 6, LinkLogs: LinkContainer,
					Description: "Deaths with a non-zero exit code seen on the events stream in the last hour.",
					Queries:     []Query{qi(`increase(panther_podman_container_nonzero_exits_total{`+sel+`}[1h])`, "{{socket}}/{{name}}")}},
				{Title: "OOM kills", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 6,
					Description: "Times the kernel killed the container for lack of memory, since the exporter started.",
					Queries:     []Query{qi(`panther_podman_container_oom_kills_total{`+sel+`}`, "{{socket}}/{{name}}")}},
				{Title: "Exit codes", Kind: Stat, Unit: "none", Thresholds: anyBad, Width: 6, Needs: ContainerExited, LinkLogs: LinkContainer,
					Description: "Exit code of containers that exited; non-zero is red.",
					Queries: []Query{qi(`panther_podman_container_exit_code{`+sel+`}
  and on (job, instance, socket, name) (panther_podman_container_state{state="exited", `+sel+`} == 1)`, "{{socket}}/{{name}}")}},
			}},
		},
	}
}
