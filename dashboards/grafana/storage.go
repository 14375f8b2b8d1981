package grafana

// Storage shows the Btrfs filesystems of one host.
func Storage() Dashboard {
	day := 86400
	return Dashboard{
		UID:         StorageUID,
		Title:       "pantherOS / Storage",
		File:        "storage.json",
		Description: "Btrfs filesystems of one pantherOS host: allocation, devices, scrubs, snapshots, quotas.",
		Rows: []Row{
			{Title: "Allocation", Panels: []Panel{
				{Title: "Filesystems", Kind: Table, Unit: "none", Thresholds: Steps("green"), Width: 12, Height: 6,
					Queries: []Query{qi(`panther_btrfs_info{`+sel+`}`, "")}},
				{Title: "Unallocated", Kind: Stat, Unit: "bytes", Thresholds: Steps("red", 1<<30, "orange", 5<<30, "green"), Width: 12, Height: 6,
					Description: "Raw device space not yet given to any block group; Btrfs needs some to allocate new metadata.",
					Queries:     []Query{qi(`panther_btrfs_unallocated_bytes{`+sel+`}`, "{{uuid}}")}},
				{Title: "Used by block group type and profile", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0), Width: 12,
					Queries: []Query{qi(`panther_btrfs_used_bytes{`+sel+`} / (panther_btrfs_size_bytes{`+sel+`} > 0)`, "{{uuid}} {{block_group_type}} {{profile}}")}},
				{Title: "Allocation over time", Kind: TimeSeries, Unit: "bytes", Thresholds: Steps("green"), Min: ptr(0.0), Width: 12,
					Queries: []Query{
						q(`panther_btrfs_size_bytes{`+sel+`}`, "{{block_group_type}} {{profile}} allocated"),
						q(`panther_btrfs_used_bytes{`+sel+`}`, "{{block_group_type}} {{profile}} used"),
						q(`panther_btrfs_unallocated_bytes{`+sel+`}`, "unallocated"),
					}},
			}},
			{Title: "Devices and scrubs", Panels: []Panel{
				{Title: "Device errors", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 12,
					Description: "Btrfs device error counters (btrfs device stats); any non-zero count needs a look.",
					Queries:     []Query{qi(`panther_btrfs_device_errors_total{`+sel+`}`, "{{device}} {{type}}")}},
				{Title: "Time since last scrub", Kind: Stat, Unit: "s", Thresholds: Steps("green", 8*day, "orange", 35*day, "red"), Width: 6, Needs: BtrfsScrubbed,
					Queries: []Query{qi(`time() - panther_btrfs_scrub_last_finished_timestamp_seconds{`+sel+`}`, "{{uuid}}")}},
				{Title: "Scrub errors", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 6, Needs: BtrfsScrubbed,
					Description: "Errors the last scrub found, by type.",
					Queries:     []Query{qi(`panther_btrfs_scrub_errors{`+sel+`}`, "{{type}}")}},
			}},
			{Title: "Subvolumes and snapshots", Panels: []Panel{
				{Title: "Subvolumes", Kind: Stat, Unit: "short", Thresholds: Steps("green"), Width: 6,
					Queries: []Query{qi(`panther_btrfs_subvolumes{`+sel+`}`, "{{uuid}}")}},
				{Title: "Snapshots per subvolume", Kind: BarGauge, Unit: "short", Thresholds: Steps("green", 100, "orange", 500, "red"), Width: 9, Needs: BtrfsSnapshot,
					Queries: []Query{qi(`panther_btrfs_snapshots{`+sel+`}`, "{{subvolume}}")}},
				{Title: "Newest snapshot age", Kind: BarGauge, Unit: "s", Thresholds: Steps("green", 2*day, "orange", 7*day, "red"), Width: 9, Needs: BtrfsSnapshot,
					Description: "Time since the newest snapshot of each subvolume was taken.",
					Queries:     []Query{qi(`time() - panther_btrfs_snapshot_newest_timestamp_seconds{`+sel+`}`, "{{subvolume}}")}},
			}},
		},
	}
}
