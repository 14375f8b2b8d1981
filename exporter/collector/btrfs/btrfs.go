// Package btrfs collects Btrfs allocation, device error counters, scrub
// results, subvolume/snapshot freshness and quota figures.
//
// Allocation, device sizes, commit statistics, device error counters and
// quotas come from /sys/fs/btrfs/<uuid> (no privileges needed). Scrub
// results come from btrfs-progs' status file
// <rootfs>/var/lib/btrfs/scrub.status.<uuid>. Subvolumes and snapshots are
// listed with the BTRFS_IOC_TREE_SEARCH_V2 ioctl (CAP_SYS_ADMIN) on a
// mount of the filesystem, in the background: a new walk starts only when
// the filesystem's generation or commit count moved and the previous walk is at least
// --collector.btrfs.subvolume-interval old, and a scrape only reads the
// summary the last walk left (one series per source subvolume, whatever
// the number of snapshots).
//
// It reads sysfs itself rather than through prometheus/procfs/btrfs (which
// is in the dependency tree): that package has no generation, device error
// counters (devinfo/<id>/error_stats) or qgroups, and turns a missing or
// garbled file into 0, where this collector must name the file in its error
// and drop a filesystem unmounted while it is read.
package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/hostmounts"
	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

const name = "btrfs"

// Options are the btrfs collector's flags.
type Options struct {
	// SubvolumeInterval is the least time between two walks of a
	// filesystem's subvolumes (a walk also waits for the generation to move).
	SubvolumeInterval time.Duration
	// QuotaInclude is a regexp of subvolume paths whose quota figures are
	// exported besides the top-level subvolumes ("" for none).
	QuotaInclude string
	// Subvolumes turns the subvolume walk (BTRFS_IOC_TREE_SEARCH, which
	// needs CAP_SYS_ADMIN) on. Off, the background job only looks up the
	// mount and its devices (names and sizes, no privilege needed), and no
	// subvolume, snapshot, quota or scan series is sent.
	Subvolumes bool
	// ScrubStatus turns reading btrfs-progs' scrub status files on; they
	// are 0600 root, so the service needs CAP_DAC_READ_SEARCH for them.
	ScrubStatus bool
}

var flags Options

func init() {
	kingpin.Flag("collector.btrfs.subvolume-interval",
		"Least time between two walks of a filesystem's subvolumes; a walk also waits for the filesystem generation to move.").
		Default("1m").DurationVar(&flags.SubvolumeInterval)
	kingpin.Flag("collector.btrfs.quota-subvolumes-include",
		"Regexp of subvolume paths whose quota figures are exported, besides the subvolumes in the top level's root directory that are not read-only snapshots.").
		Default("").StringVar(&flags.QuotaInclude)
	kingpin.Flag("collector.btrfs.subvolumes",
		"Walk the subvolumes and snapshots (needs CAP_SYS_ADMIN); --no-collector.btrfs.subvolumes never tries.").
		Default("true").BoolVar(&flags.Subvolumes)
	kingpin.Flag("collector.btrfs.scrub-status",
		"Read btrfs-progs' scrub status files /var/lib/btrfs/scrub.status.<uuid> (0600 root: needs CAP_DAC_READ_SEARCH).").
		Default("true").BoolVar(&flags.ScrubStatus)
	collector.Register(name, true, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg, flags)
	})
}

