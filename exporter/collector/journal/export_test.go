package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector"
)

// testdata/journalctl.export is what Debian's journalctl 252 printed with
// --output=export --output-fields=MESSAGE,PRIORITY,_SYSTEMD_UNIT,_TRANSPORT
// for a journal file that systemd-journal-remote wrote: kernel lines of
// every class and the lines around them, service errors, a binary
// (multi-line, non-UTF-8) MESSAGE, an entry without a unit and one
// without a priority.
func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/journalctl.export")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type plainEntry struct {
	cursor, unit, transport, message string
	priority                         int
}

func readAll(t testing.TB, in []byte) ([]plainEntry, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(in))
	var out []plainEntry
	var e Entry
	for {
		err := r.Next(&e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, plainEntry{string(e.Cursor), string(e.Unit), string(e.Transport), string(e.Message), e.Priority})
	}
}

func TestReaderFixture(t *testing.T) {
	got, err := readAll(t, readFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 21 {
		t.Fatalf("read %d entries, want 21", len(got))
	}
	for i, e := range got {
		if !strings.HasPrefix(e.cursor, "s=") {
			t.Errorf("entry %d: cursor %q", i, e.cursor)
		}
	}
	if e := got[3]; e.transport != "kernel" || e.priority != 3 || !strings.HasPrefix(e.message, "Out of memory: Killed process 1234 (stress-ng)") {
		t.Errorf("entry 3 = %+v", e)
	}
	if e := got[15]; e.unit != "nginx.service" || e.priority != 2 {
		t.Errorf("entry 15 = %+v", e)
	}
	if e := got[18]; e.message != "multi\nline \xff message" || e.unit != "app.service" {
		t.Errorf("binary entry = %+v", e)
	}
	if e := got[20]; e.priority != -1 || e.message != "no priority" {
		t.Errorf("entry without priority = %+v", e)
	}
}

func TestReaderBoundsLongFields(t *testing.T) {
	long := strings.Repeat("A", 1<<20)
	var in bytes.Buffer
	in.WriteString("__CURSOR=c1\nPRIORITY=3\nMESSAGE=" + long + "\n_SYSTEMD_UNIT=a.service\n\n")
	in.WriteString("__CURSOR=c2\nMESSAGE\n")
	binary.Write(&in, binary.LittleEndian, uint64(len(long)))
	in.WriteString(long + "\n_SYSTEMD_UNIT=b.service\n\n")
	got, err := readAll(t, in.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	for i, e := range got {
		if len(e.message) != maxMessage {
			t.Errorf("entry %d: message of %d bytes kept, want %d", i, len(e.message), maxMessage)
		}
	}
	if got[0].unit != "a.service" || got[1].unit != "b.service" || got[1].cursor != "c2" {
		t.Errorf("fields after a long one lost: %+v %+v", got[0].unit, got[1].unit)
	}
}

func TestReaderErrors(t *testing.T) {
	secret := "hunter2-secret"
	var huge bytes.Buffer
	huge.WriteString("__CURSOR=c\nMESSAGE\n")
	binary.Write(&huge, binary.LittleEndian, uint64(1)<<40)
	huge.WriteString(secret)
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"truncated entry", "__CURSOR=c\nMESSAGE=" + secret, io.ErrUnexpectedEOF},
		{"entry without its blank line", "__CURSOR=c\nMESSAGE=" + secret + "\n", io.ErrUnexpectedEOF},
		{"field without a name", "__CURSOR=c\n=" + secret + "\n\n", ErrFormat},
		{"binary size beyond the journal's", huge.String(), ErrFormat},
		{"binary field cut short", "__CURSOR=c\nMESSAGE\n\x20\x00\x00\x00\x00\x00\x00\x00" + secret, io.ErrUnexpectedEOF},
		{"binary field without its newline", "__CURSOR=c\nMESSAGE\n\x02\x00\x00\x00\x00\x00\x00\x00ab" + secret + "\n\n", ErrFormat},
	}
	for _, c := range cases {
		_, err := readAll(t, []byte(c.in))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error quotes the input: %v", c.name, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte("__CURSOR=c\nMESSAGE\n\x05\x00\x00\x00\x00\x00\x00\x00ab\ncd\n\n"))
	f.Add([]byte("__CURSOR=c\nMESSAGE=x\n\n\n\n__CURSOR=d\nPRIORITY=9\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var e Entry
		for range 10000 {
			err := r.Next(&e)
			if err == nil {
				if len(e.Message) > maxMessage || len(e.Cursor) > maxShort || len(e.Unit) > maxShort {
					t.Fatalf("kept more than the bounds: message %d cursor %d unit %d", len(e.Message), len(e.Cursor), len(e.Unit))
				}
				if e.Priority < -1 || e.Priority > 7 {
					t.Fatalf("priority %d", e.Priority)
				}
				continue
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error of an unknown kind: %v", err)
			}
			// The error names the line and the kind, never input bytes:
			// its text after the line number is one of the fixed phrases.
			msg := err.Error()
			i := strings.Index(msg, ": ")
			j := strings.Index(msg[i+2:], ": ")
			what := msg[i+2+j+2:]
			if !strings.HasPrefix(what, "binary field") && what != "field without a name" &&
				what != "field name longer than 64 KiB" {
				t.Fatalf("unexpected error text %q", msg)
			}
			return
		}
	})
}

// BenchmarkReadAndCount parses journalctl's export output and counts each
// entry as the collector does: the collector's own CPU per entry, without
// journalctl (e2e/bench/journal.sh measures both on a growing journal).
func BenchmarkReadAndCount(b *testing.B) {
	one := readFixture(b)
	in := bytes.Repeat(one, 50) // 1,050 entries
	j, err := New(collector.Config{}, Options{MaxUnits: 50})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	entries := 0
	for b.Loop() {
		r := NewReader(bytes.NewReader(in))
		var e Entry
		for r.Next(&e) == nil {
			j.handle(&e)
			entries++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(entries), "ns/entry")
}
