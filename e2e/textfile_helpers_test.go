//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// textfileJobScript is a batch job as the README shows it: each round it
// writes its metrics to a temporary file in the textfile directory and
// renames it into place, so a scrape never sees half a file. Arguments: the
// directory, the job name, the pause between rounds. Each round writes
// <name>_runs_total (the round number), <name>_last_success_timestamp_seconds,
// <name>_written_bytes{volume="home"} (round x 4096), 200 series of
// <name>_item{n} (the round number; they make the file big enough that a
// non-atomic write would be caught half-way) and textfile_stale_after_seconds
// 3600.
const textfileJobScript = `#!/usr/bin/env bash
set -euo pipefail
dir=$1 name=$2 every=$3
runs=0
while :; do
  runs=$((runs + 1))
  tmp=$(mktemp "$dir/.$name.prom.XXXXXX")
  {
    echo "# HELP ${name}_runs_total Runs of the ${name} job."
    echo "# TYPE ${name}_runs_total counter"
    echo "${name}_runs_total $runs"
    echo "# HELP ${name}_last_success_timestamp_seconds When the ${name} job last succeeded."
    echo "# TYPE ${name}_last_success_timestamp_seconds gauge"
    echo "${name}_last_success_timestamp_seconds $(date +%s)"
    echo "# HELP ${name}_written_bytes Bytes the last run wrote."
    echo "# TYPE ${name}_written_bytes gauge"
    echo "${name}_written_bytes{volume=\"home\"} $((runs * 4096))"
    echo "# HELP ${name}_item Items handled by the last run."
    echo "# TYPE ${name}_item gauge"
    for i in $(seq 200); do echo "${name}_item{n=\"$i\"} $runs"; done
    echo "textfile_stale_after_seconds 3600"
  } > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dir/$name.prom"
  sleep "$every"
done
`

// TextfileJob is a running textfileJobScript.
type TextfileJob struct {
	*Process
	Name string
	File string // the .prom file it rewrites
}

// StartTextfileJob starts a bash batch job that rewrites dir/<name>.prom by
// temp file and rename every `every`, until the test ends (see
// textfileJobScript for what it writes). The DogStatsD half of the textfile
// e2e reuses it.
func StartTextfileJob(t testing.TB, dir, name string, every time.Duration) *TextfileJob {
	t.Helper()
	bash := requireTool(t, "bash")
	script := filepath.Join(t.TempDir(), name+"-job.sh")
	if err := os.WriteFile(script, []byte(textfileJobScript), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, nil, bash, script, dir, name, fmt.Sprintf("%.3f", every.Seconds()))
	return &TextfileJob{Process: p, Name: name, File: filepath.Join(dir, name+".prom")}
}

// WriteTextfile writes content to dir/name as a job must: a temporary file
// in the same directory, renamed into place.
func WriteTextfile(t testing.TB, dir, name, content string) string {
	t.Helper()
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		t.Fatal(err)
	}
	tmp.Chmod(0o644)
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}
