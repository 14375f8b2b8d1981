// Package system collects CPU, load, memory, swap, filesystem, disk,
// network, boot time and pressure stall metrics. Every /proc file (stat,
// meminfo, loadavg, diskstats, net/dev, mountinfo, pressure) is read
// through prometheus/procfs, the parsers node_exporter uses, so that the
// figures are the kernel's and agree with node_exporter's to the last digit;
// statfs is one system call. One /proc library, whose parsers return errors:
// gopsutil, used here before, indexed fields of a truncated /proc/loadavg
// without checking, which needed a recover around every part.
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
	"github.com/prometheus/procfs/blockdevice"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// Defaults follow node_exporter's, so that the same mounts and devices show.
const (
	defMountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`
	defFSTypesExclude     = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|ramfs|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs|nfsd|fuse\.lxcfs|fuse\.portal)$`
	// Partitions of every kind of disk (sda1, sdaa1, vda1, xvda1, nvme0n1p1,
	// mmcblk0p1) count their I/O in the whole device too; node_exporter's
	// default keeps mmcblk partitions and those of the 27th disk on.
	defDiskExclude   = `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]+|nvme\d+n\d+p|mmcblk\d+p)\d+$`
	defNetdevExclude = `^(lo|veth.*)$`
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
	cfg      collector.Config
	logger   *slog.Logger
	procfs   procfs.FS
	blockdev blockdevice.FS
	mounts   filter
	fstypes  filter
	disks    filter
	netdevs  filter
	all      bool
	statfs   *statfsGuard
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
	// Only /proc/diskstats is read through blockdevice; it wants a sysfs
	// root too, which ProcDiskstats never touches, and --path.sysfs need
	// not exist.
	if s.blockdev, err = blockdevice.NewFS(cfg.ProcPath, cfg.ProcPath); err != nil {
		return nil, fmt.Errorf("--path.procfs: %w", err)
	}
	return s, nil
}

var (
	cpuSeconds = collector.Counter("system", "cpu_seconds_total",
		"Seconds all CPUs spent in each mode: the cpu line of /proc/stat (ticks of USER_HZ, divided by 100), "+
			"as the kernel and node_exporter count them. user and nice include guest and guest_nice: "+
			"the busy total is every mode but idle, iowait, guest and guest_nice.", "mode")
	cpus     = collector.Gauge("system", "cpus", "Logical CPUs online: the cpuN lines of /proc/stat.")
	load1    = collector.Gauge("system", "load1", "1-minute load average of /proc/loadavg: runnable and uninterruptible (I/O-waiting) tasks, not divided by the CPUs.")
	load5    = collector.Gauge("system", "load5", "5-minute load average of /proc/loadavg: runnable and uninterruptible (I/O-waiting) tasks, not divided by the CPUs.")
	load15   = collector.Gauge("system", "load15", "15-minute load average of /proc/loadavg: runnable and uninterruptible (I/O-waiting) tasks, not divided by the CPUs.")
	memTotal = collector.Gauge("system", "memory_total_bytes",
		"MemTotal of /proc/meminfo: physical memory less what firmware and the kernel image reserve.")
	memAvailable = collector.Gauge("system", "memory_available_bytes",
		"MemAvailable of /proc/meminfo: the kernel's estimate of memory that new work can get without swapping (free memory plus the reclaimable part of the page cache and slab).")
	memFree = collector.Gauge("system", "memory_free_bytes",
		"MemFree of /proc/meminfo: memory used for nothing at all (page cache is not counted as free).")
	memBuffers = collector.Gauge("system", "memory_buffers_bytes",
		"Buffers of /proc/meminfo: page cache of raw block devices (mostly filesystem metadata).")
	memCached = collector.Gauge("system", "memory_cached_bytes",
		"Cached of /proc/meminfo: page cache of files, tmpfs and shared memory included, swap cache and "+
			"reclaimable slab (SReclaimable) not; free(1)'s buff/cache adds Buffers and SReclaimable.")
	swapTotal = collector.Gauge("system", "swap_total_bytes", "SwapTotal of /proc/meminfo: swap space of every active swap device and file, zram included.")
	swapFree  = collector.Gauge("system", "swap_free_bytes", "SwapFree of /proc/meminfo: swap space not in use.")
	bootTime  = collector.Gauge("system", "boot_timestamp_seconds",
		"btime of /proc/stat: Unix time the host booted, as the wall clock now minus the time since boot (it moves when the clock is stepped).")
)

