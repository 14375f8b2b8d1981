package btrfs

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/collectortest"
)

// The fixtures under testdata/ were copied from the sysfs of a real raid1
// btrfs over two loop devices (kernel 6.18), with the output of btrfs-progs
// 6.2 for the same filesystem at the same moment:
// btrfs-filesystem-usage.txt (`btrfs filesystem usage -b`),
// btrfs-subvolume-list.txt (`btrfs subvolume list -u -q`),
// btrfs-scrub-status.txt (`btrfs scrub status -R`), and
// root-tree-search.bin (the item count, then the buffer of one
// BTRFS_IOC_TREE_SEARCH_V2 over the root tree).
const fixUUID = "fa1e79db-cd0c-419c-8e68-2fd254b17d8a"

func newFixture(t *testing.T, sys, root string) *Btrfs {
	t.Helper()
	b, err := New(collector.Config{
		ProcPath: filepath.Join(t.TempDir(), "proc"), // no mount table: subvolumes unavailable
		SysPath:  sys,
		RootPath: root,
	}, Options{SubvolumeInterval: time.Minute, Subvolumes: true, ScrubStatus: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// usage parses `btrfs filesystem usage -b`: the "Overall" key/values and
// the per profile Size/Used.
func usage(t *testing.T, path string) (overall map[string]uint64, prof map[string][2]uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	overall, prof = map[string]uint64{}, map[string][2]uint64{}
	re := regexp.MustCompile(`^(\w+),(\w+): Size:(\d+), Used:(\d+)`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := re.FindStringSubmatch(line); m != nil {
			s, _ := strconv.ParseUint(m[3], 10, 64)
			u, _ := strconv.ParseUint(m[4], 10, 64)
			prof[strings.ToLower(m[1])+"/"+strings.ToLower(m[2])] = [2]uint64{s, u}
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
			overall[k] = n
		}
	}
	return overall, prof
}

// TestGolden pins everything the collector exports for the fixture
// filesystem; TestFixtureMatchesBtrfsProgs says why the figures are right.
func TestGolden(t *testing.T) {
	got := collectortest.Collect(t, newFixture(t, "testdata/sys", "testdata/root"))
	if got.Err != nil {
		t.Fatalf("Update: %v", got.Err)
	}
	got.Golden(t, "testdata/btrfs.prom")
}

func TestFixtureMatchesBtrfsProgs(t *testing.T) {
	b := newFixture(t, "testdata/sys", "testdata/root")
	got := collectortest.Collect(t, b)
	if err := got.Err; err != nil {
		t.Fatalf("Update: %v", err)
	}
	u := map[string]string{"uuid": fixUUID}
	overall, prof := usage(t, "testdata/btrfs-filesystem-usage.txt")
	if len(prof) != 3 {
		t.Fatalf("usage fixture: profiles %v", prof)
	}
	for k, su := range prof {
		typ, p, _ := strings.Cut(k, "/")
		l := map[string]string{"uuid": fixUUID, "block_group_type": typ, "profile": p}
		if v := got.Value(t, "panther_btrfs_size_bytes", l); v != float64(su[0]) {
			t.Errorf("size %s = %v, btrfs says %d", k, v, su[0])
		}
		if v := got.Value(t, "panther_btrfs_used_bytes", l); v != float64(su[1]) {
			t.Errorf("used %s = %v, btrfs says %d", k, v, su[1])
		}
	}
	for metric, key := range map[string]string{
		"panther_btrfs_unallocated_bytes":         "Device unallocated",
		"panther_btrfs_global_reserve_bytes":      "Global reserve",
		"panther_btrfs_global_reserve_used_bytes": "Global reserve used",
	} {
		want, ok := overall[key]
		if key == "Global reserve used" {
			// "Global reserve:  5767168  (used: 0)"
			want, ok = 0, true
		}
		if !ok {
			t.Fatalf("usage fixture lacks %q", key)
		}
		if v := got.Value(t, metric, u); v != float64(want) {
			t.Errorf("%s = %v, btrfs says %d", metric, v, want)
		}
	}
	var devTotal float64
	for _, s := range got.Series("panther_btrfs_device_size_bytes", nil) {
		devTotal += s.Value
	}
	if devTotal != float64(overall["Device size"]) {
		t.Errorf("device sizes sum to %v, btrfs says %d", devTotal, overall["Device size"])
	}
	if v := got.Value(t, "panther_btrfs_info", map[string]string{"uuid": fixUUID, "label": "pantherfix"}); v != 1 {
		t.Errorf("info = %v", v)
	}
	// Two devices, five counters each; no device name without a mount.
	if n := len(got.Series("panther_btrfs_device_errors_total", nil)); n != 10 {
		t.Errorf("device error series: %d, want 10", n)
	}
	if v := got.Value(t, "panther_btrfs_device_errors_total", map[string]string{"device": "devid2", "type": "corruption"}); v != 0 {
		t.Errorf("corruption errors = %v", v)
	}
	if v := got.Value(t, "panther_btrfs_subvolume_scan_success", u); v != 0 {
		t.Errorf("scan success without a mount table = %v, want 0", v)
	}
	if got.Has("panther_btrfs_subvolumes") {
		t.Error("subvolume count exported without a walk")
	}

	// Scrub figures against `btrfs scrub status -R`.
	progs := map[string]float64{}
	raw, err := os.ReadFile("testdata/btrfs-scrub-status.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if n, err := strconv.ParseFloat(v, 64); ok && err == nil {
			progs[k] = n
		}
	}
	if v := got.Value(t, "panther_btrfs_scrub_bytes", u); v != progs["data_bytes_scrubbed"]+progs["tree_bytes_scrubbed"] {
		t.Errorf("scrub bytes = %v, btrfs says %v", v, progs["data_bytes_scrubbed"]+progs["tree_bytes_scrubbed"])
	}
	for _, k := range scrubErrorKinds {
		typ := strings.TrimSuffix(k, "_errors")
		if v := got.Value(t, "panther_btrfs_scrub_errors", map[string]string{"uuid": fixUUID, "type": typ}); v != progs[k] {
			t.Errorf("scrub %s = %v, btrfs says %v", k, v, progs[k])
		}
	}
	started, err := time.ParseInLocation("Mon Jan 2 15:04:05 2006",
		strings.Join(strings.Fields(strings.SplitN(strings.SplitN(string(raw), "Scrub started:", 2)[1], "\n", 2)[0]), " "), time.Local)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Value(t, "panther_btrfs_scrub_last_finished_timestamp_seconds", u); v != float64(started.Unix()) {
		t.Errorf("scrub finished = %v, btrfs says started %v after 0 s", v, started.Unix())
	}
	if v := got.Value(t, "panther_btrfs_scrub_running", u); v != 0 {
		t.Errorf("running = %v", v)
	}
}

// TestRootTreeMatchesSubvolumeList decodes a real tree search buffer and
// groups snapshots as `btrfs subvolume list -u -q` shows them.
func TestRootTreeMatchesSubvolumeList(t *testing.T) {
	raw, err := os.ReadFile("testdata/root-tree-search.bin")
	if err != nil {
		t.Fatal(err)
	}
	items, err := parseSearchItems(raw[4:], int(binary.LittleEndian.Uint32(raw)))
	if err != nil {
		t.Fatal(err)
	}
	subs := map[uint64]*subvol{}
	if err := collectSubvols(items, subs); err != nil {
		t.Fatal(err)
	}
	// `btrfs subvolume list -u -q`:
	// ID 257 gen 10 top level 5 parent_uuid <p> uuid <u> path .snapshots/data-1
	type row struct{ parent, uuid, path string }
	rows := map[uint64]row{}
	list, err := os.ReadFile("testdata/btrfs-subvolume-list.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		f := strings.Fields(line)
		id, _ := strconv.ParseUint(f[1], 10, 64)
		rows[id] = row{parent: f[8], uuid: f[10], path: f[12]}
	}
	// Directories of the fixture: .snapshots is inode 257 of the top level.
	lookup := func(tree, dir uint64) (string, error) {
		if tree == fsTreeObjectID && dir == 257 {
			return ".snapshots/", nil
		}
		return "", fmt.Errorf("unknown directory %d %d", tree, dir)
	}
	sum, err := summarize(subs, lookup, quotaSelect{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Subvolumes != len(rows) {
		t.Errorf("subvolumes = %d, btrfs subvolume list shows %d", sum.Subvolumes, len(rows))
	}
	wantSnaps := map[string]int{}
	byUUID := map[string]string{}
	for id, r := range rows {
		byUUID[r.uuid] = r.path
		if s := subs[id]; s == nil || uuidString(s.UUID) != r.uuid {
			t.Errorf("subvolume %d: uuid %v, btrfs says %s", id, s, r.uuid)
		}
	}
	for _, r := range rows {
		if r.parent == "-" {
			wantSnaps[r.path] += 0
		} else {
			wantSnaps[byUUID[r.parent]]++
		}
	}
	gotSnaps := map[string]int{}
	for _, s := range sum.Sources {
		gotSnaps[s.Path] = s.Snapshots
		if s.Snapshots > 0 && s.Newest < 1.7e9 {
			t.Errorf("%s: newest snapshot time %v", s.Path, s.Newest)
		}
	}
	if len(gotSnaps) != len(wantSnaps) {
		t.Errorf("sources %v, btrfs subvolume list gives %v", gotSnaps, wantSnaps)
	}
	for p, n := range wantSnaps {
		if gotSnaps[p] != n {
			t.Errorf("snapshots of %s = %d, btrfs subvolume list gives %d", p, gotSnaps[p], n)
		}
	}
	// Quotas: by default the subvolumes in the top level's root directory
	// that are not read-only snapshots (data, home); the include regex adds
	// the snapshots.
	want := map[string]bool{}
	for _, r := range rows {
		if !strings.Contains(r.path, "/") && r.parent == "-" {
			want[r.path] = true
		}
	}
	if len(want) != 2 || len(sum.Paths) != len(want) {
		t.Errorf("quota paths %v, want %v", sum.Paths, want)
	}
	for id, p := range sum.Paths {
		if !want[p] || rows[id].path != p {
			t.Errorf("quota path %d = %q (btrfs: %q)", id, p, rows[id].path)
		}
	}
	sum2, err := summarize(subs, lookup, quotaSelect{Include: regexp.MustCompile(`^\.snapshots/`)})
	if err != nil || len(sum2.Paths) != len(rows) {
		t.Errorf("include regex changed top-level quota paths: %v %v", sum2.Paths, err)
	}
}

// copyTree copies the sysfs fixture into a temporary directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestGarbledFilesNameTheFile(t *testing.T) {
	fsDir := filepath.Join("fs", "btrfs", fixUUID)
	for _, tc := range []struct {
		file, content string
	}{
		{"allocation/data/raid1/used_bytes", "12x\n"},
		{"allocation/global_rsv_size", ""},
		{"devinfo/1/error_stats", "write_errs 0\nread_errs\n"},
		{"devinfo/2/error_stats", "write_errs 0\n"},
		{"commit_stats", "commits nope\n"},
		{"generation", "-1\n"},
		{"devices/loop0/size", "\x00\xff"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			sys := copyTree(t, "testdata/sys")
			p := filepath.Join(sys, fsDir, tc.file)
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := collectortest.Collect(t, newFixture(t, sys, "testdata/root")).Err
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v does not name %s", err, p)
			}
		})
	}
	t.Run("scrub status", func(t *testing.T) {
		root := copyTree(t, "testdata/root")
		p := filepath.Join(root, "var/lib/btrfs/scrub.status."+fixUUID)
		raw, _ := os.ReadFile(p)
		if err := os.WriteFile(p, raw[:len(raw)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		got := collectortest.Collect(t, newFixture(t, "testdata/sys", root))
		if err := got.Err; err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %v does not name %s", err, p)
		}
		// The rest of the filesystem's figures are still there.
		if len(got.Series("panther_btrfs_used_bytes", nil)) != 3 {
			t.Errorf("used bytes missing after a scrub status error: %v", got.Series("panther_btrfs_used_bytes", nil))
		}
	})
}

func TestUnmountedWhileReadingDropsOut(t *testing.T) {
	sys := copyTree(t, "testdata/sys")
	// A second filesystem that is unmounted (its directory removed) after
	// the listing, while it is being read.
	gone := filepath.Join(sys, "fs", "btrfs", "00000000-0000-0000-0000-000000000001")
	if err := os.MkdirAll(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	orig := readFSFunc
	t.Cleanup(func() { readFSFunc = orig })
	readFSFunc = func(dir string) (*fsStats, error) {
		if dir == gone {
			if err := os.RemoveAll(gone); err != nil {
				return nil, err
			}
		}
		return orig(dir)
	}
	got := collectortest.Collect(t, newFixture(t, sys, "testdata/root"))
	if err := got.Err; err != nil {
		t.Fatalf("Update: %v", err)
	}
	if n := len(got.Series("panther_btrfs_info", nil)); n != 1 {
		t.Errorf("info series: %d, want only the mounted filesystem", n)
	}
}

func TestNoBtrfs(t *testing.T) {
	got := collectortest.Collect(t, newFixture(t, t.TempDir(), t.TempDir()))
	if err := got.Err; err != nil || len(got.Families) != 0 {
		t.Fatalf("without /sys/fs/btrfs: %v %v", got.Names(), err)
	}
}

func TestScrubAggregation(t *testing.T) {
	in := "scrub status:1\n" +
		"u:1|data_bytes_scrubbed:10|csum_errors:2|corrected_errors:2|t_start:100|t_resumed:150|duration:30|canceled:0|finished:1\n" +
		"u:2|data_bytes_scrubbed:5|csum_errors:1|uncorrectable_errors:1|t_start:90|t_resumed:0|duration:40|canceled:0|finished:0\n" +
		"other:1|data_bytes_scrubbed:99|t_start:1|duration:1|canceled:1|finished:1\n"
	st, err := parseScrubStatus([]byte(in), "u")
	if err != nil {
		t.Fatal(err)
	}
	if st.Devices != 2 || st.Counters["data_bytes_scrubbed"] != 15 || st.Counters["csum_errors"] != 3 ||
		st.TStart != 90 || st.TResumed != 150 || st.Duration != 40 || st.Finished || st.Canceled || st.Finish() != 190 {
		t.Errorf("aggregate: %+v", st)
	}
}

// TestScrubRunning: btrfs-progs writes zeros with finished:0 when a scrub
// starts (seen with progs 6.2); only scrub_running is exported then.
func TestScrubRunning(t *testing.T) {
	root := copyTree(t, "testdata/root")
	p := filepath.Join(root, "var/lib/btrfs/scrub.status."+fixUUID)
	line := "|data_extents_scrubbed:0|tree_extents_scrubbed:0|data_bytes_scrubbed:0|tree_bytes_scrubbed:0|read_errors:0|csum_errors:0|verify_errors:0|no_csum:0|csum_discards:0|super_errors:0|malloc_errors:0|uncorrectable_errors:0|corrected_errors:0|last_physical:0|t_start:0|t_resumed:0|duration:0|canceled:0|finished:0\n"
	if err := os.WriteFile(p, []byte("scrub status:1\n"+fixUUID+":1"+line+fixUUID+":2"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	got := collectortest.Collect(t, newFixture(t, "testdata/sys", root))
	if err := got.Err; err != nil {
		t.Fatal(err)
	}
	if v := got.Value(t, "panther_btrfs_scrub_running", map[string]string{"uuid": fixUUID}); v != 1 {
		t.Errorf("running = %v", v)
	}
	for _, m := range []string{"panther_btrfs_scrub_last_finished_timestamp_seconds", "panther_btrfs_scrub_errors", "panther_btrfs_scrub_bytes"} {
		if len(got.Series(m, nil)) != 0 {
			t.Errorf("%s exported while the first scrub runs", m)
		}
	}
}

// TestSummarizeShapes: a snapshot of a snapshot, a snapshot whose source
// was deleted, a nested subvolume, a deleted subvolume without backref and
// a snapshot of the top level.
func TestSummarizeShapes(t *testing.T) {
	id := func(b byte) (u [16]byte) { u[0] = b; return }
	subs := map[uint64]*subvol{
		5:   {ID: 5, HasUUID: true, UUID: id(5)},
		256: {ID: 256, ParentID: 5, DirID: 256, Name: "root", HasUUID: true, UUID: id(1)},
		257: {ID: 257, ParentID: 5, DirID: 300, Name: "a", HasUUID: true, UUID: id(2), ParentUUID: id(1), ReadOnly: true, Otime: 100},
		258: {ID: 258, ParentID: 5, DirID: 300, Name: "b", HasUUID: true, UUID: id(3), ParentUUID: id(2), ReadOnly: true, Otime: 200},
		259: {ID: 259, ParentID: 5, DirID: 300, Name: "orphan", HasUUID: true, UUID: id(4), ParentUUID: id(99), ReadOnly: true, Otime: 300},
		260: {ID: 260, ParentID: 256, DirID: 256, Name: "nested", HasUUID: true, UUID: id(6)},
		261: {ID: 261, HasUUID: true, UUID: id(7)}, // deleted: no backref
		262: {ID: 262, ParentID: 5, DirID: 300, Name: "top", HasUUID: true, UUID: id(8), ParentUUID: id(5), ReadOnly: true, Otime: 400, OtimeNsec: 5e8},
	}
	lookup := func(tree, dir uint64) (string, error) {
		if tree == 5 && dir == 300 {
			return "snaps/", nil
		}
		return "", fmt.Errorf("unknown directory %d in %d", dir, tree)
	}
	sum, err := summarize(subs, lookup, quotaSelect{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Subvolumes != 6 {
		t.Errorf("subvolumes = %d, want 6", sum.Subvolumes)
	}
	got := map[string]sourceStats{}
	for _, s := range sum.Sources {
		got[s.Path] = s
	}
	want := map[string][2]float64{"root": {1, 100}, "snaps/a": {1, 200}, "root/nested": {0, 0}, "<FS_TREE>": {1, 400.5}}
	if len(got) != len(want) {
		t.Errorf("sources %v, want %v", got, want)
	}
	for p, w := range want {
		if g := got[p]; float64(g.Snapshots) != w[0] || g.Newest != w[1] {
			t.Errorf("%s: %d snapshots, newest %v; want %v", p, g.Snapshots, g.Newest, w)
		}
	}
	// Quotas by default: root only (nested is not in the top level, the
	// others are read-only snapshots).
	if len(sum.Paths) != 1 || sum.Paths[256] != "root" {
		t.Errorf("quota paths %v", sum.Paths)
	}
}

// TestSwitchedOff: --no-collector.btrfs.subvolumes never searches the
// tree, says nothing about it (the sandbox without CAP_SYS_ADMIN would
// refuse it) and sends no walk series; --no-collector.btrfs.scrub-status
// leaves the root-only status file alone. Allocation and device errors
// stay.
func TestSwitchedOff(t *testing.T) {
	searched := 0
	orig := newTreeSearcher
	newTreeSearcher = func(fd int) *treeSearcher { searched++; return orig(fd) }
	t.Cleanup(func() { newTreeSearcher = orig })

	var logs strings.Builder
	b, err := New(collector.Config{
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		ProcPath: filepath.Join(t.TempDir(), "proc"),
		SysPath:  "testdata/sys",
		RootPath: "testdata/root",
	}, Options{SubvolumeInterval: 0})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		got := collectortest.Collect(t, b)
		if got.Err != nil {
			t.Fatal(got.Err)
		}
		for _, m := range []string{"panther_btrfs_subvolume_scan_success", "panther_btrfs_subvolume_scan_timestamp_seconds",
			"panther_btrfs_subvolumes", "panther_btrfs_scrub_running", "panther_btrfs_scrub_errors"} {
			if got.Has(m) {
				t.Errorf("%s exported with subvolumes and scrub status off", m)
			}
		}
		for _, m := range []string{"panther_btrfs_info", "panther_btrfs_device_errors_total", "panther_btrfs_unallocated_bytes"} {
			if !got.Has(m) {
				t.Errorf("%s missing with subvolumes and scrub status off", m)
			}
		}
	}
	if searched != 0 {
		t.Errorf("the subvolume tree was searched %d times", searched)
	}
	if logs.Len() != 0 {
		t.Errorf("logged with subvolumes off:\n%s", logs.String())
	}

	// The same fixture with both on: the walk's failure (no mount table
	// here) is logged and scan_success says 0, and the scrub is read.
	logs.Reset()
	b.opts.Subvolumes, b.opts.ScrubStatus = true, true
	b.scans = map[string]*scanState{}
	got := collectortest.Collect(t, b)
	if v := got.Value(t, "panther_btrfs_subvolume_scan_success", map[string]string{"uuid": fixUUID}); v != 0 {
		t.Errorf("scan_success %v without a mount table", v)
	}
	if !got.Has("panther_btrfs_scrub_errors") {
		t.Error("no scrub errors with scrub status on")
	}
	if !strings.Contains(logs.String(), "subvolume and snapshot metrics unavailable") {
		t.Errorf("the failed walk is not logged with subvolumes on:\n%s", logs.String())
	}
}
