//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	iofs "io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// progsUsage is `btrfs filesystem usage -b`: overall figures and, per
// "block_group_type/profile", Size and Used.
type progsUsage struct {
	Overall       map[string]float64
	Profiles      map[string][2]float64
	GlobalRsvUsed float64
	DeviceUnalloc map[string]float64 // per /dev path
}

func btrfsUsage(t testing.TB, mnt string) progsUsage {
	t.Helper()
	out := runCmd(t, "btrfs", "filesystem", "usage", "-b", mnt)
	u := progsUsage{Overall: map[string]float64{}, Profiles: map[string][2]float64{}, DeviceUnalloc: map[string]float64{}}
	prof := regexp.MustCompile(`^(\w+),(\w+): Size:(\d+), Used:(\d+)`)
	rsv := regexp.MustCompile(`Global reserve:\s+(\d+)\s+\(used: (\d+)\)`)
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := prof.FindStringSubmatch(line); m != nil {
			s, _ := strconv.ParseFloat(m[3], 64)
			us, _ := strconv.ParseFloat(m[4], 64)
			u.Profiles[strings.ToLower(m[1])+"/"+strings.ToLower(m[2])] = [2]float64{s, us}
			section = ""
			continue
		}
		if m := rsv.FindStringSubmatch(line); m != nil {
			u.Overall["Global reserve"], _ = strconv.ParseFloat(m[1], 64)
			u.GlobalRsvUsed, _ = strconv.ParseFloat(m[2], 64)
			continue
		}
		if strings.HasPrefix(line, "Unallocated:") {
			section = "unalloc"
			continue
		}
		f := strings.Fields(line)
		if section == "unalloc" && len(f) == 2 {
			u.DeviceUnalloc[f[0]], _ = strconv.ParseFloat(f[1], 64)
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			if vf := strings.Fields(v); len(vf) > 0 {
				if n, err := strconv.ParseFloat(vf[0], 64); err == nil {
					u.Overall[k] = n
				}
			}
		}
	}
	if len(u.Profiles) == 0 || u.Overall["Device unallocated"] == 0 {
		t.Fatalf("cannot parse btrfs filesystem usage -b:\n%s", out)
	}
	return u
}

// btrfsDeviceStats is `btrfs device stats`: [/dev/loop0].corruption_errs 1
// -> {"loop0": {"corruption": 1}}.
func btrfsDeviceStats(t testing.TB, mnt string) map[string]map[string]float64 {
	t.Helper()
	out := runCmd(t, "btrfs", "device", "stats", mnt)
	re := regexp.MustCompile(`^\[/dev/([^\]]+)\]\.(\w+)_io_errs\s+(\d+)$|^\[/dev/([^\]]+)\]\.(\w+)_errs\s+(\d+)$`)
	st := map[string]map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			t.Fatalf("btrfs device stats: cannot parse %q", line)
		}
		dev, typ, v := m[1], m[2], m[3]
		if dev == "" {
			dev, typ, v = m[4], m[5], m[6]
		}
		if st[dev] == nil {
			st[dev] = map[string]float64{}
		}
		st[dev][typ], _ = strconv.ParseFloat(v, 64)
	}
	return st
}

// btrfsScrubStatus is `btrfs scrub status -R`: its key: value counters, the
// start (or resume) time and the duration.
func btrfsScrubStatus(t testing.TB, mnt string) (counters map[string]float64, started time.Time, duration time.Duration, status string) {
	t.Helper()
	counters, started, duration, status, err := btrfsScrubStatusErr(t, mnt)
	if err != nil {
		t.Fatal(err)
	}
	return counters, started, duration, status
}

