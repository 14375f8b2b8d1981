// Package hostmounts reads the mount table that the system and btrfs
// collectors report filesystems from: PID 1's, the host's, when the
// service may see PID 1, else the service's own.
//
// The NixOS unit sets ProtectProc=invisible, which hides every process of
// another user from the service, PID 1 included: <proc>/1/mountinfo does
// not exist there. The service's own mount namespace is then the best
// view left: systemd made it as a copy of the host's (mounts made on the
// host later propagate into it) and added the sandbox's own mounts
// (PrivateTmp's /tmp, read-only bind mounts, a private /dev and /proc),
// which sit on filesystems the host table has already or on excluded
// types and mount points. One difference matters: ProtectSystem=strict
// marks every mount read-only for the service, so the per-mount "ro" says
// nothing there; the superblock options still say whether the filesystem
// itself is read-only (what an error remount does).
package hostmounts

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/prometheus/procfs"
)

// Table is a mount table and where it was read.
type Table struct {
	Mounts []*procfs.MountInfo
	// Path is the file read: <proc>/1/mountinfo or <proc>/self/mountinfo.
	Path string
	// Own is true when PID 1 was hidden and the table is the service's
	// own mount namespace.
	Own bool
}

// Read returns PID 1's mount table, or the process's own when PID 1 is
// hidden (ProtectProc=invisible: no such file; hidepid=noaccess:
// permission denied).
func Read(procPath string) (Table, error) {
	pfs, err := procfs.NewFS(procPath)
	if err != nil {
		return Table{Path: procPath}, err
	}
	t := Table{Path: filepath.Join(procPath, "1", "mountinfo")}
	t.Mounts, err = pfs.GetProcMounts(1)
	if err == nil || !(errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
		return t, err
	}
	own := Table{Path: filepath.Join(procPath, "self", "mountinfo"), Own: true}
	var ownErr error
	if own.Mounts, ownErr = pfs.GetMounts(); ownErr != nil {
		// Neither: name both files, PID 1's first (Path stays PID 1's).
		return t, fmt.Errorf("%w; and the own table instead: %w", err, ownErr)
	}
	return own, nil
}

// ReadOnly reports whether m is read-only: "ro" in its mount options, or
// in the service's own namespace (where the sandbox makes every mount
// read-only) "ro" in the superblock options.
func (t Table) ReadOnly(m *procfs.MountInfo) bool {
	if t.Own {
		_, ro := m.SuperOptions["ro"]
		return ro
	}
	_, ro := m.Options["ro"]
	return ro
}
