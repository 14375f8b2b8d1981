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
				{Title: "Used by block group type and profile", Kind: BarGauge, Unit: "percentunit", Thresholds: ratioHigh, Min: ptr(0.0), Max: ptr(1.0), Width: 8,
					Queries: []Query{qi(`panther_btrfs_used_bytes{`+sel+`} / (panther_btrfs_size_bytes{`+sel+`} > 0)`, "{{uuid}} {{block_group_type}} {{profile}}")}},
				{Title: "Raw disk space by block group type", Kind: TimeSeries, Unit: "bytes", Thresholds: Steps("green"), Min: ptr(0.0), Width: 8,
					Description: "Raw device bytes, all copies counted (a RAID1 gigabyte takes two).",
					Queries: []Query{
						q(`panther_btrfs_disk_allocated_bytes{`+sel+`}`, "{{block_group_type}} allocated"),
						q(`panther_btrfs_disk_used_bytes{`+sel+`}`, "{{block_group_type}} used"),
					}},
				{Title: "Global reserve used", Kind: BarGauge, Unit: "percentunit", Thresholds: Steps("green", 0.5, "orange", 0.75, "red"), Min: ptr(0.0), Max: ptr(1.0), Width: 8,
					Description: "Use of the global block reserve; Btrfs dips into it only when metadata space runs out.",
					Queries:     []Query{qi(`panther_btrfs_global_reserve_used_bytes{`+sel+`} / (panther_btrfs_global_reserve_bytes{`+sel+`} > 0)`, "{{uuid}}")}},
				{Title: "Allocation over time", Kind: TimeSeries, Unit: "bytes", Thresholds: Steps("green"), Min: ptr(0.0), Width: 24,
					Queries: []Query{
						q(`panther_btrfs_size_bytes{`+sel+`}`, "{{block_group_type}} {{profile}} allocated"),
						q(`panther_btrfs_used_bytes{`+sel+`}`, "{{block_group_type}} {{profile}} used"),
						q(`panther_btrfs_unallocated_bytes{`+sel+`}`, "unallocated"),
					}},
			}},
			{Title: "Devices and scrubs", Panels: []Panel{
				{Title: "Device size", Kind: Stat, Unit: "bytes", Thresholds: Steps("green"), Width: 6,
					Queries: []Query{qi(`panther_btrfs_device_size_bytes{`+sel+`}`, "{{device}}")}},
				{Title: "Device errors", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 18,
					Description: "Btrfs device error counters (btrfs device stats); any non-zero count needs a look.",
					Queries:     []Query{qi(`panther_btrfs_device_errors_total{`+sel+`}`, "{{device}} {{type}}")}},
				{Title: "Time since last scrub", Kind: Stat, Unit: "s", Thresholds: Steps("green", 8*day, "orange", 35*day, "red"), Width: 6, Needs: BtrfsScrubbed,
					Queries: []Query{qi(`time() - panther_btrfs_scrub_last_finished_timestamp_seconds{`+sel+`}`, "{{uuid}}")}},
				{Title: "Scrub errors", Kind: Stat, Unit: "short", Thresholds: anyBad, Width: 12, Needs: BtrfsScrubbed,
					Description: "Errors the last scrub found, by type.",
					Queries:     []Query{qi(`panther_btrfs_scrub_errors{`+sel+`}`, "{{type}}")}},
				{Title: "Last scrub", Kind: Stat, Unit: "s", Thresholds: Steps("green", 6*3600, "orange"), Width: 6, Needs: BtrfsScrubbed,
					Description: "Duration of the last scrub (so far, if running) and whether one runs now.",
					Queries: []Query{
						qi(`panther_btrfs_scrub_duration_seconds{`+sel+`}`, "duration"),
						qi(`panther_btrfs_scrub_running{`+sel+`}`, "running"),
					}},
			}},
			{Title: "Subvolumes and snapshots", Panels: []Panel{
				{Title: "Subvolumes", Kind: Stat, Unit: "short", Thresholds: Steps("green"), Width: 6,
					Queries: []Query{qi(`panther_btrfs_subvolumes{`+sel+`}`, "{{uuid}}")}},
				{Title: "Snapshots per subvolume", Kind: BarGauge, Unit: "short", Thresholds: Steps("green", 100, "orange", 500, "red"), Width: 9,
					Queries: []Query{qi(`panther_btrfs_snapshots{`+sel+`}`, "{{subvolume}}")}},
				{Title: "Newest snapshot age", Kind: BarGauge, Unit: "s", Thresholds: Steps("green", 2*day, "orange", 7*day, "red"), Width: 9, Needs: BtrfsSnapshot,
					Description: "Time since the newest snapshot of each subvolume was taken.",
					Queries:     []Query{qi(`time() - panther_btrfs_snapshot_newest_timestamp_seconds{`+sel+`}`, "{{subvolume}}")}},
			}},
			{Title: "Quotas", Panels: []Panel{
				{Title: "Referenced by subvolume", Kind: BarGauge, Unit: "bytes", Thresholds: Steps("green", 50<<30, "orange", 200<<30, "red"), Width: 12, Needs: BtrfsQuotas,
					Description: "Bytes each subvolume references (qgroup 0/<id>).",
					Queries:     []Query{qi(`panther_btrfs_quota_referenced_bytes{`+sel+`}`, "{{subvolume}}")}},
				{Title: "Exclusive by subvolume", Kind: BarGauge, Unit: "bytes", Thresholds: Steps("green", 50<<30, "orange", 200<<30, "red"), Width: 12, Needs: BtrfsQuotas,
					Description: "Bytes only this subvolume references: what deleting it (and its snapshots' share) frees.",
					Queries:     []Query{qi(`panther_btrfs_quota_exclusive_bytes{`+sel+`}`, "{{subvolume}}")}},
			}},
			{Title: "Transactions", Panels: []Panel{
				{Title: "Transaction commits", Kind: TimeSeries, Unit: "s", Thresholds: Steps("green", 1, "orange", 5, "red"), Min: ptr(0.0), Width: 24, Height: 6,
					// Last and longest, not a rate-based average: that is 0/0 (no
					// data) whenever the filesystem was idle for the window.
					Description: "Last and longest transaction commit time since mount; long commits stall writers.",
					Queries: []Query{
						q(`panther_btrfs_commit_last_seconds{`+sel+`}`, "{{uuid}} last"),
						q(`panther_btrfs_commit_max_seconds{`+sel+`}`, "{{uuid}} longest since mount"),
					}},
			}},
		},
	}
}