// Update reads every source; a source that fails is reported in the error
// and the others are still sent.
func (s *System) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	var errs []error
	for _, part := range []struct {
		name string
		fn   func(context.Context, chan<- prometheus.Metric) error
	}{
		{"cpu and boot time", s.updateStat},
		{"load", s.updateLoad},
		{"memory", s.updateMemory},
		{"filesystems", s.updateFilesystems},
		{"disks", s.updateDisks},
		{"network", s.updateNetwork},
		{"pressure", s.updatePressure},
	} {
		if err := part.fn(ctx, ch); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part.name, err))
		}
	}
	return errors.Join(errs...)
}

// procfsErr keeps an error of procfs from quoting the file's content (its
// parse errors quote whole lines): the file's name and the kind of problem
// are enough to act on (inputerr).
func procfsErr(path string, err error) error { return inputerr.Wrap(path, err) }

// updateStat reads /proc/stat once for the CPU times and the boot time,
// through procfs as node_exporter does: the kernel's own figures (gopsutil,
// which this collector used before, took guest out of user and nice).
func (s *System) updateStat(_ context.Context, ch chan<- prometheus.Metric) error {
	path := s.cfg.Proc("stat")
	st, err := s.procfs.Stat()
	if err != nil {
		return procfsErr(path, err)
	}
	var errs []error
	if len(st.CPU) == 0 {
		errs = append(errs, fmt.Errorf("%s: no cpuN lines", path))
	} else {
		// The cpu line is the kernel's sum over every CPU (those taken
		// offline since boot too, so it never goes back).
		t := st.CPUTotal
		for mode, v := range map[string]float64{
			"user": t.User, "nice": t.Nice, "system": t.System, "idle": t.Idle, "iowait": t.Iowait,
			"irq": t.IRQ, "softirq": t.SoftIRQ, "steal": t.Steal, "guest": t.Guest, "guest_nice": t.GuestNice,
		} {
			ch <- cpuSeconds.Const(v, mode)
		}
		ch <- cpus.Const(float64(len(st.CPU)))
	}
	if st.BootTime == 0 {
		errs = append(errs, fmt.Errorf("%s: no btime line", path))
	} else {
		ch <- bootTime.Const(float64(st.BootTime))
	}
	return errors.Join(errs...)
}

func (s *System) updateLoad(_ context.Context, ch chan<- prometheus.Metric) error {
	avg, err := s.procfs.LoadAvg()
	if err != nil {
		return inputerr.Wrap(s.cfg.Proc("loadavg"), err)
	}
	ch <- load1.Const(avg.Load1)
	ch <- load5.Const(avg.Load5)
	ch <- load15.Const(avg.Load15)
	return nil
}

// updateMemory reads /proc/meminfo through procfs: each metric is one line
// of it, as node_exporter's node_memory_<Line>_bytes are (gopsutil adds
// SReclaimable to Cached). Swap comes from here too: gopsutil's SwapMemory
// asks sysinfo(2) of the running kernel and ignores --path.procfs.
func (s *System) updateMemory(_ context.Context, ch chan<- prometheus.Metric) error {
	path := s.cfg.Proc("meminfo")
	mi, err := s.procfs.Meminfo()
	if err != nil {
		return procfsErr(path, err)
	}
	if mi.MemTotalBytes == nil {
		return fmt.Errorf("%s: no MemTotal line", path)
	}
	for _, m := range []struct {
		metric *collector.Metric
		bytes  *uint64
	}{
		{memTotal, mi.MemTotalBytes}, {memAvailable, mi.MemAvailableBytes}, {memFree, mi.MemFreeBytes},
		{memBuffers, mi.BuffersBytes}, {memCached, mi.CachedBytes},
		{swapTotal, mi.SwapTotalBytes}, {swapFree, mi.SwapFreeBytes},
	} {
		if m.bytes != nil { // a line the kernel does not print (MemAvailable before 3.14) is left out
			ch <- m.metric.Const(float64(*m.bytes))
		}
	}
	return nil
}

var (
	diskRead = collector.Counter("system", "disk_read_bytes_total",
		"Bytes read from the block device: sectors read in /proc/diskstats times 512 (the kernel counts 512-byte units whatever the device's sector size).", "device")
	diskWritten = collector.Counter("system", "disk_written_bytes_total",
		"Bytes written to the block device: sectors written in /proc/diskstats times 512 (the kernel counts 512-byte units whatever the device's sector size).", "device")
	diskIOTime = collector.Counter("system", "disk_io_time_seconds_total",
		"Seconds the device had I/O in flight (io_ticks of /proc/diskstats); its rate is the share of time busy, which is not saturation for SSDs that serve requests in parallel.", "device")
	diskReads  = collector.Counter("system", "disk_reads_completed_total", "Reads completed successfully (/proc/diskstats), merged requests counted once.", "device")
	diskWrites = collector.Counter("system", "disk_writes_completed_total", "Writes completed successfully (/proc/diskstats), merged requests counted once.", "device")
)

