package hostmounts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two lines as the service sees them under ProtectSystem=strict: every
// mount "ro" for the service, only /data's filesystem read-only itself.
const table = `29 1 254:1 / / ro,relatime shared:1 - btrfs /dev/vda1 rw,ssd,space_cache=v2
30 29 254:2 / /data ro,relatime shared:2 - ext4 /dev/vdb ro,errors=remount-ro
`

func write(t *testing.T, dir, rel, data string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadPID1(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "1/mountinfo", table)
	write(t, dir, "self/mountinfo", "1 0 0:1 / /elsewhere rw - tmpfs none rw\n")
	tab, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Own || tab.Path != filepath.Join(dir, "1", "mountinfo") || len(tab.Mounts) != 2 {
		t.Fatalf("got %+v, want PID 1's two mounts", tab)
	}
	// PID 1's table: the per-mount options count.
	if !tab.ReadOnly(tab.Mounts[0]) || !tab.ReadOnly(tab.Mounts[1]) {
		t.Error("per-mount ro not reported in PID 1's table")
	}
}

// TestReadHidden: PID 1 hidden (ProtectProc=invisible), the own table is
// read and read-only comes from the superblock.
func TestReadHidden(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "self/mountinfo", table)
	tab, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !tab.Own || tab.Path != filepath.Join(dir, "self", "mountinfo") || len(tab.Mounts) != 2 {
		t.Fatalf("got %+v, want the own table's two mounts", tab)
	}
	if tab.ReadOnly(tab.Mounts[0]) {
		t.Error("/ read-only: the sandbox's per-mount ro was taken for the filesystem's")
	}
	if !tab.ReadOnly(tab.Mounts[1]) {
		t.Error("/data not read-only though its superblock is")
	}
}

func TestReadNeither(t *testing.T) {
	dir := t.TempDir()
	tab, err := Read(dir)
	if err == nil {
		t.Fatalf("no error without any mountinfo: %+v", tab)
	}
	if tab.Path != filepath.Join(dir, "1", "mountinfo") {
		t.Errorf("path %s, want PID 1's", tab.Path)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "self", "mountinfo")) {
		t.Errorf("error %q does not name the own table tried too", err)
	}
}
