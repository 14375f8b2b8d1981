package textfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchDir writes files *.prom files of samples samples each: gauges and
// counters with two labels, the shape batch jobs write.
func benchDir(b *testing.B, files, samples int) string {
	b.Helper()
	dir := b.TempDir()
	for f := range files {
		var s strings.Builder
		for fam := range 4 {
			typ := []string{"gauge", "counter", "gauge", "untyped"}[fam]
			n := fmt.Sprintf("job%d_metric%d", f, fam)
			fmt.Fprintf(&s, "# HELP %s Metric %d of job %d.\n# TYPE %s %s\n", n, fam, f, n, typ)
			for i := range samples / 4 {
				fmt.Fprintf(&s, "%s{volume=\"vol%d\",stage=\"s%d\"} %d.5\n", n, i, i%7, i*1000+f)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("job%02d.prom", f)), []byte(s.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func benchUpdate(b *testing.B, cold bool) {
	dir := benchDir(b, 50, 200)
	c := newTextfile(b, nil, dir)
	if got := gather(b, c); len(got) != 50*200+3*50 {
		b.Fatalf("%d samples, want %d", len(got), 50*200+3*50)
	}
	ch := make(chan prometheus.Metric, 64)
	go func() {
		for range ch {
		}
	}()
	defer close(ch)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if cold {
			// Forget every file: all 50 are read and parsed again.
			c.files = map[string]*fileState{}
			c.last = nil
		}
		if err := c.Update(context.Background(), ch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate50x200Cold parses all 50 files of 200 samples (every file
// changed since the last scrape).
func BenchmarkUpdate50x200Cold(b *testing.B) { benchUpdate(b, true) }

// BenchmarkUpdate50x200Warm is a scrape where no file changed.
func BenchmarkUpdate50x200Warm(b *testing.B) { benchUpdate(b, false) }
