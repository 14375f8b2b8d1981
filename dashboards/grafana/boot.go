package grafana

// Boot shows boot times, systemd units, the Nix store and NixOS
// generations of one host.
func Boot() Dashboard {
	return Dashboard{
		UID:         BootUID,
		Title:       "pantherOS / Boot and performance",
		File:        "boot.json",
		Description: "Boot stage durations, slowest units, systemd state, Nix store growth and NixOS generations of one pantherOS host.",
		Rows: []Row{
			{Title: "Boot", Panels: []Panel{
				{Title: "Boot stages", Kind: TimeSeries, Unit: "s", Thresholds: Steps("green", 60, "orange", 180, "red"), Min: ptr(0.0), Stack: true, Width: 12,
					Description: "Duration of each boot stage, as systemd-analyze reports it, over time.",
					Queries:     []Query{q(`panther_boot_stage_duration_seconds{stage!="total", `+sel+`}`, "{{stage}}")}},
				{Title: "Total boot time", Kind: Stat, Unit: "s", Thresholds: Steps("green", 60, "orange", 180, "red"), Width: 4,
					Queries: []Query{qi(`panther_boot_stage_duration_seconds{stage="total", `+sel+`}`, "total")}},
				{Title: "Boot finished", Kind: Stat, Unit: "none", Thresholds: upDown, Mappings: yesNo, Width: 4,
					Queries: []Query{qi(`panther_boot_finished{`+sel+`}`, "finished")}},
				{Title: "Default target reached after", Kind: Stat, Unit: "s", Thresholds: Steps("green", 30, "orange", 120, "red"), Width: 4,
					Description: "Time from the start of userspace until the default target was reached.",
					Queries:     []Query{qi(`panther_boot_default_target_seconds{`+sel+`}`, "default.target")}},
				{Title: "Slowest units of the last boot", Kind: BarGauge, Unit: "s", Thresholds: Steps("green", 5, "orange", 30, "red"), Width: 12, Height: 10, LinkLogs: LinkUnit,
					Queries: []Query{qi(`topk(15, panther_boot_unit_activation_seconds{`+sel+`})`, "{{unit}}")}},
				{Title: "Failed units", Kind: Table, Unit: "none", Thresholds: anyBad, Width: 8, Height: 10, Needs: UnitFailed, LinkLogs: LinkUnit,
					Queries: []Query{qi(`panther_systemd_unit_failed{`+sel+`} == 1`, "")}},
				{Title: "Units by state", Kind: Stat, Unit: "short", Thresholds: Steps("green"), Width: 4, Height: 10,
					Queries: []Query{qi(`panther_systemd_units{`+sel+`}`, "{{state}}")}},
			}},
			{Title: "Maintenance timers", Panels: []Panel{
				{Title: "Time since timer triggered", Kind: BarGauge, Unit: "s", Thresholds: Steps("green", 2*86400, "orange", 8*86400, "red"), Width: 8, Height: 8,
					Description: "Time since each timer last triggered (timers that never did are left out).",
					Queries:     []Query{qi(`time() - (panther_systemd_timer_last_trigger_timestamp_seconds{`+sel+`} > 0)`, "{{unit}}")}},
				{Title: "Timer triggers next in", Kind: BarGauge, Unit: "s", Thresholds: Steps("green"), Width: 8, Height: 8,
					Queries: []Query{qi(`panther_systemd_timer_next_trigger_timestamp_seconds{`+sel+`} - time()`, "{{unit}}")}},
				{Title: "Timer last result", Kind: Table, Unit: "none", Thresholds: Steps("green"), Width: 8, Height: 8, LinkLogs: LinkUnit,
					Description: "Result of the service each timer last started.",
					Queries:     []Query{qi(`panther_systemd_timer_last_result{`+sel+`}`, "")}},
			}},
			{Title: "Nix", Panels: []Panel{
				{Title: "Nix store paths", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green"), Width: 8,
					Queries: []Query{q(`panther_nix_store_paths{`+sel+`}`, "store paths")}},
				{Title: "Nix store growth (1d)", Kind: Stat, Unit: "short", Thresholds: Steps("green", 1000, "orange", 5000, "red"), Width: 4,
					Description: "Store paths added in the last day (negative after garbage collection).",
					Queries:     []Query{qi(`instance:panther_nix_store_paths:delta1d{`+sel+`}`, "growth")}},
				{Title: "Store filesystem used", Kind: Stat, Unit: "percentunit", Thresholds: ratioHigh, Width: 4,
					Queries: []Query{qi(`panther_nix_store_filesystem_used_bytes{`+sel+`} / (panther_nix_store_filesystem_size_bytes{`+sel+`} > 0)`, "used")}},
				{Title: "Generations", Kind: Stat, Unit: "short", Thresholds: Steps("green", 50, "orange", 200, "red"), Width: 4,
					Queries: []Query{qi(`panther_nixos_generations{`+sel+`}`, "generations")}},
				{Title: "Current generation age", Kind: Stat, Unit: "s", Thresholds: Steps("green", 30*86400, "orange", 90*86400, "red"), Width: 4,
					Queries: []Query{qi(`time() - panther_nixos_generation_timestamp_seconds{`+sel+`}`, "age")}},
				{Title: "Reboot required", Kind: Stat, Unit: "none", Thresholds: anyBad, Mappings: yesNo, Width: 12, Height: 4,
					Description: "The booted system differs from the current generation in a part that only takes effect at boot.",
					Queries:     []Query{qi(`panther_nixos_reboot_required{`+sel+`}`, "{{component}}")}},
				{Title: "NixOS version", Kind: Table, Unit: "none", Thresholds: Steps("green"), Width: 12, Height: 4,
					Description: "NixOS version of the current and of the booted system.",
					Queries:     []Query{qi(`panther_nixos_version_info{`+sel+`}`, "")}},
				{Title: "Generations over time", Kind: TimeSeries, Unit: "short", Thresholds: Steps("green"), Width: 24, Height: 6,
					Queries: []Query{q(`panther_nixos_generations{`+sel+`}`, "generations")}},
			}},
		},
	}
}
