// Package all imports every collector, so that their init functions
// register them and declare their metrics in the catalog. The binary, the
// metrics reference and the offline rule and dashboard checks import it.
package all

import (
	_ "github.com/pantheros/monitoring/exporter/collector/boot"
	_ "github.com/pantheros/monitoring/exporter/collector/btrfs"
	_ "github.com/pantheros/monitoring/exporter/collector/diskhealth"
	_ "github.com/pantheros/monitoring/exporter/collector/hwmon"
	_ "github.com/pantheros/monitoring/exporter/collector/journal"
	_ "github.com/pantheros/monitoring/exporter/collector/limits"
	_ "github.com/pantheros/monitoring/exporter/collector/nix"
	_ "github.com/pantheros/monitoring/exporter/collector/podman"
	_ "github.com/pantheros/monitoring/exporter/collector/power"
	_ "github.com/pantheros/monitoring/exporter/collector/system"
	_ "github.com/pantheros/monitoring/exporter/collector/textfile"
	_ "github.com/pantheros/monitoring/exporter/collector/timex"
	_ "github.com/pantheros/monitoring/exporter/collector/units"
)
