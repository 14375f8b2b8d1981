package btrfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
	"github.com/pantheros/monitoring/exporter/collector/sysfile"
)

// blockGroupTypes are the allocation directories under
// /sys/fs/btrfs/<uuid>/allocation.
var blockGroupTypes = []string{"data", "metadata", "system"}

// errorTypes maps the keys of devinfo/<id>/error_stats to the type label
// (the same names node_exporter uses).
var errorTypes = map[string]string{
	"write_errs":      "write",
	"read_errs":       "read",
	"flush_errs":      "flush",
	"corruption_errs": "corruption",
	"generation_errs": "generation",
}

// profileUsage is allocation/<type>/<profile>/{total,used}_bytes: logical
// bytes, as `btrfs filesystem usage` prints them per "Data,RAID1" line.
type profileUsage struct {
	Total, Used uint64
}

// blockGroup is allocation/<type>.
type blockGroup struct {
	TotalBytes, BytesUsed uint64 // logical
	DiskTotal, DiskUsed   uint64 // raw, all copies
	MayUse, Pinned        uint64
	Reserved, ReadOnly    uint64
	Profiles              map[string]profileUsage
}

// device is one member device of a filesystem.
type device struct {
	ID     string            // devid, from devinfo/<id>
	Errors map[string]uint64 // by type label
}

// fsStats is what sysfs says of one mounted btrfs filesystem.
type fsStats struct {
	UUID, Label       string
	Generation        uint64
	HasGeneration     bool
	GlobalRsvSize     uint64
	GlobalRsvReserved uint64
	Alloc             map[string]*blockGroup // by block group type
	DeviceSizes       map[string]uint64      // kernel device name -> bytes
	Devices           []device               // by devid
	Commit            map[string]uint64      // commit_stats, raw keys
	HasQuota          bool
	// NoErrorStats: devinfo/<id>/error_stats is missing (kernel before
	// 5.14); the counters come from BTRFS_IOC_GET_DEV_STATS instead.
	NoErrorStats bool
}

// errVanished marks a filesystem whose sysfs directory disappeared while it
// was being read (unmounted): it is dropped from the output, not an error.
var errVanished = errors.New("filesystem unmounted while reading")

// sysReader reads files below one /sys/fs/btrfs/<uuid> directory. Errors name
// the file.
// The returned bytes of read are valid until its next call.
type sysReader struct {
	dir string
	buf []byte
}

func (r sysReader) path(rel string) string { return filepath.Join(r.dir, rel) }

// readSmall reads a sysfs attribute (at most a page) with one open, read
// and close, into buf; larger files are read whole.
func readSmall(path string, buf []byte) ([]byte, error) {
	b, err := sysfile.ReadInto(path, buf)
	if errors.Is(err, sysfile.ErrTooLong) {
		return os.ReadFile(path)
	}
	return b, err
}

func (r sysReader) read(rel string) ([]byte, error) {
	var b []byte
	var err error
	if r.buf != nil {
		b, err = readSmall(r.path(rel), r.buf)
	} else {
		b, err = os.ReadFile(r.path(rel))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(r.dir); serr != nil {
				return nil, errVanished
			}
		}
		return nil, err
	}
	return b, nil
}

func (r sysReader) uint(rel string) (uint64, error) {
	b, err := r.read(rel)
	if err != nil {
		return 0, err
	}
	v, err := parseUintFile(b)
	if err != nil {
		return 0, inputerr.Wrap(r.path(rel), err)
	}
	return v, nil
}

// parseUintFile parses a sysfs file holding one unsigned decimal number.
func parseUintFile(b []byte) (uint64, error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, inputerr.New("", "empty file")
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, inputerr.Wrap("", err)
	}
	return v, nil
}

// parseKeyValues parses "key value" lines, as in commit_stats and
// devinfo/<id>/error_stats. Every line must have exactly two fields and a
// decimal value; a file without any line is an error.
func parseKeyValues(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, inputerr.At("", n, `want "key value"`)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, inputerr.At("", n, "value is not a number")
		}
		out[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, inputerr.New("", "no values")
	}
	return out, nil
}

func (r sysReader) keyValues(rel string) (map[string]uint64, error) {
	b, err := r.read(rel)
	if err != nil {
		return nil, err
	}
	kv, err := parseKeyValues(b)
	if err != nil {
		return nil, inputerr.Wrap(r.path(rel), err)
	}
	return kv, nil
}

func (r sysReader) list(rel string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(r.path(rel))
	if err != nil && (errors.Is(err, fs.ErrNotExist)) {
		if _, serr := os.Stat(r.dir); serr != nil {
			return nil, errVanished
		}
	}
	return ents, err
}