var (
	info = collector.Gauge(name, "btrfs_info", "Btrfs filesystem label, 1 per mounted filesystem.", "uuid", "label")
	size = collector.Gauge(name, "btrfs_size_bytes",
		"Logical bytes allocated to chunks of a block group type and profile (Size in `btrfs filesystem usage`).",
		"uuid", "block_group_type", "profile")
	used = collector.Gauge(name, "btrfs_used_bytes",
		"Logical bytes used in chunks of a block group type and profile (Used in `btrfs filesystem usage`).",
		"uuid", "block_group_type", "profile")
	diskAllocated = collector.Gauge(name, "btrfs_disk_allocated_bytes",
		"Raw device bytes allocated to chunks of a block group type, all copies counted.", "uuid", "block_group_type")
	diskUsed = collector.Gauge(name, "btrfs_disk_used_bytes",
		"Raw device bytes used in chunks of a block group type, all copies counted.", "uuid", "block_group_type")
	reserved = collector.Gauge(name, "btrfs_reserved_bytes",
		"Bytes reserved for ongoing allocations in a block group type.", "uuid", "block_group_type")
	mayUse = collector.Gauge(name, "btrfs_may_use_bytes",
		"Bytes promised to ongoing operations in a block group type (bytes_may_use).", "uuid", "block_group_type")
	globalRsv = collector.Gauge(name, "btrfs_global_reserve_bytes",
		"Size of the global block reserve.", "uuid")
	globalRsvUsed = collector.Gauge(name, "btrfs_global_reserve_used_bytes",
		"Bytes of the global block reserve in use (the \"used\" of `btrfs filesystem usage`).", "uuid")
	unallocated = collector.Gauge(name, "btrfs_unallocated_bytes",
		"Device bytes not allocated to any chunk: device sizes (as the filesystem uses them) minus allocated chunks. Near 0 predicts ENOSPC.", "uuid")
	deviceSize = collector.Gauge(name, "btrfs_device_size_bytes",
		"Size of a member device as the filesystem uses it (the block device's size until the first subvolume walk).", "uuid", "device")
	deviceErrors = collector.Counter(name, "btrfs_device_errors_total",
		"Device error counters (type: write, read, flush, corruption, generation), from devinfo/<id>/error_stats.",
		"uuid", "device", "type")
	commits       = collector.Counter(name, "btrfs_commits_total", "Transaction commits since mount.", "uuid")
	commitSeconds = collector.Counter(name, "btrfs_commit_seconds_total",
		"Time spent in transaction commits since mount.", "uuid")
	commitLast = collector.Gauge(name, "btrfs_commit_last_seconds", "Duration of the last transaction commit.", "uuid")
	commitMax  = collector.Gauge(name, "btrfs_commit_max_seconds", "Longest transaction commit since mount.", "uuid")
	generation = collector.Gauge(name, "btrfs_generation", "Filesystem generation (last committed transaction id).", "uuid")

	scrubFinished = collector.Gauge(name, "btrfs_scrub_last_finished_timestamp_seconds",
		"When the last scrub ended (resume or start time plus duration), from btrfs-progs' scrub status file.", "uuid")
	scrubStarted = collector.Gauge(name, "btrfs_scrub_last_started_timestamp_seconds",
		"When the last scrub started.", "uuid")
	scrubDuration = collector.Gauge(name, "btrfs_scrub_duration_seconds",
		"Duration of the last scrub (so far, if running).", "uuid")
	scrubBytes = collector.Gauge(name, "btrfs_scrub_bytes",
		"Bytes the last scrub checked (data and tree, all devices), as `btrfs scrub status -R` sums them.", "uuid")
	scrubErrors = collector.Gauge(name, "btrfs_scrub_errors",
		"Errors the last scrub found, by kind (read, csum, verify, super, uncorrectable, corrected, malloc).", "uuid", "type")
	scrubRunning = collector.Gauge(name, "btrfs_scrub_running",
		"1 while the last scrub has neither finished nor been cancelled (as btrfs-progs' status file says).", "uuid")
	scrubCanceled = collector.Gauge(name, "btrfs_scrub_canceled",
		"1 when the last scrub was cancelled.", "uuid")

	subvolumes = collector.Gauge(name, "btrfs_subvolumes",
		"Subvolumes and snapshots, as `btrfs subvolume list` counts them.", "uuid")
	snapshots = collector.Gauge(name, "btrfs_snapshots",
		"Snapshots whose parent UUID is this subvolume, for every subvolume that is not a snapshot or has snapshots.",
		"uuid", "subvolume")
	snapshotNewest = collector.Gauge(name, "btrfs_snapshot_newest_timestamp_seconds",
		"Creation time of the newest snapshot of a subvolume (absent when it has none).", "uuid", "subvolume")
	scanSuccess = collector.Gauge(name, "btrfs_subvolume_scan_success",
		"1 when the last walk of the subvolumes succeeded (it needs CAP_SYS_ADMIN and a visible mount); absent with --no-collector.btrfs.subvolumes.", "uuid")
	scanTime = collector.Gauge(name, "btrfs_subvolume_scan_timestamp_seconds",
		"When the subvolume figures were last refreshed.", "uuid")
	quotaReferenced = collector.Gauge(name, "btrfs_quota_referenced_bytes",
		"Bytes a subvolume references (qgroup 0/<id>), when quotas are enabled.", "uuid", "subvolume")
	quotaExclusive = collector.Gauge(name, "btrfs_quota_exclusive_bytes",
		"Bytes only this subvolume references (qgroup 0/<id>), when quotas are enabled.", "uuid", "subvolume")
)

