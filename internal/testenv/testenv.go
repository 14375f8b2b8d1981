// Package testenv holds the one rule for a test whose prerequisite (a tool,
// root, a kernel feature) is missing: with CI=true it fails, elsewhere it is
// skipped. The e2e and nixos tests use it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where nothing may be
// skipped for a missing prerequisite.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require fails (in CI) or skips (elsewhere) the test when ok is false;
// the message says what is missing.
func Require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing prerequisite (CI=true): %s", msg)
	}
	t.Skipf("missing prerequisite: %s", msg)
}

// Tool returns the path of a program on PATH, or fails/skips without it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, "%s not on PATH", name)
	return p
}

// ToolOrEnv returns $env when it is set, else the first of names found on
// PATH; without either it fails/skips.
func ToolOrEnv(t testing.TB, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Require(t, false, "none of %v on PATH (or set %s)", names, env)
	return ""
}

// Root fails/skips unless the test runs as root.
func Root(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "the test needs root")
}
