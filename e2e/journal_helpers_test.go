//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// journalRemote is Debian's systemd-journal-remote, which writes real
// journal files from export format on stdin (no journald runs here).
const journalRemote = "/lib/systemd/systemd-journal-remote"

// journalUpload is Debian's systemd-journal-upload, the shipper.
const journalUpload = "/lib/systemd/systemd-journal-upload"

func requireFile(t testing.TB, path string) string {
	t.Helper()
	_, err := os.Stat(path)
	require(t, err == nil, "%s missing (Debian package systemd-journal-remote)", path)
	return path
}

// Journal is a directory of real journal files that the test appends to
// through one long-running systemd-journal-remote, as journald would.
type Journal struct {
	Dir   string
	Host  string
	t     testing.TB
	mu    sync.Mutex
	in    io.WriteCloser
	proc  *Process
	boot  string
	mono  int64
	seq   int
	start time.Time
}

func newJournal(t testing.TB, host string) *Journal {
	t.Helper()
	return newJournalIn(t, host, t.TempDir())
}

// newJournalIn writes the journal files into dir, which the caller made
// (with the owner, group and mode the test needs).
func newJournalIn(t testing.TB, host, dir string) *Journal {
	t.Helper()
	requireFile(t, journalRemote)
	requireTool(t, "journalctl")
	j := &Journal{Dir: dir, Host: host, t: t, boot: randomHex(t), start: time.Now()}
	j.proc = &Process{Log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd := exec.Command(journalRemote, "--output="+filepath.Join(j.Dir, "system.journal"), "--split-mode=none", "-")
	w := lockedWriter{j.proc.mu, j.proc.Log}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", journalRemote, err)
	}
	j.in, j.proc.Cmd = in, cmd
	go func() { cmd.Wait(); close(j.proc.done) }()
	t.Cleanup(func() {
		j.in.Close()
		select {
		case <-j.proc.done:
		case <-time.After(10 * time.Second):
			j.proc.Kill()
		}
		if t.Failed() {
			t.Logf("--- output of systemd-journal-remote:\n%s", j.proc.Output())
		}
	})
	return j
}

func randomHex(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Reboot starts a new boot: a new _BOOT_ID, monotonic time from zero.
func (j *Journal) Reboot() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.boot, j.mono, j.start = randomHex(j.t), 0, time.Now()
}

// JEntry is one entry to write: fields beyond the trusted ones the
// journal adds (time, boot, host).
type JEntry map[string]string

// Kernel is a kernel message as journald stores it (_TRANSPORT=kernel).
func Kernel(priority int, msg string) JEntry {
	return JEntry{"_TRANSPORT": "kernel", "PRIORITY": fmt.Sprint(priority), "SYSLOG_IDENTIFIER": "kernel",
		"SYSLOG_FACILITY": "0", "MESSAGE": msg}
}

// Service is a message of a systemd unit's process.
func Service(unit string, priority int, msg string) JEntry {
	return JEntry{"_TRANSPORT": "journal", "PRIORITY": fmt.Sprint(priority), "_SYSTEMD_UNIT": unit,
		"SYSLOG_IDENTIFIER": strings.TrimSuffix(unit, ".service"), "_PID": "812", "MESSAGE": msg}
}

// Write appends entries, each stamped with the time of writing, a
// growing monotonic time and E2E_SEQ (the running number of the entry in
// this journal). It returns the first and last E2E_SEQ written.
func (j *Journal) Write(entries ...JEntry) (first, last int) {
	j.t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	var b bytes.Buffer
	first = j.seq + 1
	for _, e := range entries {
		j.seq++
		j.mono += 1000
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n_HOSTNAME=%s\nE2E_SEQ=%d\n",
			time.Now().UnixMicro(), time.Since(j.start).Microseconds()+j.mono, j.boot, j.Host, j.seq)
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s\n", k, e[k])
		}
		b.WriteByte('\n')
	}
	if _, err := j.in.Write(b.Bytes()); err != nil {
		j.t.Fatalf("write to systemd-journal-remote: %v\n%s", err, j.proc.Output())
	}
	return first, j.seq
}