// Btrfs is the btrfs collector.
type Btrfs struct {
	cfg    collector.Config
	logger *slog.Logger
	opts   Options
	quota  quotaSelect

	mu    sync.Mutex
	scans map[string]*scanState
}

// New builds the collector; it fails only on bad flags.
func New(cfg collector.Config, o Options) (*Btrfs, error) {
	b := &Btrfs{cfg: cfg, logger: cfg.Logger, opts: o, scans: map[string]*scanState{}}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if o.QuotaInclude != "" {
		re, err := regexp.Compile(o.QuotaInclude)
		if err != nil {
			return nil, fmt.Errorf("--collector.btrfs.quota-subvolumes-include: %w", err)
		}
		b.quota.Include = re
	}
	return b, nil
}

// Update implements collector.Collector.
func (b *Btrfs) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	root := b.cfg.Sys("fs", "btrfs")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // btrfs not loaded: nothing mounted
	}
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, e := range ents {
		if !strings.Contains(e.Name(), "-") {
			continue // "features"
		}
		if !e.IsDir() {
			// --path.sysfs may hold links to the real directories.
			if fi, err := os.Stat(filepath.Join(root, e.Name())); err != nil || !fi.IsDir() {
				continue
			}
		}
		uuid := e.Name()
		seen[uuid] = true
		if err := b.updateFS(ctx, filepath.Join(root, uuid), ch); err != nil {
			if errors.Is(err, errVanished) {
				delete(seen, uuid)
				continue
			}
			errs = append(errs, err)
		}
	}
	b.mu.Lock()
	for u := range b.scans {
		if !seen[u] {
			delete(b.scans, u)
		}
	}
	b.mu.Unlock()
	return errors.Join(errs...)
}

// updateFS sends the metrics of the filesystem whose sysfs directory is
// dir. readFS reads that whole directory before anything is sent, so a
// filesystem unmounted while it is read sends nothing (errVanished). The
// scrub status file and the qgroups are read while sending: they are
// optional, and a qgroup directory that vanishes only ends the quota series.
func (b *Btrfs) updateFS(ctx context.Context, dir string, ch chan<- prometheus.Metric) error {
	s, err := readFSFunc(dir)
	if err != nil {
		return err
	}
	u := s.UUID
	w := b.subvolumes(ctx, s)
	var errs []error
	devNames := w.devNames
	if s.NoErrorStats {
		if names, err := errorStatsByIoctl(dir, s, w.mnt); err != nil {
			errs = append(errs, err)
		} else {
			devNames = names
		}
	}
	sendAllocation(ch, s, w.fsSizes)
	sendDeviceErrors(ch, s, devNames)
	sendCommits(ch, s)
	if b.opts.ScrubStatus {
		if err := b.scrub(u, ch); err != nil {
			errs = append(errs, err)
		}
	}
	if b.opts.Subvolumes {
		sendWalk(ch, u, w)
	}
	if w.sum != nil && s.HasQuota {
		errs = append(errs, sendQuotas(ch, dir, u, w.sum)...)
	}
	if w.err != nil && !errors.Is(w.err, errNoScan) {
		errs = append(errs, w.err)
	}
	return errors.Join(errs...)
}

// errorStatsByIoctl fills s.Devices from BTRFS_IOC_GET_DEV_STATS on a mount
// of the filesystem, for kernels without devinfo/<id>/error_stats, and
// returns the device names by devid.
func errorStatsByIoctl(dir string, s *fsStats, mnt string) (map[string]string, error) {
	if mnt == "" {
		return nil, fmt.Errorf("%s: no devinfo/<id>/error_stats and no mount to ask by ioctl", dir)
	}
	devs, names, err := ioctlDevices(mnt, s.UUID)
	if err != nil {
		return nil, err
	}
	s.Devices = devs
	return names, nil
}

