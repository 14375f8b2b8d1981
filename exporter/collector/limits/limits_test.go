package limits

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/samples"
)

func run(t *testing.T, proc string) (samples.Set, error) {
	t.Helper()
	return samples.Collect(t, &Limits{cfg: collector.Config{ProcPath: proc}})
}

// copyProc copies the server fixture to a temp dir that a test may break.
func copyProc(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", "testdata/server/proc/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// The server fixture: the figures `cat /proc/sys/fs/file-nr`,
// `sysctl net.netfilter.nf_conntrack_{count,max}`, `nstat -a` (TcpOutSegs,
// TcpRetransSegs, TcpExtListenOverflows, TcpExtListenDrops) show for it.
func TestServer(t *testing.T) {
	s, err := run(t, "testdata/server/proc")
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 9184, "panther_filefd_allocated")
	s.Want(t, 9223372036854775807, "panther_filefd_maximum")
	s.Want(t, 2187, "panther_conntrack_entries")
	s.Want(t, 262144, "panther_conntrack_limit")
	s.Want(t, 918273645, "panther_tcp_out_segments_total")
	s.Want(t, 1234567, "panther_tcp_retransmitted_segments_total")
	s.Want(t, 4711, "panther_tcp_listen_overflows_total")
	s.Want(t, 4713, "panther_tcp_listen_drops_total")
}

// Without nf_conntrack there is no table: nothing to report, no error.
func TestNoConntrack(t *testing.T) {
	proc := copyProc(t)
	if err := os.RemoveAll(filepath.Join(proc, "sys/net/netfilter")); err != nil {
		t.Fatal(err)
	}
	s, err := run(t, proc)
	if err != nil {
		t.Fatal(err)
	}
	s.Absent(t, "panther_conntrack_entries")
	s.Absent(t, "panther_conntrack_limit")
	s.Want(t, 9184, "panther_filefd_allocated")
}

// A broken source is named in the error and the others are still sent; the
// error never quotes the file's bytes.
func TestBrokenSources(t *testing.T) {
	for _, tc := range []struct {
		file, content, wantErr, gone, kept string
	}{
		{"sys/fs/file-nr", "9184\tsecret\n", "file-nr: 2 fields, want 3", "panther_filefd_allocated", "panther_conntrack_entries"},
		{"sys/fs/file-nr", "9184\t0\tsecret\n", "maximum handles: not a number", "panther_filefd_maximum", "panther_conntrack_entries"},
		{"sys/net/netfilter/nf_conntrack_max", "secret\n", "nf_conntrack_max: not a number", "panther_conntrack_limit", "panther_filefd_allocated"},
		{"net/snmp", "Tcp: RtoAlgorithm OutSegs\nTcp: 1 secret\n", "net/snmp: line 2: Tcp OutSegs: not a number", "panther_tcp_out_segments_total", "panther_tcp_listen_overflows_total"},
		{"net/snmp", "Tcp: RtoAlgorithm OutSegs\n", "net/snmp: 1 lines", "panther_tcp_retransmitted_segments_total", "panther_tcp_listen_drops_total"},
		{"net/netstat", "TcpExt: ListenOverflows\nIpExt: 1\n", "net/netstat: line 2: values do not match", "panther_tcp_listen_overflows_total", "panther_tcp_retransmitted_segments_total"},
	} {
		t.Run(tc.file+"/"+tc.wantErr, func(t *testing.T) {
			proc := copyProc(t)
			if err := os.WriteFile(filepath.Join(proc, tc.file), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := run(t, proc)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes the file: %q", err)
			}
			if tc.gone != "" {
				s.Absent(t, tc.gone)
			}
			if tc.kept != "" && len(s[tc.kept]) != 1 {
				t.Errorf("%s lost with a broken %s", tc.kept, tc.file)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	proc := copyProc(t)
	if err := os.Remove(filepath.Join(proc, "net/netstat")); err != nil {
		t.Fatal(err)
	}
	s, err := run(t, proc)
	if err == nil || !strings.Contains(err.Error(), "net/netstat") {
		t.Errorf("error %v, want one naming net/netstat", err)
	}
	s.Want(t, 1234567, "panther_tcp_retransmitted_segments_total")
}

func FuzzParseFileNr(f *testing.F) {
	b, err := os.ReadFile("testdata/server/proc/sys/fs/file-nr")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("1 0 -1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, m, err := ParseFileNr(b)
		if err != nil && (a != 0 || m != 0) {
			t.Fatal("values with an error")
		}
	})
}

func FuzzParseCounters(f *testing.F) {
	for _, p := range []string{"testdata/server/proc/net/snmp", "testdata/server/proc/net/netstat"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Tcp: A\nTcp: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCounters(b)
		if err == nil && len(c) == 0 {
			t.Fatal("no error and no counters")
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatal("error spans lines")
		}
		// Only Tcp and TcpExt, as a scrape parses: the same figures for
		// those whenever the whole file parses.
		some, serr := ParseCounters(b, "Tcp", "TcpExt")
		if serr != nil && strings.Contains(serr.Error(), "\n") {
			t.Fatal("error spans lines")
		}
		if err == nil {
			if serr != nil {
				t.Fatalf("whole file parses, Tcp and TcpExt alone fail: %v", serr)
			}
			for _, p := range []string{"Tcp", "TcpExt"} {
				if !reflect.DeepEqual(c[p], some[p]) {
					t.Fatalf("%s: %v parsed alone, %v with the rest", p, some[p], c[p])
				}
			}
		}
	})
}
