// Package system collects CPU, load, memory, swap, filesystem, disk,
// network, boot time and pressure stall metrics. It reads through gopsutil
// (which honours --path.procfs/--path.sysfs via its context environment) and
// prometheus/procfs for mountinfo and PSI, the parsers node_exporter uses.
package system

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"

	"github.com/pantheros/monitoring/exporter/collector"
)

// Defaults follow node_exporter's, so that the same mounts and devices show.
const (
	defMountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`
	defFSTypesExclude     = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|ramfs|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs|nfsd|fuse\.lxcfs|fuse\.portal)$`
	defDiskExclude        = `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`
	defNetdevExclude      = `^(lo|veth.*)$`
)

// Options are the system collector's flags.
type Options struct {
	MountPointsInclude, MountPointsExclude string
	FSTypesInclude, FSTypesExclude         string
	DiskInclude, DiskExclude               string
	NetdevInclude, NetdevExclude           string
	AllMounts                              bool // keep second mounts of one filesystem (bind mounts, extra subvolumes)
}

var flags Options

func init() {
	f := func(name, help, def string, into *string) {
		kingpin.Flag("collector.system."+name, help).Default(def).StringVar(into)
	}
	f("mount-points-include", "Regexp of mount points to include (empty: all).", "", &flags.MountPointsInclude)
	f("mount-points-exclude", "Regexp of mount points to leave out.", defMountPointsExclude, &flags.MountPointsExclude)
	f("fs-types-include", "Regexp of filesystem types to include (empty: all).", "", &flags.FSTypesInclude)
	f("fs-types-exclude", "Regexp of filesystem types to leave out.", defFSTypesExclude, &flags.FSTypesExclude)
	f("disk-include", "Regexp of block devices to include (empty: all).", "", &flags.DiskInclude)
	f("disk-exclude", "Regexp of block devices to leave out.", defDiskExclude, &flags.DiskExclude)
	f("netdev-include", "Regexp of network interfaces to include (empty: all).", "", &flags.NetdevInclude)
	f("netdev-exclude", "Regexp of network interfaces to leave out.", defNetdevExclude, &flags.NetdevExclude)
	kingpin.Flag("collector.system.all-mounts",
		"Report every mount of a filesystem, not only the first (bind mounts, further btrfs subvolume mounts).").
		Default("false").BoolVar(&flags.AllMounts)
	collector.Register("system", true, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg, flags)
	})
}

// filter keeps names that match include (when set) and not exclude.
type filter struct{ include, exclude *regexp.Regexp }

func newFilter(flag, include, exclude string) (filter, error) {
	var f filter
	var err error
	if include != "" {
		if f.include, err = regexp.Compile(include); err != nil {
			return f, fmt.Errorf("--collector.system.%s-include: %w", flag, err)
		}
	}
	if exclude != "" {
		if f.exclude, err = regexp.Compile(exclude); err != nil {
			return f, fmt.Errorf("--collector.system.%s-exclude: %w", flag, err)
		}
	}
	return f, nil
}

func (f filter) keep(s string) bool {
	if f.include != nil && !f.include.MatchString(s) {
		return false
	}
	return f.exclude == nil || !f.exclude.MatchString(s)
}

// System is the system collector.
type System struct {
	cfg     collector.Config
	logger  *slog.Logger
	env     common.EnvMap
	procfs  procfs.FS
	mounts  filter
	fstypes filter
	disks   filter
	netdevs filter
	all     bool
	statfs  *statfsGuard
}

// New builds the collector; it fails only on bad flags.
func New(cfg collector.Config, o Options) (*System, error) {
	s := &System{cfg: cfg, logger: cfg.Logger, all: o.AllMounts, statfs: newStatfsGuard()}
	var err error
	if s.mounts, err = newFilter("mount-points", o.MountPointsInclude, o.MountPointsExclude); err != nil {
		return nil, err
	}
	if s.fstypes, err = newFilter("fs-types", o.FSTypesInclude, o.FSTypesExclude); err != nil {
		return nil, err
	}
	if s.disks, err = newFilter("disk", o.DiskInclude, o.DiskExclude); err != nil {
		return nil, err
	}
	if s.netdevs, err = newFilter("netdev", o.NetdevInclude, o.NetdevExclude); err != nil {
		return nil, err
	}
	if s.procfs, err = procfs.NewFS(cfg.ProcPath); err != nil {
		return nil, fmt.Errorf("--path.procfs: %w", err)
	}
	s.env = common.EnvMap{
		common.HostProcEnvKey: cfg.ProcPath,
		common.HostSysEnvKey:  cfg.SysPath,
		common.HostRootEnvKey: cfg.RootPath,
		// gopsutil reads mountinfo of pid 1 from here; we read it through procfs.
		common.HostProcMountinfo: cfg.Proc("1", "mountinfo"),
	}
	return s, nil
}