// sendAllocation sends the label, generation, space per block group type
// and profile, the global reserve, device sizes and unallocated space.
// fsSizes are the sizes the filesystem uses on each device, as the last
// walk found them (nil before one succeeded).
func sendAllocation(ch chan<- prometheus.Metric, s *fsStats, fsSizes map[string]uint64) {
	u := s.UUID
	ch <- info.Const(1, u, s.Label)
	if s.HasGeneration {
		ch <- generation.Const(float64(s.Generation), u)
	}
	var allocated, devTotal uint64
	for _, t := range blockGroupTypes {
		bg := s.Alloc[t]
		for p, pu := range bg.Profiles {
			ch <- size.Const(float64(pu.Total), u, t, p)
			ch <- used.Const(float64(pu.Used), u, t, p)
		}
		ch <- diskAllocated.Const(float64(bg.DiskTotal), u, t)
		ch <- diskUsed.Const(float64(bg.DiskUsed), u, t)
		ch <- reserved.Const(float64(bg.Reserved), u, t)
		ch <- mayUse.Const(float64(bg.MayUse), u, t)
		allocated += bg.DiskTotal
	}
	ch <- globalRsv.Const(float64(s.GlobalRsvSize), u)
	ch <- globalRsvUsed.Const(float64(s.GlobalRsvSize-min(s.GlobalRsvReserved, s.GlobalRsvSize)), u)
	// A device's size is the size the filesystem uses on it (smaller than
	// the block device after a shrink: "Device slack" in `btrfs filesystem
	// usage`), known from the last walk (BTRFS_IOC_DEV_INFO, as
	// node_exporter), else the block device's size from sysfs.
	for d, sz := range s.DeviceSizes {
		if fsz, ok := fsSizes[d]; ok && fsz <= sz {
			sz = fsz
		}
		ch <- deviceSize.Const(float64(sz), u, d)
		devTotal += sz
	}
	if devTotal >= allocated {
		ch <- unallocated.Const(float64(devTotal-allocated), u)
	} else {
		ch <- unallocated.Const(0, u)
	}
}

// sendDeviceErrors sends the error counters of each device, named by its
// kernel name when known, else by the only device there is, else devid<N>.
func sendDeviceErrors(ch chan<- prometheus.Metric, s *fsStats, devNames map[string]string) {
	for _, d := range s.Devices {
		dn := devNames[d.ID]
		if dn == "" {
			if len(s.DeviceSizes) == 1 && len(s.Devices) == 1 {
				for n := range s.DeviceSizes {
					dn = n
				}
			} else {
				dn = "devid" + d.ID
			}
		}
		for typ, v := range d.Errors {
			ch <- deviceErrors.Const(float64(v), s.UUID, dn, typ)
		}
	}
}

// sendCommits sends commit_stats, milliseconds as seconds.
func sendCommits(ch chan<- prometheus.Metric, s *fsStats) {
	c := s.Commit
	if c == nil {
		return
	}
	ch <- commits.Const(float64(c["commits"]), s.UUID)
	ch <- commitSeconds.Const(float64(c["total_commit_ms"])/1000, s.UUID)
	ch <- commitLast.Const(float64(c["last_commit_ms"])/1000, s.UUID)
	ch <- commitMax.Const(float64(c["max_commit_ms"])/1000, s.UUID)
}

// sendWalk sends whether the last subvolume walk worked and, once one
// worked, its subvolume and snapshot figures.
func sendWalk(ch chan<- prometheus.Metric, u string, w walkResult) {
	if w.finished.IsZero() {
		ch <- scanSuccess.Const(0, u)
	} else {
		ch <- scanSuccess.Const(boolFloat(w.err == nil), u)
	}
	if w.sum == nil {
		return
	}
	ch <- scanTime.Const(float64(w.finished.UnixNano())/1e9, u)
	ch <- subvolumes.Const(float64(w.sum.Subvolumes), u)
	for _, src := range w.sum.Sources {
		ch <- snapshots.Const(float64(src.Snapshots), u, src.Path)
		if src.Snapshots > 0 {
			ch <- snapshotNewest.Const(src.Newest, u, src.Path)
		}
	}
}