// secondsPerMillisecond is how node_exporter scales diskstats' milliseconds
// (a multiplication, not a division): the same arithmetic gives the same
// figure to the last digit.
const secondsPerMillisecond = 1.0 / 1000.0

// sectorSize is the unit of /proc/diskstats' sector counts, whatever the
// device's own sector size (the kernel counts 512-byte sectors).
const sectorSize = 512

func (s *System) updateDisks(_ context.Context, ch chan<- prometheus.Metric) error {
	stats, err := s.blockdev.ProcDiskstats()
	if err != nil {
		return inputerr.Wrap(s.cfg.Proc("diskstats"), err)
	}
	for _, d := range stats {
		name := d.DeviceName
		if !s.disks.keep(name) {
			continue
		}
		ch <- diskRead.Const(float64(d.ReadSectors*sectorSize), name)
		ch <- diskWritten.Const(float64(d.WriteSectors*sectorSize), name)
		ch <- diskIOTime.Const(float64(d.IOsTotalTicks)*secondsPerMillisecond, name)
		ch <- diskReads.Const(float64(d.ReadIOs), name)
		ch <- diskWrites.Const(float64(d.WriteIOs), name)
	}
	return nil
}

var (
	netRx     = collector.Counter("system", "network_receive_bytes_total", "Bytes received on the interface (/proc/net/dev).", "device")
	netTx     = collector.Counter("system", "network_transmit_bytes_total", "Bytes sent on the interface (/proc/net/dev).", "device")
	netRxErr  = collector.Counter("system", "network_receive_errors_total", "Bad packets received on the interface (errs of /proc/net/dev: rx_errors of the driver).", "device")
	netTxErr  = collector.Counter("system", "network_transmit_errors_total", "Packets the interface failed to send (errs of /proc/net/dev: tx_errors of the driver).", "device")
	netRxDrop = collector.Counter("system", "network_receive_drop_total", "Received packets dropped (drop of /proc/net/dev: rx_dropped plus rx_missed_errors, packets the NIC had no room for).", "device")
	netTxDrop = collector.Counter("system", "network_transmit_drop_total", "Packets dropped on their way out (drop of /proc/net/dev: tx_dropped).", "device")
)

func (s *System) updateNetwork(_ context.Context, ch chan<- prometheus.Metric) error {
	stats, err := s.procfs.NetDev()
	if err != nil {
		return inputerr.Wrap(s.cfg.Proc("net", "dev"), err)
	}
	for _, n := range stats {
		if !s.netdevs.keep(n.Name) {
			continue
		}
		ch <- netRx.Const(float64(n.RxBytes), n.Name)
		ch <- netTx.Const(float64(n.TxBytes), n.Name)
		ch <- netRxErr.Const(float64(n.RxErrors), n.Name)
		ch <- netTxErr.Const(float64(n.TxErrors), n.Name)
		ch <- netRxDrop.Const(float64(n.RxDropped), n.Name)
		ch <- netTxDrop.Const(float64(n.TxDropped), n.Name)
	}
	return nil
}

var (
	pressureSome = collector.Counter("system", "pressure_waiting_seconds_total",
		"Seconds in which at least one task was stalled on the resource: the 'some' total of /proc/pressure/<resource> (microseconds).", "resource")
	pressureFull = collector.Counter("system", "pressure_stalled_seconds_total",
		"Seconds in which all non-idle tasks were stalled on the resource at once: the 'full' total of /proc/pressure/<resource> (memory and io; cpu's is not exported).", "resource")
)

func (s *System) updatePressure(_ context.Context, ch chan<- prometheus.Metric) error {
	var errs []error
	for _, res := range []string{"cpu", "memory", "io"} {
		st, err := s.procfs.PSIStatsForResource(res)
		if errors.Is(err, fs.ErrNotExist) {
			continue // kernel without PSI: nothing to report, not a failure
		}
		if err != nil {
			errs = append(errs, inputerr.Wrap(s.cfg.Proc("pressure", res), err))
			continue
		}
		if st.Some == nil {
			errs = append(errs, fmt.Errorf("%s: no 'some' line", s.cfg.Proc("pressure", res)))
			continue
		}
		// Microseconds to seconds in node_exporter's two steps, for the same last digit.
		ch <- pressureSome.Const(float64(st.Some.Total)/1000.0/1000.0, res)
		// The kernel prints a 'full' line for cpu too (all zero before 5.13); only memory and io mean anything.
		if st.Full != nil && res != "cpu" {
			ch <- pressureFull.Const(float64(st.Full.Total)/1000.0/1000.0, res)
		}
	}
	return errors.Join(errs...)
}
