// Command seccompexec runs a program under a seccomp filter built from a
// list of allowed system call names, as systemd applies a unit's
// SystemCallFilter= allow list with SystemCallErrorNumber=EPERM and
// SystemCallArchitectures=native: every other call of the native
// architecture fails with EPERM, and calls of any other architecture too.
// It sets no_new_privs (as NoNewPrivileges= does) and executes the program,
// so the filter holds from its first instruction on, as systemd installs it
// just before execve. Used by the e2e tests to run the exporter under the
// unit's real filter, not only to compare strace's output with it.
//
//	seccompexec -allow FILE -- PROGRAM ARGS...
//
// FILE holds one system call name per line; names the kernel table does
// not know are skipped (systemd does the same).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2) act on the calling thread, and
// execve keeps only the thread that calls it: all three must run on one OS
// thread, or a goroutine moved between threads on a loaded machine execs
// the program without the filter.
func init() { runtime.LockOSThread() }

func main() {
	allow := flag.String("allow", "", "file of allowed system call names")
	table := flag.String("table", "", "x/sys/unix zsysnum_linux_amd64.go, for the numbers")
	flag.Parse()
	if *allow == "" || *table == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: seccompexec -allow FILE -table ZSYSNUM -- PROGRAM ARGS...")
		os.Exit(2)
	}
	if err := run(*allow, *table, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "seccompexec:", err)
		os.Exit(1)
	}
}

func run(allowFile, tableFile string, argv []string) error {
	numbers, err := syscallNumbers(tableFile)
	if err != nil {
		return err
	}
	names, err := lines(allowFile)
	if err != nil {
		return err
	}
	var nrs []uint32
	for _, n := range names {
		if nr, ok := numbers[n]; ok {
			nrs = append(nrs, nr)
		}
	}
	if len(nrs) < 50 {
		return fmt.Errorf("only %d known system calls allowed: list or table not understood", len(nrs))
	}
	prog, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	filter := build(nrs)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// TSYNC puts the filter on every thread of the process too, as a second
	// guard: whichever thread ends up calling execve carries it.
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, 1 /* SECCOMP_SET_MODE_FILTER */, 1 /* SECCOMP_FILTER_FLAG_TSYNC */, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	if tid != 0 { // TSYNC's failure: the thread that could not take it
		return fmt.Errorf("seccomp: thread %d cannot take the filter", tid)
	}
	// execve itself must be allowed by the list (it is in @system-service).
	return unix.Exec(prog, argv, os.Environ())
}

const (
	auditArchX8664 = 0xc000003e
	x32SyscallBit  = 0x40000000
	retAllow       = 0x7fff0000
	retErrno       = 0x00050000
)

// build assembles the classic BPF program: wrong architecture or an x32
// call -> EPERM; each allowed number -> allow; anything else -> EPERM.
func build(nrs []uint32) []unix.SockFilter {
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	eperm := ret(retErrno | uint32(unix.EPERM))
	f := []unix.SockFilter{
		ld(4), // seccomp_data.arch
		jeq(auditArchX8664, 1, 0),
		eperm,
		ld(0), // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: x32SyscallBit, Jt: 0, Jf: 1},
		eperm,
	}
	for _, nr := range nrs {
		f = append(f, jeq(nr, 0, 1), ret(retAllow))
	}
	return append(f, eperm)
}

// syscallNumbers reads `SYS_NAME = NR` lines of x/sys/unix's generated table.
func syscallNumbers(path string) (map[string]uint32, error) {
	ls, err := lines(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint32{}
	for _, l := range ls {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.HasPrefix(f[0], "SYS_") && f[1] == "=" {
			var nr uint32
			if _, err := fmt.Sscan(f[2], &nr); err == nil {
				out[strings.ToLower(strings.TrimPrefix(f[0], "SYS_"))] = nr
			}
		}
	}
	if len(out) < 300 {
		return nil, fmt.Errorf("%s: only %d system calls", path, len(out))
	}
	return out, nil
}

func lines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, s.Err()
}