// readFS reads /sys/fs/btrfs/<uuid>. It returns errVanished when the
// directory went away while reading.
func readFS(dir string) (*fsStats, error) {
	r := sysReader{dir: dir, buf: make([]byte, 4096+1)}
	s := &fsStats{
		UUID:        filepath.Base(dir),
		Alloc:       map[string]*blockGroup{},
		DeviceSizes: map[string]uint64{},
	}
	label, err := r.read("label")
	if err != nil {
		return nil, err
	}
	s.Label = strings.TrimRight(string(label), "\n")

	if g, err := r.uint("generation"); err == nil {
		s.Generation, s.HasGeneration = g, true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err // garbled, or vanished; older kernels lack the file
	}

	if s.GlobalRsvSize, err = r.uint("allocation/global_rsv_size"); err != nil {
		return nil, err
	}
	if s.GlobalRsvReserved, err = r.uint("allocation/global_rsv_reserved"); err != nil {
		return nil, err
	}
	for _, t := range blockGroupTypes {
		bg, err := readBlockGroup(r, "allocation/"+t)
		if err != nil {
			return nil, err
		}
		s.Alloc[t] = bg
	}

	// devices/<name> links to the block device; its size is in 512-byte
	// sectors whatever the device's logical block size.
	devs, err := r.list("devices")
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		sz, err := r.uint(filepath.Join("devices", d.Name(), "size"))
		if err != nil {
			return nil, err
		}
		s.DeviceSizes[d.Name()] = sz * 512
	}

	infos, err := r.list("devinfo")
	if errors.Is(err, fs.ErrNotExist) {
		s.NoErrorStats = true
	} else if err != nil {
		return nil, err
	}
	for _, d := range infos {
		if _, err := strconv.ParseUint(d.Name(), 10, 64); err != nil {
			continue
		}
		kv, err := r.keyValues(filepath.Join("devinfo", d.Name(), "error_stats"))
		if errors.Is(err, fs.ErrNotExist) {
			s.NoErrorStats = true // kernel before 5.14: error counters only by ioctl
			continue
		}
		if err != nil {
			return nil, err
		}
		dev := device{ID: d.Name(), Errors: map[string]uint64{}}
		for k, label := range errorTypes {
			v, ok := kv[k]
			if !ok {
				return nil, fmt.Errorf("%s: no %s", r.path(filepath.Join("devinfo", d.Name(), "error_stats")), k)
			}
			dev.Errors[label] = v
		}
		s.Devices = append(s.Devices, dev)
	}
	sort.Slice(s.Devices, func(i, j int) bool {
		a, _ := strconv.ParseUint(s.Devices[i].ID, 10, 64)
		b, _ := strconv.ParseUint(s.Devices[j].ID, 10, 64)
		return a < b
	})

	if kv, err := r.keyValues("commit_stats"); err == nil {
		s.Commit = kv
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	if _, err := os.Stat(r.path("qgroups")); err == nil {
		s.HasQuota = true
	}
	return s, nil
}

func readBlockGroup(r sysReader, dir string) (*blockGroup, error) {
	bg := &blockGroup{Profiles: map[string]profileUsage{}}
	for _, f := range []struct {
		name string
		into *uint64
	}{
		{"total_bytes", &bg.TotalBytes},
		{"bytes_used", &bg.BytesUsed},
		{"disk_total", &bg.DiskTotal},
		{"disk_used", &bg.DiskUsed},
		{"bytes_may_use", &bg.MayUse},
		{"bytes_pinned", &bg.Pinned},
		{"bytes_reserved", &bg.Reserved},
		{"bytes_readonly", &bg.ReadOnly},
	} {
		v, err := r.uint(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		*f.into = v
	}
	ents, err := r.list(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		// Profile directories (single, dup, raid1, ...) hold total_bytes
		// and used_bytes; other directories (none today) are skipped.
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(r.path(filepath.Join(p, "used_bytes"))); err != nil {
			continue
		}
		var u profileUsage
		if u.Total, err = r.uint(filepath.Join(p, "total_bytes")); err != nil {
			return nil, err
		}
		if u.Used, err = r.uint(filepath.Join(p, "used_bytes")); err != nil {
			return nil, err
		}
		bg.Profiles[e.Name()] = u
	}
	return bg, nil
}

// readQgroup reads qgroups/0_<id>/{referenced,exclusive}.
func readQgroup(dir string, id uint64, buf []byte) (referenced, exclusive uint64, err error) {
	r := sysReader{dir: dir, buf: buf}
	q := fmt.Sprintf("qgroups/0_%d", id)
	if referenced, err = r.uint(q + "/referenced"); err != nil {
		return 0, 0, err
	}
	if exclusive, err = r.uint(q + "/exclusive"); err != nil {
		return 0, 0, err
	}
	return referenced, exclusive, nil
}
