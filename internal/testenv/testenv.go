// Package testenv holds the one rule for a test whose prerequisite (a tool,
// root, a kernel feature) is missing: with CI=true it fails, elsewhere it is
// skipped. The e2e and nixos tests use it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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

var (
	nixpkgsLibOnce sync.Once
	nixpkgsLibDir  string
	nixpkgsLibErr  error
)

// NixpkgsLib returns a directory holding nixpkgs' lib/ (lib.evalModules and
// the module system), for evaluating the NixOS modules as NixOS does. It is
// $PANTHER_NIXPKGS_LIB (such a directory), or the tarball in
// ../shared/nixpkgs-lib beside the repository (repoRoot), extracted once
// per test process. Without either the test fails in CI and is skipped
// elsewhere, saying which file it looked for.
func NixpkgsLib(t testing.TB, repoRoot string) string {
	t.Helper()
	if d := os.Getenv("PANTHER_NIXPKGS_LIB"); d != "" {
		_, err := os.Stat(filepath.Join(d, "lib", "default.nix"))
		Require(t, err == nil, "PANTHER_NIXPKGS_LIB=%s holds no lib/default.nix", d)
		return d
	}
	shared := filepath.Join(repoRoot, "..", "shared", "nixpkgs-lib")
	tarballs, _ := filepath.Glob(filepath.Join(shared, "nixpkgs-lib-*.tar.gz"))
	Require(t, len(tarballs) == 1, "nixpkgs' lib: no single %s/nixpkgs-lib-*.tar.gz (the NixOS module tests evaluate the modules with it; set PANTHER_NIXPKGS_LIB to a directory holding lib/ instead)", shared)
	nixpkgsLibOnce.Do(func() {
		nixpkgsLibDir, nixpkgsLibErr = os.MkdirTemp("", "panther-nixpkgs-lib")
		if nixpkgsLibErr != nil {
			return
		}
		out, err := exec.Command("tar", "-xzf", tarballs[0], "-C", nixpkgsLibDir).CombinedOutput()
		if err != nil {
			nixpkgsLibErr = fmt.Errorf("tar -xzf %s: %v\n%s", tarballs[0], err, out)
			return
		}
		if _, err := os.Stat(filepath.Join(nixpkgsLibDir, "lib", "default.nix")); err != nil {
			nixpkgsLibErr = fmt.Errorf("%s has no lib/default.nix: %v", tarballs[0], err)
		}
	})
	if nixpkgsLibErr != nil {
		t.Fatal(nixpkgsLibErr)
	}
	return nixpkgsLibDir
}
