package btrfs

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	iocFSInfo  = 0x8400941F // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args) (1024 bytes)
	iocDevInfo = 0xD000941E // _IOWR(0x94, 30, struct btrfs_ioctl_dev_info_args) (4096 bytes)
)

// fsInfoArgs is struct btrfs_ioctl_fs_info_args.
type fsInfoArgs struct {
	MaxID, NumDevices uint64
	FSID              [16]byte
	_                 [1024 - 32]byte
}

// devInfoArgs is struct btrfs_ioctl_dev_info_args.
type devInfoArgs struct {
	DevID      uint64
	UUID       [16]byte
	BytesUsed  uint64
	TotalBytes uint64
	FSID       [16]byte
	_          [377]uint64
	Path       [1024]byte
}

// fsid asks the filesystem of fd for its UUID (no privileges needed).
func fsid(fd int) (string, error) {
	var a fsInfoArgs
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), iocFSInfo, uintptr(unsafe.Pointer(&a))); errno != 0 {
		return "", fmt.Errorf("BTRFS_IOC_FS_INFO: %w", errno)
	}
	return uuidString(a.FSID), nil
}

// devPath asks for the path of device devid (no privileges needed).
func devPath(fd int, devid uint64) (string, error) {
	p, _, err := devInfo(fd, devid)
	return p, err
}

// devInfo asks for the path of device devid and its size as the
// filesystem uses it (less than the block device after a shrink).
func devInfo(fd int, devid uint64) (path string, totalBytes uint64, err error) {
	a := devInfoArgs{DevID: devid}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), iocDevInfo, uintptr(unsafe.Pointer(&a))); errno != 0 {
		return "", 0, fmt.Errorf("BTRFS_IOC_DEV_INFO %d: %w", devid, errno)
	}
	if i := bytes.IndexByte(a.Path[:], 0); i >= 0 {
		return string(a.Path[:i]), a.TotalBytes, nil
	}
	return string(a.Path[:]), a.TotalBytes, nil
}

const iocGetDevStats = 0xC4089434 // _IOWR(0x94, 52, struct btrfs_ioctl_get_dev_stats) (1032 bytes)

// getDevStatsArgs is struct btrfs_ioctl_get_dev_stats.
type getDevStatsArgs struct {
	DevID, NrItems, Flags uint64
	Values                [5]uint64 // write, read, flush, corruption, generation
	_                     [121]uint64
}

// devStatTypes are the type labels of getDevStatsArgs.Values, in order.
var devStatTypes = [5]string{"write", "read", "flush", "corruption", "generation"}

// ioctlDevices reads the error counters of every device of the filesystem
// mounted at mnt with BTRFS_IOC_GET_DEV_STATS (no privileges needed to
// read), for kernels whose sysfs lacks devinfo/<id>/error_stats (before
// 5.14). Devices are named by the basename of their path.
func ioctlDevices(mnt, uuid string) ([]device, map[string]string, error) {
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", mnt, err)
	}
	defer unix.Close(fd)
	var fi fsInfoArgs
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), iocFSInfo, uintptr(unsafe.Pointer(&fi))); errno != 0 {
		return nil, nil, fmt.Errorf("%s: BTRFS_IOC_FS_INFO: %w", mnt, errno)
	}
	if got := uuidString(fi.FSID); got != uuid {
		return nil, nil, fmt.Errorf("%s is now filesystem %s, not %s", mnt, got, uuid)
	}
	var devs []device
	names := map[string]string{}
	for id := uint64(1); id <= fi.MaxID && id < 1<<16; id++ {
		p, err := devPath(fd, id)
		if errors.Is(err, unix.ENODEV) {
			continue // removed device: ids have holes
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", mnt, err)
		}
		a := getDevStatsArgs{DevID: id, NrItems: 5}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), iocGetDevStats, uintptr(unsafe.Pointer(&a))); errno != 0 {
			return nil, nil, fmt.Errorf("%s: BTRFS_IOC_GET_DEV_STATS %d: %w", mnt, id, errno)
		}
		d := device{ID: strconv.FormatUint(id, 10), Errors: map[string]uint64{}}
		for i, typ := range devStatTypes {
			if uint64(i) < a.NrItems {
				d.Errors[typ] = a.Values[i]
			}
		}
		devs = append(devs, d)
		names[d.ID] = filepath.Base(p)
	}
	return devs, names, nil
}