// btrfsScrubStatusErr is btrfsScrubStatus for polling: progs fails with
// EAGAIN while the scrub process holds the lock of its status file.
func btrfsScrubStatusErr(t testing.TB, mnt string) (counters map[string]float64, started time.Time, duration time.Duration, status string, err error) {
	t.Helper()
	out, err := runOutput(nil, "btrfs", "scrub", "status", "-R", mnt)
	if err != nil {
		return nil, time.Time{}, 0, "", err
	}
	counters = map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Scrub started", "Scrub resumed":
			var err error
			started, err = time.ParseInLocation("Mon Jan 2 15:04:05 2006", strings.Join(strings.Fields(v), " "), time.Local)
			if err != nil {
				t.Fatalf("scrub status: %v", err)
			}
		case "Duration":
			var h, m, s int
			if _, err := fmt.Sscanf(v, "%d:%d:%d", &h, &m, &s); err != nil {
				t.Fatalf("scrub status duration %q: %v", v, err)
			}
			duration = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
		case "Status":
			status = v
		default:
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				counters[k] = n
			}
		}
	}
	if started.IsZero() && !strings.Contains(out, "no stats available") {
		t.Fatalf("btrfs scrub status -R: no start time:\n%s", out)
	}
	return counters, started, duration, status, nil
}

// progsSubvol is one line of `btrfs subvolume list -u -q` (and -s for the
// creation time of snapshots).
type progsSubvol struct {
	ID         int
	Path, UUID string
	ParentUUID string // "-" when not a snapshot
	Otime      time.Time
}

func btrfsSubvolumes(t testing.TB, mnt string) []progsSubvol {
	t.Helper()
	var subs []progsSubvol
	byID := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(runCmd(t, "btrfs", "subvolume", "list", "-u", "-q", mnt)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		// ID 256 gen 11 top level 5 parent_uuid - uuid 0e0b... path data
		id, _ := strconv.Atoi(f[1])
		byID[id] = len(subs)
		subs = append(subs, progsSubvol{ID: id, ParentUUID: f[8], UUID: f[10], Path: strings.Join(f[12:], " ")})
	}
	otime := regexp.MustCompile(`^ID (\d+) .* otime (\S+ \S+) `)
	for _, line := range strings.Split(strings.TrimSpace(runCmd(t, "btrfs", "subvolume", "list", "-s", mnt)), "\n") {
		m := otime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		ot, err := time.ParseInLocation("2006-01-02 15:04:05", m[2], time.Local)
		if err != nil {
			t.Fatal(err)
		}
		if i, ok := byID[id]; ok {
			subs[i].Otime = ot
		}
	}
	return subs
}

// btrfsQgroups is `btrfs qgroup show --raw`: 0/<id> -> referenced, exclusive.
func btrfsQgroups(t testing.TB, mnt string) map[string][2]float64 {
	t.Helper()
	q := map[string][2]float64{}
	for _, line := range strings.Split(runCmd(t, "btrfs", "qgroup", "show", "--raw", mnt), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "0/") {
			continue
		}
		r, err1 := strconv.ParseFloat(f[1], 64)
		e, err2 := strconv.ParseFloat(f[2], 64)
		if err1 == nil && err2 == nil {
			q[f[0]] = [2]float64{r, e}
		}
	}
	return q
}

