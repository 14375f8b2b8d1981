package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for a test to see whether Require fails or skips it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}

// Fatalf and Skipf end the goroutine, as testing's do.
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...); runtime.Goexit() }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...); runtime.Goexit() }

// run calls fn with a fresh recorder in a goroutine of its own.
func run(t *testing.T, fn func(r *recorder)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func TestRequire(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := run(t, func(r *recorder) { Require(r, true, "nothing") })
		if r.fatal != "" || r.skip != "" {
			t.Errorf("CI=%q: a met prerequisite failed or skipped: %+v", ci, r)
		}
		r = run(t, func(r *recorder) { Tool(r, "surely-no-such-program-here") })
		if ci == "true" && (r.fatal == "" || r.skip != "") {
			t.Errorf("CI=true: a missing tool did not fail: %+v", r)
		}
		if ci == "" && (r.skip == "" || r.fatal != "") {
			t.Errorf("outside CI: a missing tool was not skipped: %+v", r)
		}
		if msg := r.fatal + r.skip; msg != "" && !strings.Contains(msg, "surely-no-such-program-here not on PATH") {
			t.Errorf("message does not name the tool: %q", msg)
		}
	}
}