var (
	cpuSeconds = collector.Counter("system", "cpu_seconds_total", "Seconds all CPUs spent in each mode.", "mode")
	cpus       = collector.Gauge("system", "cpus", "Number of logical CPUs.")
	load1      = collector.Gauge("system", "load1", "1-minute load average.")
	load5      = collector.Gauge("system", "load5", "5-minute load average.")
	load15     = collector.Gauge("system", "load15", "15-minute load average.")
	mems       = map[string]*collector.Metric{
		"total":     collector.Gauge("system", "memory_total_bytes", "Total usable memory (MemTotal)."),
		"available": collector.Gauge("system", "memory_available_bytes", "Memory available for new work without swapping (MemAvailable)."),
		"free":      collector.Gauge("system", "memory_free_bytes", "Unused memory (MemFree)."),
		"buffers":   collector.Gauge("system", "memory_buffers_bytes", "Memory in block device buffers (Buffers)."),
		"cached":    collector.Gauge("system", "memory_cached_bytes", "Memory in the page cache (Cached)."),
	}
	swapTotal = collector.Gauge("system", "swap_total_bytes", "Total swap space.")
	swapFree  = collector.Gauge("system", "swap_free_bytes", "Unused swap space.")
	bootTime  = collector.Gauge("system", "boot_timestamp_seconds", "Unix time the host booted.")
)

// Update reads every source; a source that fails is reported in the error
// and the others are still sent.
func (s *System) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	ctx = context.WithValue(ctx, common.EnvKey, s.env)
	var errs []error
	for _, part := range []struct {
		name string
		fn   func(context.Context, chan<- prometheus.Metric) error
	}{
		{"cpu", s.updateCPU},
		{"load", s.updateLoad},
		{"memory", s.updateMemory},
		{"boot time", s.updateBootTime},
		{"filesystems", s.updateFilesystems},
		{"disks", s.updateDisks},
		{"network", s.updateNetwork},
		{"pressure", s.updatePressure},
	} {
		if err := safely(ctx, ch, part.fn); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part.name, err))
		}
	}
	return errors.Join(errs...)
}

// safely turns a panic in a parser (gopsutil indexes fields of a truncated
// /proc/loadavg without checking) into an error, so the other parts are
// still read.
func safely(ctx context.Context, ch chan<- prometheus.Metric, fn func(context.Context, chan<- prometheus.Metric) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parser panicked: %v", p)
		}
	}()
	return fn(ctx, ch)
}

func (s *System) updateCPU(ctx context.Context, ch chan<- prometheus.Metric) error {
	perCPU, err := cpu.TimesWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Proc("stat"), err)
	}
	if len(perCPU) == 0 {
		return fmt.Errorf("%s: no cpu lines", s.cfg.Proc("stat"))
	}
	var t cpu.TimesStat
	for _, c := range perCPU {
		t.User += c.User - c.Guest // the kernel counts guest time in user too
		t.Nice += c.Nice - c.GuestNice
		t.System += c.System
		t.Idle += c.Idle
		t.Iowait += c.Iowait
		t.Irq += c.Irq
		t.Softirq += c.Softirq
		t.Steal += c.Steal
		t.Guest += c.Guest
		t.GuestNice += c.GuestNice
	}
	for mode, v := range map[string]float64{
		"user": t.User, "nice": t.Nice, "system": t.System, "idle": t.Idle, "iowait": t.Iowait,
		"irq": t.Irq, "softirq": t.Softirq, "steal": t.Steal, "guest": t.Guest, "guest_nice": t.GuestNice,
	} {
		ch <- cpuSeconds.Const(v, mode)
	}
	ch <- cpus.Const(float64(len(perCPU)))
	return nil
}

func (s *System) updateLoad(ctx context.Context, ch chan<- prometheus.Metric) error {
	var avg *load.AvgStat
	err := safely(ctx, ch, func(ctx context.Context, _ chan<- prometheus.Metric) (err error) {
		avg, err = load.AvgWithContext(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Proc("loadavg"), err)
	}
	ch <- load1.Const(avg.Load1)
	ch <- load5.Const(avg.Load5)
	ch <- load15.Const(avg.Load15)
	return nil
}

func (s *System) updateMemory(ctx context.Context, ch chan<- prometheus.Metric) error {
	path := s.cfg.Proc("meminfo")
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if vm.Total == 0 {
		// gopsutil skips lines it cannot parse; a meminfo without MemTotal is garbled.
		return fmt.Errorf("%s: no MemTotal line", path)
	}
	for k, v := range map[string]uint64{"total": vm.Total, "available": vm.Available, "free": vm.Free, "buffers": vm.Buffers, "cached": vm.Cached} {
		ch <- mems[k].Const(float64(v))
	}
	// From meminfo, not gopsutil's SwapMemory: that asks sysinfo(2) of the
	// running kernel and ignores --path.procfs.
	ch <- swapTotal.Const(float64(vm.SwapTotal))
	ch <- swapFree.Const(float64(vm.SwapFree))
	return nil
}

// updateBootTime reads btime through procfs: gopsutil's BootTime first
// probes for virtualization, reading a dozen files on every call.
func (s *System) updateBootTime(_ context.Context, ch chan<- prometheus.Metric) error {
	st, err := s.procfs.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Proc("stat"), err)
	}
	if st.BootTime == 0 {
		return fmt.Errorf("%s: no btime line", s.cfg.Proc("stat"))
	}
	ch <- bootTime.Const(float64(st.BootTime))
	return nil
}