// compareAll checks every figure the exporter gives for fs against
// btrfs-progs, and the ones node_exporter also gives against it. It returns
// the first difference, for eventually (the filesystem commits in the
// background, so both sides are read again until they agree).
func compareAll(t testing.TB, e *Exporter, ne *NodeExporter, fs *Btrfs) error {
	got := e.Scrape(t)
	u := map[string]string{"uuid": fs.UUID}
	val := func(name string, labels map[string]string) (float64, error) {
		all := map[string]string{"uuid": fs.UUID}
		for k, v := range labels {
			all[k] = v
		}
		v, ok := got.Value(name, all)
		if !ok {
			return 0, fmt.Errorf("%s%v: not exactly one series", name, all)
		}
		return v, nil
	}
	if v, err := val("panther_btrfs_info", map[string]string{"label": fs.Label}); err != nil || v != 1 {
		return fmt.Errorf("panther_btrfs_info{label=%q} = %v %v", fs.Label, v, err)
	}

	usage := btrfsUsage(t, fs.Mnt)
	for k, su := range usage.Profiles {
		typ, prof, _ := strings.Cut(k, "/")
		l := map[string]string{"block_group_type": typ, "profile": prof}
		for i, name := range []string{"panther_btrfs_size_bytes", "panther_btrfs_used_bytes"} {
			v, err := val(name, l)
			if err != nil {
				return err
			}
			if v != su[i] {
				return fmt.Errorf("%s%v = %v, btrfs filesystem usage says %v", name, l, v, su[i])
			}
		}
	}
	for name, want := range map[string]float64{
		"panther_btrfs_unallocated_bytes":         usage.Overall["Device unallocated"],
		"panther_btrfs_global_reserve_bytes":      usage.Overall["Global reserve"],
		"panther_btrfs_global_reserve_used_bytes": usage.GlobalRsvUsed,
	} {
		v, err := val(name, nil)
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("%s = %v, btrfs filesystem usage says %v", name, v, want)
		}
	}
	var devSum float64
	for _, m := range got.Series("panther_btrfs_device_size_bytes", u) {
		devSum += MetricValue(m)
	}
	if devSum != usage.Overall["Device size"] {
		return fmt.Errorf("device sizes sum to %v, btrfs filesystem usage says %v", devSum, usage.Overall["Device size"])
	}

	for dev, types := range btrfsDeviceStats(t, fs.Mnt) {
		for typ, want := range types {
			v, err := val("panther_btrfs_device_errors_total", map[string]string{"device": dev, "type": typ})
			if err != nil {
				return err
			}
			if v != want {
				return fmt.Errorf("device errors %s/%s = %v, btrfs device stats says %v", dev, typ, v, want)
			}
		}
	}

	subs := btrfsSubvolumes(t, fs.Mnt)
	if v, err := val("panther_btrfs_subvolumes", nil); err != nil || v != float64(len(subs)) {
		return fmt.Errorf("panther_btrfs_subvolumes = %v (%v), btrfs subvolume list shows %d", v, err, len(subs))
	}
	byUUID := map[string]progsSubvol{}
	for _, s := range subs {
		byUUID[s.UUID] = s
	}
	count, newest := map[string]int{}, map[string]time.Time{}
	for _, s := range subs {
		if s.ParentUUID == "-" {
			count[s.Path] += 0
			continue
		}
		src := byUUID[s.ParentUUID].Path
		count[src]++
		if s.Otime.After(newest[src]) {
			newest[src] = s.Otime
		}
	}
	if n := len(got.Series("panther_btrfs_snapshots", u)); n != len(count) {
		return fmt.Errorf("panther_btrfs_snapshots: %d series, btrfs subvolume list gives %d sources %v", n, len(count), count)
	}
	for src, n := range count {
		l := map[string]string{"subvolume": src}
		v, err := val("panther_btrfs_snapshots", l)
		if err != nil || v != float64(n) {
			return fmt.Errorf("panther_btrfs_snapshots{subvolume=%q} = %v (%v), btrfs subvolume list gives %d", src, v, err, n)
		}
		if n == 0 {
			continue
		}
		ts, err := val("panther_btrfs_snapshot_newest_timestamp_seconds", l)
		if err != nil {
			return err
		}
		if int64(math.Floor(ts)) != newest[src].Unix() {
			return fmt.Errorf("newest snapshot of %s at %v, btrfs subvolume list -s says %v", src, ts, newest[src])
		}
	}

	if len(got.Series("panther_btrfs_quota_referenced_bytes", u)) > 0 {
		q := btrfsQgroups(t, fs.Mnt)
		for _, s := range subs {
			if strings.Contains(s.Path, "/") {
				continue // only subvolumes directly under the top level by default
			}
			want, ok := q[fmt.Sprintf("0/%d", s.ID)]
			if !ok {
				continue
			}
			l := map[string]string{"subvolume": s.Path}
			r, err1 := val("panther_btrfs_quota_referenced_bytes", l)
			x, err2 := val("panther_btrfs_quota_exclusive_bytes", l)
			if err1 != nil || err2 != nil || r != want[0] || x != want[1] {
				return fmt.Errorf("quota of %s = %v/%v (%v %v), btrfs qgroup show says %v", s.Path, r, x, err1, err2, want)
			}
		}
	}

	sc, started, dur, status, err := btrfsScrubStatusErr(t, fs.Mnt)
	if err != nil {
		return err
	}
	if v, err := val("panther_btrfs_scrub_bytes", nil); err != nil || v != sc["data_bytes_scrubbed"]+sc["tree_bytes_scrubbed"] {
		return fmt.Errorf("panther_btrfs_scrub_bytes = %v (%v), btrfs scrub status -R says %v", v, err, sc["data_bytes_scrubbed"]+sc["tree_bytes_scrubbed"])
	}
	for _, k := range []string{"read", "csum", "verify", "super", "uncorrectable", "corrected", "malloc"} {
		v, err := val("panther_btrfs_scrub_errors", map[string]string{"type": k})
		if err != nil || v != sc[k+"_errors"] {
			return fmt.Errorf("panther_btrfs_scrub_errors{type=%q} = %v (%v), btrfs scrub status -R says %v", k, v, err, sc[k+"_errors"])
		}
	}
	if status == "finished" {
		v, err := val("panther_btrfs_scrub_last_finished_timestamp_seconds", nil)
		if want := float64(started.Add(dur).Unix()); err != nil || v != want {
			return fmt.Errorf("scrub finished at %v (%v), btrfs scrub status says %v + %v", v, err, started, dur)
		}
		if v, err := val("panther_btrfs_scrub_running", nil); err != nil || v != 0 {
			return fmt.Errorf("scrub running = %v (%v) after a finished scrub", v, err)
		}
	}

	// node_exporter's figures for the same quantities.
	if ne != nil {
		n := ne.Scrape(t)
		pairs := 0
		for _, m := range n.Series("node_btrfs_size_bytes", u) {
			l := Labels(m)
			for node, ours := range map[string]string{"node_btrfs_size_bytes": "panther_btrfs_size_bytes", "node_btrfs_used_bytes": "panther_btrfs_used_bytes"} {
				nv, ok := n.Value(node, map[string]string{"uuid": fs.UUID, "block_group_type": l["block_group_type"], "mode": l["mode"]})
				v, err := val(ours, map[string]string{"block_group_type": l["block_group_type"], "profile": l["mode"]})
				if !ok || err != nil || nv != v {
					return fmt.Errorf("%s{%s,%s} = %v, node_exporter's %s = %v (%v)", ours, l["block_group_type"], l["mode"], v, node, nv, err)
				}
				pairs++
			}
		}
		var unused float64
		for _, m := range n.Series("node_btrfs_device_unused_bytes", u) {
			unused += MetricValue(m)
		}
		if v, _ := val("panther_btrfs_unallocated_bytes", nil); v != unused {
			return fmt.Errorf("unallocated %v, node_exporter's device_unused_bytes sum to %v", v, unused)
		}
		for _, m := range n.Series("node_btrfs_device_size_bytes", u) {
			v, err := val("panther_btrfs_device_size_bytes", map[string]string{"device": Labels(m)["device"]})
			if err != nil || v != MetricValue(m) {
				return fmt.Errorf("device size %s = %v (%v), node_exporter says %v", Labels(m)["device"], v, err, MetricValue(m))
			}
			pairs++
		}
		for _, m := range n.Series("node_btrfs_device_errors_total", u) {
			l := Labels(m)
			v, err := val("panther_btrfs_device_errors_total", map[string]string{"device": l["device"], "type": l["type"]})
			if err != nil || v != MetricValue(m) {
				return fmt.Errorf("device errors %s/%s = %v (%v), node_exporter says %v", l["device"], l["type"], v, err, MetricValue(m))
			}
			pairs++
		}
		if nv, ok := n.Value("node_btrfs_global_rsv_size_bytes", u); ok {
			if v, _ := val("panther_btrfs_global_reserve_bytes", nil); v != nv {
				return fmt.Errorf("global reserve %v, node_exporter says %v", v, nv)
			}
			pairs++
		}
		if pairs < 6+2+10+1 {
			return fmt.Errorf("only %d figures compared with node_exporter", pairs)
		}
	}
	return nil
}

