package system

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/hostmounts"
	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

var fsLabels = []string{"device", "mountpoint", "fstype"}

var (
	fsSize           = collector.Gauge("system", "filesystem_size_bytes", "Size of the filesystem: statfs f_blocks times f_bsize.", fsLabels...)
	fsAvail          = collector.Gauge("system", "filesystem_avail_bytes", "Bytes available to unprivileged users: statfs f_bavail times f_bsize (the blocks reserved for root left out).", fsLabels...)
	fsFree           = collector.Gauge("system", "filesystem_free_bytes", "Free bytes, the blocks reserved for root included: statfs f_bfree times f_bsize.", fsLabels...)
	fsFiles          = collector.Gauge("system", "filesystem_files", "Inodes in the filesystem: statfs f_files (0 on btrfs, which makes inodes as it needs them).", fsLabels...)
	fsFilesFree      = collector.Gauge("system", "filesystem_files_free", "Free inodes: statfs f_ffree (0 on btrfs).", fsLabels...)
	fsReadonly       = collector.Gauge("system", "filesystem_readonly", "1 when the mount is read-only (ro in the mount options of PID 1's mountinfo; where PID 1 is hidden from the service, ro in the superblock options of its own), else 0.", fsLabels...)
	fsDeviceErr      = collector.Gauge("system", "filesystem_device_error", "1 when statfs on the mount point failed or did not answer within 2 seconds (or the scrape's deadline), its sizes then left out; else 0.", fsLabels...)
	statfsWaitBudget = 2 * time.Second // a mount that hangs longer is marked failed
)

// mount is one filesystem to report.
type mount struct {
	device, mountpoint, fstype string
	readonly                   bool
}

// selectMounts applies the filters and, unless all is set, keeps only the
// first mount of each filesystem: bind mounts and further mounts of one
// btrfs (its subvolumes share st_dev) report the same figures, and counting
// them twice would double every alert.
func selectMounts(tab hostmounts.Table, mounts, fstypes filter, all bool) []mount {
	seen := map[string]bool{}
	var out []mount
	for _, mi := range tab.Mounts {
		if !mounts.keep(mi.MountPoint) || !fstypes.keep(mi.FSType) {
			continue
		}
		if !all {
			if seen[mi.MajorMinorVer] {
				continue
			}
			seen[mi.MajorMinorVer] = true
		}
		out = append(out, mount{device: mi.Source, mountpoint: mi.MountPoint, fstype: mi.FSType, readonly: tab.ReadOnly(mi)})
	}
	return out
}

func (s *System) updateFilesystems(ctx context.Context, ch chan<- prometheus.Metric) error {
	tab, err := hostmounts.Read(s.cfg.ProcPath)
	if err != nil {
		return inputerr.Wrap(tab.Path, err)
	}
	for _, m := range selectMounts(tab, s.mounts, s.fstypes, s.all) {
		labels := []string{m.device, m.mountpoint, m.fstype}
		ro := 0.0
		if m.readonly {
			ro = 1
		}
		ch <- fsReadonly.Const(ro, labels...)
		u, err := s.statfs.usage(ctx, filepath.Join(s.cfg.RootPath, m.mountpoint))
		if err != nil {
			// One bad mount (stale NFS, vanished loop device) is marked, not fatal.
			s.logger.Debug("statfs failed", "mountpoint", m.mountpoint, "err", inputerr.Describe(err))
			ch <- fsDeviceErr.Const(1, labels...)
			continue
		}
		ch <- fsDeviceErr.Const(0, labels...)
		bsize := float64(u.Bsize)
		ch <- fsSize.Const(float64(u.Blocks)*bsize, labels...)
		ch <- fsAvail.Const(float64(u.Bavail)*bsize, labels...)
		ch <- fsFree.Const(float64(u.Bfree)*bsize, labels...)
		ch <- fsFiles.Const(float64(u.Files), labels...)
		ch <- fsFilesFree.Const(float64(u.Ffree), labels...)
	}
	return nil
}

// statfsGuard runs statfs in a goroutine with a deadline and remembers
// mount points whose statfs hangs, so that a dead NFS server costs one
// stuck goroutine per mount point, not one per scrape.
type statfsGuard struct {
	mu    sync.Mutex
	stuck map[string]bool
}

func newStatfsGuard() *statfsGuard { return &statfsGuard{stuck: map[string]bool{}} }

var errStuck = errors.New("statfs still hung from an earlier scrape")

func (g *statfsGuard) usage(ctx context.Context, path string) (*unix.Statfs_t, error) {
	g.mu.Lock()
	if g.stuck[path] {
		g.mu.Unlock()
		return nil, errStuck
	}
	g.stuck[path] = true // until the statfs below returns
	g.mu.Unlock()

	type answer struct {
		u   *unix.Statfs_t
		err error
	}
	done := make(chan answer, 1)
	go func() {
		var st unix.Statfs_t
		err := unix.Statfs(path, &st)
		if err != nil {
			done <- answer{nil, err}
		} else {
			done <- answer{&st, nil}
		}
		g.mu.Lock()
		delete(g.stuck, path)
		g.mu.Unlock()
	}()
	wait := statfsWaitBudget
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	select {
	case a := <-done:
		return a.u, a.err
	case <-time.After(wait):
		return nil, fmt.Errorf("statfs %s: no answer within %s", path, wait)
	}
}