// Entries counts the entries journalctl reads from the directory.
func (j *Journal) Entries(t testing.TB) int {
	t.Helper()
	cmd := exec.Command("journalctl", "--directory="+j.Dir, "--output=cat", "--output-fields=E2E_SEQ")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("journalctl: %v: %s", err, stderr.String())
	}
	return bytes.Count(out, []byte("\n"))
}

// VictoriaLogs is a real victoria-logs on a fixed loopback address and data
// directory, so that it can be stopped and started again.
type VictoriaLogs struct {
	*Process
	Addr, URL, Dir string
	t              testing.TB
}

func startVictoriaLogs(t testing.TB) *VictoriaLogs {
	t.Helper()
	requireTool(t, "victoria-logs")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v := &VictoriaLogs{Addr: addr, URL: "http://" + addr, Dir: t.TempDir(), t: t}
	v.Start()
	return v
}

// Start starts it (again) and waits until it answers /health.
func (v *VictoriaLogs) Start() {
	v.t.Helper()
	v.Process = startProcess(v.t, nil, requireTool(v.t, "victoria-logs"),
		"-storageDataPath="+v.Dir, "-httpListenAddr="+v.Addr, "-loggerLevel=WARN")
	eventually(v.t, 30*time.Second, "victoria-logs healthy", func() error {
		if v.Exited() {
			v.t.Fatalf("victoria-logs exited: %s", v.Output())
		}
		resp, err := http.Get(v.URL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
}

// Query runs a LogsQL query over the HTTP API and returns the entries.
func (v *VictoriaLogs) Query(q string) ([]map[string]string, error) {
	resp, err := http.PostForm(v.URL+"/select/logsql/query", url.Values{"query": {q}, "limit": {"100000"}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("query %q: %s: %s", q, resp.Status, b)
	}
	var out []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("query %q: line %q: %v", q, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// Uploader is systemd-journal-upload shipping a journal directory to
// VictoriaLogs' journald endpoint, started again whenever it exits, as
// its systemd unit does (Restart=on-failure; the NixOS module sets
// RestartSec=10s and no start limit so that a long outage never leaves the
// unit failed; here RestartSec is 1s). The URL carries host and role as
// VictoriaLogs extra fields exactly as the NixOS module builds it.
type Uploader struct {
	t        testing.TB
	args     []string
	mu       sync.Mutex
	cur      *Process
	stop     chan struct{}
	done     chan struct{}
	restarts int
}

// uploadURL is the URL the NixOS module gives systemd-journal-upload:
// journal-upload appends "/upload" to any URL, so the query ends in an
// empty parameter that swallows it.
func uploadURL(base, host, role string) string {
	return fmt.Sprintf("%s/insert/journald/upload?extra_fields=host=%s,role=%s&_=", base, host, role)
}

func startUploader(t testing.TB, j *Journal, v *VictoriaLogs, role string) *Uploader {
	t.Helper()
	requireFile(t, journalUpload)
	u := &Uploader{t: t, stop: make(chan struct{}), done: make(chan struct{}),
		args: []string{"--url=" + uploadURL(v.URL, j.Host, role), "--directory=" + j.Dir,
			"--save-state=" + filepath.Join(t.TempDir(), "upload.state")}}
	go u.supervise()
	t.Cleanup(func() {
		close(u.stop)
		<-u.done
	})
	return u
}

func (u *Uploader) supervise() {
	defer close(u.done)
	for {
		p := &Process{Log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
		p.Cmd = exec.Command(journalUpload, u.args...)
		w := lockedWriter{p.mu, p.Log}
		p.Cmd.Stdout, p.Cmd.Stderr = w, w
		p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.Cmd.Start(); err != nil {
			u.t.Errorf("start %s: %v", journalUpload, err)
			return
		}
		go func() { p.Cmd.Wait(); close(p.done) }()
		u.mu.Lock()
		u.cur = p
		u.mu.Unlock()
		select {
		case <-u.stop:
			p.Stop()
			return
		case <-p.done:
		}
		u.mu.Lock()
		u.restarts++
		u.mu.Unlock()
		select {
		case <-u.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// Restarts says how often the shipper exited and was started again.
func (u *Uploader) Restarts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.restarts
}

// Output is what the current run of the shipper printed.
func (u *Uploader) Output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cur == nil {
		return ""
	}
	return u.cur.Output()
}