// TestBtrfs builds a raid1 btrfs over two loop images with subvolumes,
// read-only snapshots, quotas and a scrub, and checks that the exporter
// says what btrfs-progs and node_exporter say; then corrupts one copy of a
// file with dd, scrubs again and checks the errors; then unmounts it.
func TestBtrfs(t *testing.T) {
	serial(t)
	fs := newBtrfs(t)
	fs.Subvolume("data")
	fs.Subvolume("home")
	if err := mkdirAll(fs.Path("srv")); err != nil {
		t.Fatal(err)
	}
	fs.Subvolume("srv/www") // in a directory: its path needs a lookup
	fs.WriteFile("data/file", 8<<20)
	fs.WriteFile("home/notes", 256<<10)
	runCmd(t, "btrfs", "quota", "enable", fs.Mnt)
	runCmd(t, "btrfs", "quota", "rescan", "-w", fs.Mnt)

	// Snapshots at known times: data twice (one second apart so the newest
	// is unambiguous), home once, srv/www never.
	_, first := fs.Snapshot("data", ".snapshots/data/1")
	for time.Now().Unix() == first.Unix() { // next second: creation times print in whole seconds
		time.Sleep(20 * time.Millisecond)
	}
	before, after := fs.Snapshot("data", ".snapshots/data/2")
	fs.Snapshot("home", ".snapshots/home/1")
	fs.Scrub()

	e := startExporter(t, "--collector.disable-defaults", "--collector.btrfs",
		"--collector.btrfs.subvolume-interval=0s")
	ne := startNodeExporter(t, "btrfs")
	eventually(t, 30*time.Second, "exporter agrees with btrfs-progs and node_exporter", func() error {
		return compareAll(t, e, ne, fs)
	})
	f := e.Scrape(t)
	ts, ok := f.Value("panther_btrfs_snapshot_newest_timestamp_seconds", map[string]string{"uuid": fs.UUID, "subvolume": "data"})
	// The kernel stamps otime from the coarse clock, up to a tick behind.
	if !ok || ts < float64(before.UnixNano())/1e9-0.02 || ts > float64(after.UnixNano())/1e9 {
		t.Errorf("newest snapshot of data at %v, taken between %v and %v", ts, before, after)
	}
	if v, ok := f.Value("panther_btrfs_snapshots", map[string]string{"uuid": fs.UUID, "subvolume": "srv/www"}); !ok || v != 0 {
		t.Errorf("snapshots of srv/www = %v %v, want 0", v, ok)
	}
	if v, ok := f.Value("panther_btrfs_quota_referenced_bytes", map[string]string{"uuid": fs.UUID, "subvolume": "data"}); !ok || v < 8<<20 {
		t.Errorf("quota referenced by data = %v %v, want at least the 8 MiB file", v, ok)
	}

	// A new snapshot shows up once the generation moved.
	fs.Snapshot("home", ".snapshots/home/2")
	eventually(t, 30*time.Second, "new snapshot counted", func() error {
		f := e.Scrape(t)
		v, _ := f.Value("panther_btrfs_snapshots", map[string]string{"uuid": fs.UUID, "subvolume": "home"})
		if v != 2 {
			gen, _ := f.Value("panther_btrfs_generation", map[string]string{"uuid": fs.UUID})
			at, _ := f.Value("panther_btrfs_subvolume_scan_timestamp_seconds", map[string]string{"uuid": fs.UUID})
			return fmt.Errorf("snapshots of home = %v, want 2 (generation %v, last walk at %v)", v, gen, at)
		}
		return nil
	})

	// Shrink the filesystem on device 1: unallocated space now counts the
	// filesystem's size on it, not the block device's ("Device slack").
	runCmd(t, "btrfs", "filesystem", "resize", "1:-128M", fs.Mnt)
	eventually(t, 30*time.Second, "exporter agrees with btrfs-progs after a shrink", func() error {
		if u := btrfsUsage(t, fs.Mnt); u.Overall["Device slack"] != 128<<20 {
			return fmt.Errorf("btrfs filesystem usage shows slack %v after the shrink", u.Overall["Device slack"])
		}
		return compareAll(t, e, ne, fs)
	})

	// Corrupt one copy of data/file and scrub: csum errors found and
	// corrected from the mirror, counted on devid 1.
	fs.Corrupt("data/file")
	fs.Scrub()
	sc, _, _, _ := btrfsScrubStatus(t, fs.Mnt)
	if sc["csum_errors"] == 0 || sc["corrected_errors"] == 0 {
		t.Fatalf("scrub after corruption found no errors: %v", sc)
	}
	dev1 := strings.TrimPrefix(fs.Loops[0], "/dev/")
	if st := btrfsDeviceStats(t, fs.Mnt); st[dev1]["corruption"] == 0 {
		t.Fatalf("btrfs device stats shows no corruption on %s: %v", dev1, st)
	}
	eventually(t, 30*time.Second, "exporter agrees with btrfs-progs and node_exporter after corruption", func() error {
		return compareAll(t, e, ne, fs)
	})

	// Unmounted: the filesystem drops out, the scrape still succeeds.
	// Debian's node_exporter 1.5 keeps the mount open after a scrape
	// (`fuser -vm` shows it), which makes umount fail with EBUSY: stop it.
	ne.Stop()
	fs.Unmount()
	eventually(t, 30*time.Second, "unmounted filesystem drops out", func() error {
		f := e.Scrape(t)
		if len(f.Series("panther_btrfs_info", map[string]string{"uuid": fs.UUID})) != 0 {
			return fmt.Errorf("still exported")
		}
		if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": "btrfs"}); !ok || v != 1 {
			return fmt.Errorf("btrfs collector success = %v %v", v, ok)
		}
		return nil
	})
	// Mounted again: back, with its snapshots.
	fs.Mount()
	eventually(t, 30*time.Second, "remounted filesystem is back", func() error {
		return compareAll(t, e, nil, fs)
	})
}

