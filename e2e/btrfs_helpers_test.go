//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Btrfs is a real btrfs made of two loop-mounted images, raid1 for data and
// metadata, mounted for one test and torn down (unmounted, loop devices
// detached, images removed) at cleanup. Build it with newBtrfs; the rules,
// dashboards and fault tests reuse it to get a filesystem with snapshots, a
// scrub history and, with Corrupt, checksum errors.
type Btrfs struct {
	t       testing.TB
	Dir     string    // work directory holding the images and the mount point
	Images  [2]string // backing files
	Loops   [2]string // /dev/loopN, devid 1 and 2
	Mnt     string    // mount point
	UUID    string    // filesystem UUID (the exporter's uuid label)
	Label   string
	mounted bool
}

// newBtrfs creates two 1 GiB images, makes them one raid1 filesystem with a
// random label and mounts it. It needs root, btrfs-progs and losetup.
func newBtrfs(t testing.TB) *Btrfs {
	t.Helper()
	requireRoot(t)
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "losetup", "mount", "umount"} {
		requireTool(t, tool)
	}
	dir, err := os.MkdirTemp("", "panther-btrfs-")
	if err != nil {
		t.Fatal(err)
	}
	b := &Btrfs{t: t, Dir: dir, Mnt: filepath.Join(dir, "mnt"), Label: fmt.Sprintf("e2e%d", time.Now().UnixNano()%1e9)}
	t.Cleanup(b.destroy)
	if err := os.Mkdir(b.Mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range b.Images {
		b.Images[i] = filepath.Join(dir, fmt.Sprintf("dev%d.img", i+1))
		if err := os.WriteFile(b.Images[i], nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(b.Images[i], 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	runCmd(t, "mkfs.btrfs", "-q", "-L", b.Label, "-d", "raid1", "-m", "raid1", b.Images[0], b.Images[1])
	for i := range b.Images {
		b.Loops[i] = strings.TrimSpace(runCmd(t, "losetup", "--find", "--show", b.Images[i]))
	}
	b.Mount()
	b.UUID = strings.TrimSpace(runCmd(t, "findmnt", "-n", "-o", "UUID", b.Mnt))
	if b.UUID == "" {
		out := runCmd(t, "btrfs", "filesystem", "show", b.Mnt)
		if _, after, ok := strings.Cut(out, "uuid: "); ok {
			b.UUID = strings.Fields(after)[0]
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/btrfs", b.UUID)); err != nil {
		t.Fatalf("btrfs %s: no sysfs directory: %v", b.UUID, err)
	}
	return b
}

// Mount (re)mounts the filesystem on Mnt.
func (b *Btrfs) Mount() {
	b.t.Helper()
	runCmd(b.t, "btrfs", "device", "scan", b.Loops[0], b.Loops[1])
	runCmd(b.t, "mount", "-t", "btrfs", b.Loops[0], b.Mnt)
	b.mounted = true
}

// Unmount unmounts it (the images and loop devices stay). An exporter
// walking the subvolumes holds the mount for a moment, so a busy mount is
// tried again.
func (b *Btrfs) Unmount() {
	b.t.Helper()
	eventually(b.t, 20*time.Second, "umount "+b.Mnt, func() error {
		if out, err := exec.Command("umount", b.Mnt).CombinedOutput(); err != nil {
			users, _ := exec.Command("fuser", "-vm", b.Mnt).CombinedOutput()
			return fmt.Errorf("%v: %s (users: %s)", err, out, users)
		}
		return nil
	})
	b.mounted = false
}

func (b *Btrfs) destroy() {
	if b.mounted {
		// A process being stopped may still hold it for a moment: try for
		// a while, then unmount lazily.
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := exec.Command("umount", b.Mnt).CombinedOutput()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				users, _ := exec.Command("fuser", "-vm", b.Mnt).CombinedOutput()
				b.t.Logf("umount %s: %v %s (users: %s); unmounting lazily", b.Mnt, err, out, users)
				_ = exec.Command("umount", "-l", b.Mnt).Run()
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, l := range b.Loops {
		if l != "" {
			_ = exec.Command("losetup", "-d", l).Run()
		}
	}
	if b.UUID != "" {
		_ = os.Remove("/var/lib/btrfs/scrub.status." + b.UUID)
		_ = os.Remove("/var/lib/btrfs/scrub.progress." + b.UUID)
	}
	_ = os.RemoveAll(b.Dir)
}

// Path joins rel under the mount point.
func (b *Btrfs) Path(rel string) string { return filepath.Join(b.Mnt, rel) }

// Subvolume creates a subvolume at rel (parents must exist).
func (b *Btrfs) Subvolume(rel string) {
	b.t.Helper()
	runCmd(b.t, "btrfs", "subvolume", "create", b.Path(rel))
}

// Snapshot takes a read-only snapshot of subvolume src at dst (creating
// dst's directory) and returns the time window it was taken in.
func (b *Btrfs) Snapshot(src, dst string) (before, after time.Time) {
	b.t.Helper()
	if err := os.MkdirAll(filepath.Dir(b.Path(dst)), 0o755); err != nil {
		b.t.Fatal(err)
	}
	before = time.Now()
	runCmd(b.t, "btrfs", "subvolume", "snapshot", "-r", b.Path(src), b.Path(dst))
	return before, time.Now()
}

// WriteFile writes size bytes at rel, every 4 KiB block distinct and
// starting with a marker (rel must be under 150 bytes), and syncs the filesystem so it reaches the
// images.
func (b *Btrfs) WriteFile(rel string, size int) {
	b.t.Helper()
	buf := make([]byte, size)
	for off := 0; off < size; off += 4096 {
		copy(buf[off:], fmt.Sprintf("PANTHER-E2E %s %s block %08d ", b.UUID, rel, off/4096))
		for i := off + 256; i < off+4096 && i < size; i++ {
			buf[i] = byte(i*7 + off/4096)
		}
	}
	if err := os.WriteFile(b.Path(rel), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.Sync()
}

// Sync commits the filesystem.
func (b *Btrfs) Sync() {
	b.t.Helper()
	runCmd(b.t, "btrfs", "filesystem", "sync", b.Mnt)
}

// Scrub runs a scrub to the end (btrfs scrub start -B); a scrub that found
// errors is not a failure here.
func (b *Btrfs) Scrub() {
	b.t.Helper()
	out, err := exec.Command("btrfs", "scrub", "start", "-B", b.Mnt).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) { // 3: errors found
		b.t.Fatalf("btrfs scrub start -B %s: %v\n%s", b.Mnt, err, out)
	}
}

// Corrupt overwrites, with dd, the first 4 KiB block of file rel (written
// by WriteFile) in the image of device 1 only, so that a scrub finds a
// checksum error there and repairs it from the other copy. The page cache
// is dropped so the next reads go to the image.
func (b *Btrfs) Corrupt(rel string) {
	b.t.Helper()
	b.Sync()
	marker := []byte(fmt.Sprintf("PANTHER-E2E %s %s block %08d ", b.UUID, rel, 0))
	off, err := findInFile(b.Images[0], marker)
	if err != nil {
		b.t.Fatalf("corrupt %s: %v", rel, err)
	}
	if off%4096 != 0 {
		b.t.Fatalf("corrupt %s: block found at unaligned offset %d", rel, off)
	}
	runCmd(b.t, "dd", "if=/dev/urandom", "of="+b.Images[0], "bs=4096", "count=1",
		"seek="+strconv.FormatInt(off/4096, 10), "conv=notrunc,fsync", "status=none")
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		b.t.Fatal(err)
	}
}

// findInFile returns the offset of the first occurrence of pat in a file.
func findInFile(path string, pat []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	const chunk = 4 << 20
	buf := make([]byte, chunk+len(pat))
	var base int64
	carry := 0
	for {
		n, err := io.ReadFull(f, buf[carry:carry+chunk])
		if i := bytes.Index(buf[:carry+n], pat); i >= 0 {
			return base - int64(carry) + int64(i), nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("%q not found in %s", pat, path)
		}
		if err != nil {
			return 0, err
		}
		carry = copy(buf, buf[carry+n-len(pat):carry+n])
		base += int64(n)
	}
}

// NodeExporter is Debian's prometheus-node-exporter, for side-by-side
// comparisons.
type NodeExporter struct {
	*Process
	URL string
}

// startNodeExporter runs /usr/bin/prometheus-node-exporter with only the
// named collectors on a free loopback port.
func startNodeExporter(t testing.TB, collectors ...string) *NodeExporter {
	t.Helper()
	bin := "/usr/bin/prometheus-node-exporter"
	_, err := os.Stat(bin)
	require(t, err == nil, "%s (Debian prometheus-node-exporter) not installed", bin)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"--web.listen-address=" + addr, "--collector.disable-defaults"}
	for _, c := range collectors {
		args = append(args, "--collector."+c)
	}
	n := &NodeExporter{Process: startProcess(t, nil, bin, args...), URL: "http://" + addr}
	e := &Exporter{Process: n.Process, Addr: addr, URL: n.URL}
	eventually(t, 20*time.Second, "node exporter answers on "+addr, func() error {
		if n.Exited() {
			t.Fatalf("node exporter exited: %s", n.Output())
		}
		_, err := e.Get("/metrics")
		return err
	})
	return n
}

// Scrape fetches and parses the node exporter's /metrics.
func (n *NodeExporter) Scrape(t testing.TB) Families {
	t.Helper()
	return (&Exporter{Process: n.Process, URL: n.URL}).Scrape(t)
}

func mkdirAll(p string) error { return os.MkdirAll(p, 0o755) }

// ScrubStart starts a scrub in the background (btrfs scrub start without
// -B) and returns at once; see SetScrubSpeed to make it last.
func (b *Btrfs) ScrubStart() {
	b.t.Helper()
	// No output pipe: the forked scrub would hold it open until it ends.
	if err := exec.Command("btrfs", "scrub", "start", b.Mnt).Run(); err != nil {
		b.t.Fatalf("btrfs scrub start %s: %v", b.Mnt, err)
	}
}

// ScrubCancel cancels a running scrub.
func (b *Btrfs) ScrubCancel() {
	b.t.Helper()
	runCmd(b.t, "btrfs", "scrub", "cancel", b.Mnt)
}

// SetScrubSpeed limits scrubbing to bytesPerSec on every device (0: no
// limit), through /sys/fs/btrfs/<uuid>/devinfo/<id>/scrub_speed_max.
func (b *Btrfs) SetScrubSpeed(bytesPerSec int64) {
	b.t.Helper()
	ids, err := filepath.Glob(filepath.Join("/sys/fs/btrfs", b.UUID, "devinfo", "*", "scrub_speed_max"))
	if err != nil || len(ids) == 0 {
		b.t.Fatalf("scrub_speed_max of %s: %v", b.UUID, err)
	}
	for _, p := range ids {
		if err := os.WriteFile(p, []byte(strconv.FormatInt(bytesPerSec, 10)), 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// Populate gives the filesystem the shape of a pantherOS host: subvolumes
// "root", "persist" and "nix" with some data, quotas on, and read-only
// snapshots of "persist" under .snapshots/persist/<n> (n from 1). It
// returns the creation time window of the last snapshot.
func (b *Btrfs) Populate(snapshots int) (before, after time.Time) {
	b.t.Helper()
	for _, s := range []string{"root", "persist", "nix"} {
		b.Subvolume(s)
	}
	b.WriteFile("persist/state", 1<<20)
	b.WriteFile("nix/store-blob", 2<<20)
	runCmd(b.t, "btrfs", "quota", "enable", b.Mnt)
	runCmd(b.t, "btrfs", "quota", "rescan", "-w", b.Mnt)
	for i := 1; i <= snapshots; i++ {
		before, after = b.Snapshot("persist", fmt.Sprintf(".snapshots/persist/%d", i))
	}
	return before, after
}

// CorruptAndScrub is the "corrupted Btrfs" fault: it writes a file, damages
// its copy on device 1 with dd and scrubs, leaving checksum errors (found
// and corrected from the mirror) in the scrub status and the device's
// corruption counter above 0.
func (b *Btrfs) CorruptAndScrub() {
	b.t.Helper()
	rel := fmt.Sprintf("corrupt-%d", time.Now().UnixNano())
	b.WriteFile(rel, 1<<20)
	b.Corrupt(rel)
	b.Scrub()
}
