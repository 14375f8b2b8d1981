package sysfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "temp1_input")
	if err := os.WriteFile(p, []byte("45000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Read(p)
	if err != nil || string(b) != "45000\n" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	// Exactly Size bytes still fit; one more does not.
	if err := os.WriteFile(p, []byte(strings.Repeat("x", Size)), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p); err != nil || len(b) != Size {
		t.Errorf("Read of %d bytes: %d, %v", Size, len(b), err)
	}
	if err := os.WriteFile(p, []byte(strings.Repeat("x", Size+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), p) {
		t.Errorf("Read of %d bytes: %v, want ErrTooLong naming the file", Size+1, err)
	}
}

// TestErrors: the same error values os.ReadFile gives, for the callers'
// "absent" and "asleep" checks.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(filepath.Join(dir, "missing"))
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != filepath.Join(dir, "missing") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Read(dir); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("a directory: %v, want EISDIR", err)
	}
	// A real procfs file reads like os.ReadFile reads it.
	want, err := os.ReadFile("/proc/sys/kernel/ostype")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Read("/proc/sys/kernel/ostype"); err != nil || string(got) != string(want) {
		t.Errorf("/proc/sys/kernel/ostype: %q, %v; os.ReadFile %q", got, err, want)
	}
}

// TestReadInto: the caller's buffer, never grown; len(buf)-1 bytes fit.
func TestReadInto(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bg_reclaim_threshold")
	buf := make([]byte, 8)
	if err := os.WriteFile(p, []byte("1234567"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadInto(p, buf)
	if err != nil || string(b) != "1234567" || &b[0] != &buf[0] {
		t.Fatalf("ReadInto = %q, %v (in the caller's buffer: %v)", b, err, err == nil && &b[0] == &buf[0])
	}
	if err := os.WriteFile(p, []byte("12345678"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInto(p, buf); !errors.Is(err, ErrTooLong) {
		t.Errorf("ReadInto of len(buf) bytes: %v, want ErrTooLong", err)
	}
}