// TestBtrfsScrubRunningAndCancelled slows a scrub down, checks the exporter
// says it runs while `btrfs scrub status` says running, cancels it and
// checks both say it was cancelled (progs: "aborted").
func TestBtrfsScrubRunningAndCancelled(t *testing.T) {
	serial(t)
	fs := newBtrfs(t)
	fs.Subvolume("data")
	fs.WriteFile("data/file", 32<<20)
	fs.Scrub()
	e := startExporter(t, "--collector.disable-defaults", "--collector.btrfs")
	u := map[string]string{"uuid": fs.UUID}
	eventually(t, 20*time.Second, "first scrub exported", func() error {
		return compareAll(t, e, nil, fs)
	})
	fs.SetScrubSpeed(1 << 20)
	t.Cleanup(func() { _ = exec.Command("btrfs", "scrub", "cancel", fs.Mnt).Run() })
	fs.ScrubStart()
	eventually(t, 20*time.Second, "scrub running", func() error {
		// While a scrub runs, btrfs-progs 6.2 has no stats in its file and
		// prints the kernel's live progress: "Time left:" and "ETA:".
		out, err := runOutput(nil, "btrfs", "scrub", "status", fs.Mnt)
		if err != nil {
			return err
		}
		v, ok := e.Scrape(t).Value("panther_btrfs_scrub_running", u)
		if !strings.Contains(out, "Time left:") || !ok || v != 1 {
			return fmt.Errorf("panther_btrfs_scrub_running = %v %v; btrfs scrub status says:\n%s", v, ok, out)
		}
		return nil
	})
	fs.ScrubCancel()
	fs.SetScrubSpeed(0)
	eventually(t, 20*time.Second, "scrub cancelled", func() error {
		_, _, _, status, err := btrfsScrubStatusErr(t, fs.Mnt)
		if err != nil {
			return err
		}
		f := e.Scrape(t)
		r, _ := f.Value("panther_btrfs_scrub_running", u)
		c, _ := f.Value("panther_btrfs_scrub_canceled", u)
		if status != "aborted" || r != 0 || c != 1 {
			return fmt.Errorf("btrfs scrub status says %q; running %v, canceled %v", status, r, c)
		}
		if _, ok := f.Value("panther_btrfs_scrub_last_finished_timestamp_seconds", u); ok {
			return fmt.Errorf("a cancelled scrub has a finish time")
		}
		return compareAll(t, e, nil, fs)
	})
}

