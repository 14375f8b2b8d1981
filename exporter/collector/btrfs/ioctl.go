package btrfs

import (
	"bytes"
	"fmt"
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
	a := devInfoArgs{DevID: devid}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), iocDevInfo, uintptr(unsafe.Pointer(&a))); errno != 0 {
		return "", fmt.Errorf("BTRFS_IOC_DEV_INFO %d: %w", devid, errno)
	}
	if i := bytes.IndexByte(a.Path[:], 0); i >= 0 {
		return string(a.Path[:i]), nil
	}
	return string(a.Path[:]), nil
}
