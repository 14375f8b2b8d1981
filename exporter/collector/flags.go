package collector

import "github.com/alecthomas/kingpin/v2"

// Flags shared by every collector. Collector packages add their own
// --collector.<name>.* flags with kingpin.Flag in their init.
var (
	procPath   = kingpin.Flag("path.procfs", "procfs mountpoint.").Default("/proc").String()
	sysPath    = kingpin.Flag("path.sysfs", "sysfs mountpoint.").Default("/sys").String()
	rootPath   = kingpin.Flag("path.rootfs", "Root of the host filesystem (for /var, /nix, /run ...).").Default("/").String()
	timeout    = kingpin.Flag("collector.timeout", "How long a scrape waits for each collector.").Default("5s").Duration()
	noDefaults = kingpin.Flag("collector.disable-defaults",
		"Turn off every collector not enabled explicitly with --collector.<name>.").Default("false").Bool()
)

// FromFlags returns the Config and Options given on the command line, after
// kingpin has parsed it, and applies --collector.disable-defaults.
func FromFlags() (Config, Options) {
	if *noDefaults {
		DisableDefaults()
	}
	return Config{ProcPath: *procPath, SysPath: *sysPath, RootPath: *rootPath},
		Options{Timeout: *timeout}
}