// TestBtrfsWithoutCapSysAdmin runs the exporter without CAP_SYS_ADMIN (as
// the README says it can run): subvolume figures are missing and
// panther_btrfs_subvolume_scan_success is 0, everything else is there and
// the collector succeeds.
func TestBtrfsWithoutCapSysAdmin(t *testing.T) {
	serial(t)
	setpriv := requireTool(t, "setpriv")
	fs := newBtrfs(t)
	fs.Subvolume("data")
	fs.Snapshot("data", ".snapshots/data/1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProcess(t, nil, setpriv, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--",
		binary(t), "--web.listen-address="+addr, "--collector.disable-defaults", "--collector.btrfs")
	e := &Exporter{Process: p, Addr: addr, URL: "http://" + addr}
	u := map[string]string{"uuid": fs.UUID}
	eventually(t, 20*time.Second, "exporter without CAP_SYS_ADMIN answers", func() error {
		if p.Exited() {
			t.Fatalf("exporter exited: %s", p.Output())
		}
		_, err := e.Get("/metrics")
		return err
	})
	eventually(t, 20*time.Second, "figures without CAP_SYS_ADMIN", func() error {
		f := e.Scrape(t)
		if v, ok := f.Value("panther_btrfs_subvolume_scan_success", u); !ok || v != 0 {
			return fmt.Errorf("scan success = %v %v, want 0", v, ok)
		}
		if n := len(f.Series("panther_btrfs_snapshots", u)); n != 0 {
			return fmt.Errorf("%d snapshot series without CAP_SYS_ADMIN", n)
		}
		if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": "btrfs"}); !ok || v != 1 {
			return fmt.Errorf("collector success = %v %v", v, ok)
		}
		usage := btrfsUsage(t, fs.Mnt)
		if v, ok := f.Value("panther_btrfs_unallocated_bytes", u); !ok || v != usage.Overall["Device unallocated"] {
			return fmt.Errorf("unallocated = %v, btrfs filesystem usage says %v", v, usage.Overall["Device unallocated"])
		}
		if n := len(f.Series("panther_btrfs_device_errors_total", u)); n != 10 {
			return fmt.Errorf("%d device error series, want 10", n)
		}
		return nil
	})
	if !strings.Contains(p.Output(), "CAP_SYS_ADMIN") {
		t.Errorf("the reason is not logged:\n%s", p.Output())
	}
}

