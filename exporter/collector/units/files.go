package units

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The cgroup files read of each unit, in the order read.
const (
	fCPUStat = iota
	fMemCurrent
	fMemPeak
	fMemMax
	fSwap
	fMemEvents
	fIOStat
	fPids
	fCPUPressure
	fMemPressure
	fIOPressure
	filesPerUnit // the most files a unit keeps open
)

var fileNames = [filesPerUnit]string{
	"cpu.stat", "memory.current", "memory.peak", "memory.max", "memory.swap.current", "memory.events",
	"io.stat", "pids.current", "cpu.pressure", "memory.pressure", "io.pressure",
}

// has tells whether a unit whose parent enables c has file f: the memory,
// io and pids files exist only with their controller; cpu.stat and the
// pressure files (where the kernel has PSI) always.
func (c controllers) has(f int) bool {
	switch f {
	case fMemCurrent, fMemPeak, fMemMax, fSwap, fMemEvents:
		return c.memory
	case fIOStat:
		return c.io
	case fPids:
		return c.pids
	}
	return true
}

// retryAbsent is how often a unit's absent files are looked for again. A
// file is absent for good when the kernel lacks it (memory.peak before 5.19,
// no swap accounting, no PSI), so not on every scrape.
const retryAbsent = time.Minute

// unitFiles owns the open files of one unit's cgroup between scrapes.
// Reading a kernfs (cgroup) file with pread at offset 0 makes the kernel
// generate it anew, so a warm scrape costs one system call per file instead
// of open, read and close. A file of a removed cgroup fails with ENODEV;
// the unit is then gone, or was restarted into a new cgroup of the same
// name (reopen). (A regular file, as in the fixture trees, also gives its
// current content to pread at 0 when it is rewritten in place; one replaced
// by a new file under the same name is not seen: the old inode stays open.)
type unitFiles struct {
	dir   string
	ctl   controllers
	fd    [filesPerUnit]int   // -1: not open
	err   [filesPerUnit]error // why not open
	retry time.Time           // when to look for the absent files again
}

// openUnit opens the files a unit with controllers ctl has in dir. A
// missing file is no error here: readUnit reports those that must exist.
// gone is true when dir itself no longer exists (the unit stopped).
func openUnit(dir string, ctl controllers, now time.Time) (f *unitFiles, gone bool) {
	f = &unitFiles{dir: dir, ctl: ctl}
	for i := range f.fd {
		f.fd[i] = -1
	}
	if f.openAbsent(now) {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			f.close()
			return nil, true
		}
	}
	return f, false
}

// openAbsent tries to open the files that are not open; it reports whether
// one was missing (the unit may be gone).
func (f *unitFiles) openAbsent(now time.Time) (missing bool) {
	for i := range f.fd {
		if f.fd[i] >= 0 || !f.ctl.has(i) {
			continue
		}
		p := filepath.Join(f.dir, fileNames[i])
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			f.err[i] = &fs.PathError{Op: "open", Path: p, Err: err}
			missing = missing || removed(err)
			continue
		}
		f.fd[i], f.err[i] = fd, nil
	}
	f.retry = now.Add(retryAbsent)
	return missing
}

// read reads file i whole into *buf; see preadWhole. stale is true when
// the cgroup was removed under the open file.
func (f *unitFiles) read(i int, buf *[]byte) (b []byte, stale bool, err error) {
	if f.fd[i] < 0 {
		return nil, false, f.err[i]
	}
	b, err = preadWhole(f.fd[i], buf)
	if err != nil {
		return nil, removed(err), &fs.PathError{Op: "read", Path: filepath.Join(f.dir, fileNames[i]), Err: err}
	}
	return b, false, nil
}

// preadWhole reads an open file whole from offset 0 into *buf, in one
// pread when it fits; otherwise *buf grows and the file is read again from
// 0, so the result is one generation of it. The result aliases *buf; an
// empty file gives a non-nil empty slice.
func preadWhole(fd int, buf *[]byte) ([]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	for {
		b := *buf
		n, err := syscall.Pread(fd, b, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < len(b) {
			return b[:n:n], nil
		}
		*buf = make([]byte, 2*len(b))
	}
}

// removed tells whether a read failed because the cgroup was removed: kernfs
// answers ENODEV for a file of a removed directory (ENOENT for good measure).
func removed(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOENT)
}

// close closes every open file; it may be called more than once.
func (f *unitFiles) close() {
	for i, fd := range f.fd {
		if fd >= 0 {
			syscall.Close(fd)
			f.fd[i] = -1
		}
	}
}
