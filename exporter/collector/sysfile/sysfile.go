// Package sysfile reads the small virtual files of sysfs and procfs (one
// value each: a temperature, a counter, a state) with plain open, read and
// close. os.ReadFile costs five more system calls on such a file: an fstat
// for its size, and because sysfs and procfs files can be polled, os.Open
// registers each one with the runtime's epoll and sets it non-blocking
// (two fcntl), and Close takes it out again. A scrape of a laptop's
// sensors opens about a hundred of them, so that was most of the
// collectors' CPU time (go test -bench in exporter/server, pprof). The same
// shortcut as node_exporter's and procfs's SysReadFile.
package sysfile

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Size is the most Read returns: sysfs attributes are at most a page, the
// values read here a few bytes.
const Size = 512

// ErrTooLong is returned for a file longer than Size bytes.
var ErrTooLong = errors.New("longer than expected for a one-value file")

// Read returns the contents of the file at path (at most Size bytes). Its
// errors are *fs.PathError, so errors.Is(err, fs.ErrNotExist) and the
// errno checks (EIO, ENODATA, ...) work as with os.ReadFile.
func Read(path string) ([]byte, error) {
	// Most values are a few bytes: start small, grow up to Size+1.
	return read(path, make([]byte, 64), Size)
}

// ReadInto is Read into the caller's buf, for a reader that reuses one
// buffer over many files: at most len(buf)-1 bytes, ErrTooLong beyond.
func ReadInto(path string, buf []byte) ([]byte, error) {
	return read(path, buf, len(buf)-1)
}

// read reads the file at path into buf, growing it up to max+1 bytes; a
// file of more than max bytes is ErrTooLong.
func read(path string, buf []byte, max int) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for n <= max {
		if n == len(buf) {
			buf = append(buf, make([]byte, min(len(buf), max+1-len(buf)))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: ErrTooLong}
	}
	return buf[:n], nil
}