// copyBtrfsSysfs copies /sys/fs/btrfs/<uuid> (its readable files, and
// devices/<name>/size) into a fresh --path.sysfs tree, leaving out the
// files skip names.
func copyBtrfsSysfs(t testing.TB, uuid string, skip func(rel string) bool) string {
	t.Helper()
	src := filepath.Join("/sys/fs/btrfs", uuid)
	sys := t.TempDir()
	dst := filepath.Join(sys, "fs", "btrfs", uuid)
	err := filepath.WalkDir(src, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "bdi" || skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if d.Type()&iofs.ModeSymlink != 0 && filepath.Dir(rel) == "devices" {
			b, err := os.ReadFile(filepath.Join(p, "size"))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dst, rel), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel, "size"), b, 0o644)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil // write-only attributes
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

// TestBtrfsDeviceErrorsByIoctl hides devinfo/<id>/error_stats, as kernels
// before 5.14 have it, and checks that the counters, read then with
// BTRFS_IOC_GET_DEV_STATS, still equal `btrfs device stats` after a
// corruption was found.
func TestBtrfsDeviceErrorsByIoctl(t *testing.T) {
	serial(t)
	fs := newBtrfs(t)
	fs.Subvolume("data")
	fs.WriteFile("data/file", 4<<20)
	fs.Corrupt("data/file")
	fs.Scrub()
	stats := btrfsDeviceStats(t, fs.Mnt)
	dev1 := strings.TrimPrefix(fs.Loops[0], "/dev/")
	if stats[dev1]["corruption"] == 0 {
		t.Fatalf("no corruption counted on %s: %v", dev1, stats)
	}
	sys := copyBtrfsSysfs(t, fs.UUID, func(rel string) bool { return filepath.Base(rel) == "error_stats" })
	e := startExporter(t, "--collector.disable-defaults", "--collector.btrfs", "--path.sysfs="+sys)
	f := e.Scrape(t)
	if v, ok := f.Value("panther_scrape_collector_success", map[string]string{"collector": "btrfs"}); !ok || v != 1 {
		t.Fatalf("collector success = %v %v:\n%s", v, ok, e.Output())
	}
	n := 0
	for dev, types := range stats {
		for typ, want := range types {
			v, ok := f.Value("panther_btrfs_device_errors_total", map[string]string{"uuid": fs.UUID, "device": dev, "type": typ})
			if !ok || v != want {
				t.Errorf("device errors %s/%s = %v %v, btrfs device stats says %v", dev, typ, v, ok, want)
			}
			n++
		}
	}
	if n != 10 {
		t.Errorf("btrfs device stats gave %d counters, want 10", n)
	}
}