var (
	diskRead    = collector.Counter("system", "disk_read_bytes_total", "Bytes read from the block device.", "device")
	diskWritten = collector.Counter("system", "disk_written_bytes_total", "Bytes written to the block device.", "device")
	diskIOTime  = collector.Counter("system", "disk_io_time_seconds_total", "Seconds the device spent doing I/O.", "device")
	diskReads   = collector.Counter("system", "disk_reads_completed_total", "Reads completed.", "device")
	diskWrites  = collector.Counter("system", "disk_writes_completed_total", "Writes completed.", "device")
)

func (s *System) updateDisks(ctx context.Context, ch chan<- prometheus.Metric) error {
	stats, err := disk.IOCountersWithContext(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Proc("diskstats"), err)
	}
	for name, d := range stats {
		if !s.disks.keep(name) {
			continue
		}
		ch <- diskRead.Const(float64(d.ReadBytes), name)
		ch <- diskWritten.Const(float64(d.WriteBytes), name)
		ch <- diskIOTime.Const(float64(d.IoTime)/1000, name)
		ch <- diskReads.Const(float64(d.ReadCount), name)
		ch <- diskWrites.Const(float64(d.WriteCount), name)
	}
	return nil
}

var (
	netRx     = collector.Counter("system", "network_receive_bytes_total", "Bytes received on the interface.", "device")
	netTx     = collector.Counter("system", "network_transmit_bytes_total", "Bytes sent on the interface.", "device")
	netRxErr  = collector.Counter("system", "network_receive_errors_total", "Receive errors on the interface.", "device")
	netTxErr  = collector.Counter("system", "network_transmit_errors_total", "Transmit errors on the interface.", "device")
	netRxDrop = collector.Counter("system", "network_receive_drop_total", "Received packets dropped on the interface.", "device")
	netTxDrop = collector.Counter("system", "network_transmit_drop_total", "Packets to send dropped on the interface.", "device")
)

func (s *System) updateNetwork(ctx context.Context, ch chan<- prometheus.Metric) error {
	stats, err := net.IOCountersWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Proc("net", "dev"), err)
	}
	for _, n := range stats {
		if !s.netdevs.keep(n.Name) {
			continue
		}
		ch <- netRx.Const(float64(n.BytesRecv), n.Name)
		ch <- netTx.Const(float64(n.BytesSent), n.Name)
		ch <- netRxErr.Const(float64(n.Errin), n.Name)
		ch <- netTxErr.Const(float64(n.Errout), n.Name)
		ch <- netRxDrop.Const(float64(n.Dropin), n.Name)
		ch <- netTxDrop.Const(float64(n.Dropout), n.Name)
	}
	return nil
}

var (
	pressureSome = collector.Counter("system", "pressure_waiting_seconds_total",
		"Seconds in which at least one task was stalled on the resource (PSI 'some' total).", "resource")
	pressureFull = collector.Counter("system", "pressure_stalled_seconds_total",
		"Seconds in which all non-idle tasks were stalled on the resource (PSI 'full' total).", "resource")
)

func (s *System) updatePressure(_ context.Context, ch chan<- prometheus.Metric) error {
	var errs []error
	for _, res := range []string{"cpu", "memory", "io"} {
		st, err := s.procfs.PSIStatsForResource(res)
		if errors.Is(err, fs.ErrNotExist) {
			continue // kernel without PSI: nothing to report, not a failure
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.cfg.Proc("pressure", res), err))
			continue
		}
		if st.Some == nil {
			errs = append(errs, fmt.Errorf("%s: no 'some' line", s.cfg.Proc("pressure", res)))
			continue
		}
		ch <- pressureSome.Const(float64(st.Some.Total)/1e6, res)
		// The kernel prints a 'full' line for cpu too (all zero before 5.13); only memory and io mean anything.
		if st.Full != nil && res != "cpu" {
			ch <- pressureFull.Const(float64(st.Full.Total)/1e6, res)
		}
	}
	return errors.Join(errs...)
}