// sendQuotas sends the qgroup figures of the subvolumes the walk named, in
// subvolume id order.
func sendQuotas(ch chan<- prometheus.Metric, dir, u string, sum *summary) []error {
	ids := make([]uint64, 0, len(sum.Paths))
	for id := range sum.Paths {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var errs []error
	qbuf := make([]byte, 64)
	for _, id := range ids {
		ref, excl, err := readQgroup(dir, id, qbuf)
		if errors.Is(err, fs.ErrNotExist) {
			continue // created after quotas were enabled and not yet accounted, or just deleted
		}
		if errors.Is(err, errVanished) {
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ch <- quotaReferenced.Const(float64(ref), u, sum.Paths[id])
		ch <- quotaExclusive.Const(float64(excl), u, sum.Paths[id])
	}
	return errs
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// scrub exports the scrub status file of filesystem u, if btrfs-progs wrote
// one.
func (b *Btrfs) scrub(u string, ch chan<- prometheus.Metric) error {
	p := b.cfg.Root("var", "lib", "btrfs", "scrub.status."+u)
	raw, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never scrubbed with btrfs-progs
	}
	if err != nil {
		return err
	}
	st, err := parseScrubStatus(raw, u)
	if err != nil {
		return inputerr.Wrap(p, err)
	}
	// btrfs-progs writes the file with zero times and counters when a
	// scrub starts and fills it in when the scrub ends or is cancelled
	// (live progress goes over its socket only). A scrub whose btrfs
	// process was killed stays "running" until the next one.
	ch <- scrubRunning.Const(boolFloat(!st.Finished && !st.Canceled), u)
	if st.TStart == 0 {
		return nil
	}
	ch <- scrubStarted.Const(float64(st.TStart), u)
	ch <- scrubDuration.Const(float64(st.Duration), u)
	if st.Finished && !st.Canceled {
		ch <- scrubFinished.Const(float64(st.Finish()), u)
	}
	ch <- scrubCanceled.Const(boolFloat(st.Canceled), u)
	ch <- scrubBytes.Const(float64(st.Counters["data_bytes_scrubbed"]+st.Counters["tree_bytes_scrubbed"]), u)
	for _, k := range scrubErrorKinds {
		ch <- scrubErrors.Const(float64(st.Counters[k]), u, strings.TrimSuffix(k, "_errors"))
	}
	return nil
}

// newTreeSearcher starts a walk of the filesystem open at fd (a test
// counts the walks).
var newTreeSearcher = func(fd int) *treeSearcher { return &treeSearcher{fd: fd} }

// readFSFunc reads one filesystem's sysfs directory (a test replaces it to
// unmount a filesystem half-way).
var readFSFunc = readFS

// errNoScan marks walks that cannot run here (no CAP_SYS_ADMIN, no visible
// mount): logged once, not a collector error, scan_success 0.
var errNoScan = errors.New("cannot list subvolumes")

// scanState is the background subvolume walk of one filesystem.
type scanState struct {
	running  bool
	done     chan struct{}
	gen      uint64 // generation the last walk started at
	commits  uint64 // commit count the last walk started at
	started  time.Time
	finished time.Time
	sum      *summary
	err      error
	logged   string
	devNames map[string]string // devid -> kernel device name
	mnt      string            // where the last walk found the filesystem mounted
	fsSizes  map[string]uint64 // device name -> size the filesystem uses (BTRFS_IOC_DEV_INFO)
}

// walkResult is what the last subvolume walk of a filesystem left.
type walkResult struct {
	sum      *summary          // nil until a walk succeeded
	err      error             // of the last walk; errNoScan when it cannot run here
	finished time.Time         // zero before the first walk ended
	devNames map[string]string // devid -> kernel device name
	mnt      string            // where the walk found the filesystem mounted
	fsSizes  map[string]uint64 // device name -> size the filesystem uses
}

// subvolumes returns what the last walk left, starting a new walk in the
// background when the generation moved and the interval passed. Only the
// very first walk of a filesystem is waited for (until ctx ends).
func (b *Btrfs) subvolumes(ctx context.Context, s *fsStats) walkResult {
	b.mu.Lock()
	st := b.scans[s.UUID]
	if st == nil {
		st = &scanState{}
		b.scans[s.UUID] = st
	}
	first := st.started.IsZero()
	// The generation file names the running transaction, which a snapshot
	// may join after a walk started: a commit since then also counts.
	commitCount, hasCommits := s.Commit["commits"]
	moved := !s.HasGeneration || s.Generation != st.gen || (hasCommits && commitCount != st.commits)
	due := first || (time.Since(st.started) >= b.opts.SubvolumeInterval && (moved || st.err != nil))
	if due && !st.running {
		st.running, st.done, st.gen, st.commits, st.started = true, make(chan struct{}), s.Generation, commitCount, time.Now()
		devIDs := make([]string, 0, len(s.Devices))
		for _, d := range s.Devices {
			devIDs = append(devIDs, d.ID)
		}
		go b.walk(st, s.UUID, devIDs, keys(s.DeviceSizes))
	}
	done := st.done
	b.mu.Unlock()
	if first {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return walkResult{sum: st.sum, err: st.err, finished: st.finished, devNames: st.devNames, mnt: st.mnt, fsSizes: st.fsSizes}
}

func keys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// walk lists the subvolumes of filesystem uuid and stores the summary.
func (b *Btrfs) walk(st *scanState, uuid string, devIDs, devNames []string) {
	sum, names, mnt, err := b.scanFS(uuid, devIDs, devNames)
	b.mu.Lock()
	st.mnt = mnt
	defer b.mu.Unlock()
	st.running = false
	close(st.done)
	st.finished = time.Now()
	st.err = err
	if names != nil {
		st.devNames = names
	}
	if err == nil {
		st.sum = sum
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != st.logged {
		st.logged = msg
		if !b.opts.Subvolumes {
			b.logger.Debug("btrfs mount lookup", "uuid", uuid, "err", err)
		} else if errors.Is(err, errNoScan) {
			b.logger.Warn("btrfs subvolume and snapshot metrics unavailable", "uuid", uuid, "err", err)
		} else if err == nil {
			b.logger.Info("btrfs subvolume walk works again", "uuid", uuid)
		}
	}
}

// scanFS finds a mount of the filesystem, maps device ids to names and
// walks the subvolumes.
func (b *Btrfs) scanFS(uuid string, devIDs, devNames []string) (sum *summary, names map[string]string, mnt string, err error) {
	if mnt, err = b.findMount(uuid, devNames); err != nil {
		return nil, nil, "", err
	}
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: open %s: %v", errNoScan, mnt, err)
	}
	defer unix.Close(fd)
	if got, err := fsid(fd); err != nil || got != uuid {
		return nil, nil, "", fmt.Errorf("%w: %s is not filesystem %s (%s %v)", errNoScan, mnt, uuid, got, err)
	}
	names = map[string]string{}
	sizes := map[string]uint64{}
	for _, id := range devIDs {
		n, _ := strconv.ParseUint(id, 10, 64)
		if p, total, err := devInfo(fd, n); err == nil {
			names[id] = filepath.Base(p)
			sizes[filepath.Base(p)] = total
		}
	}
	b.mu.Lock()
	if st := b.scans[uuid]; st != nil {
		st.fsSizes = sizes
	}
	b.mu.Unlock()
	if !b.opts.Subvolumes {
		return nil, names, mnt, nil // the mount and its devices only
	}
	t := newTreeSearcher(fd)
	subs, err := t.subvolumes()
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return nil, names, mnt, fmt.Errorf("%w: %s: %v (needs CAP_SYS_ADMIN)", errNoScan, mnt, err)
	}
	if err != nil {
		return nil, names, mnt, fmt.Errorf("listing subvolumes of %s: %w", mnt, err)
	}
	sum, err = summarize(subs, t.dirPath, b.quota)
	if err != nil {
		return nil, names, mnt, fmt.Errorf("listing subvolumes of %s: %w", mnt, err)
	}
	return sum, names, mnt, nil
}

// findMount returns a mount point (under --path.rootfs) of the btrfs whose
// member devices are devNames, from the mount table of PID 1 (or the
// service's own where PID 1 is hidden, see hostmounts).
func (b *Btrfs) findMount(uuid string, devNames []string) (string, error) {
	tab, err := hostmounts.Read(b.cfg.ProcPath)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoScan, inputerr.Wrap(tab.Path, err))
	}
	mounts := tab.Mounts
	want := map[string]bool{}
	for _, n := range devNames {
		want[n] = true
	}
	for _, m := range mounts {
		if m.FSType != "btrfs" {
			continue
		}
		src := filepath.Base(m.Source)
		if !want[src] {
			// /dev/mapper/x and /dev/disk/by-* are links to dm-N, sdX.
			if r, err := filepath.EvalSymlinks(b.cfg.Root(m.Source)); err == nil {
				src = filepath.Base(r)
			}
		}
		if want[src] {
			return b.cfg.Root(m.MountPoint), nil
		}
	}
	return "", fmt.Errorf("%w: filesystem %s is not mounted where PID 1 sees it", errNoScan, uuid)
}