// TestBtrfsCorruptedFault runs the helpers the rules and dashboards tests
// use (Populate, CorruptAndScrub) and checks the exporter shows the fault
// as btrfs-progs does.
func TestBtrfsCorruptedFault(t *testing.T) {
	serial(t)
	fs := newBtrfs(t)
	fs.Populate(3)
	fs.CorruptAndScrub()
	e := startExporter(t, "--collector.disable-defaults", "--collector.btrfs")
	eventually(t, 20*time.Second, "exporter agrees with btrfs-progs", func() error {
		return compareAll(t, e, nil, fs)
	})
	f := e.Scrape(t)
	u := map[string]string{"uuid": fs.UUID}
	if v, _ := f.Value("panther_btrfs_scrub_errors", map[string]string{"uuid": fs.UUID, "type": "csum"}); v == 0 {
		t.Error("no csum errors after CorruptAndScrub")
	}
	if v, _ := f.Value("panther_btrfs_snapshots", map[string]string{"uuid": fs.UUID, "subvolume": "persist"}); v != 3 {
		t.Errorf("snapshots of persist = %v, want 3", v)
	}
	if n := len(f.Series("panther_btrfs_quota_referenced_bytes", u)); n != 3 {
		t.Errorf("%d quota series, want root, persist, nix", n)
	}
}
