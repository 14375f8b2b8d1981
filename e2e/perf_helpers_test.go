//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// PerfRoot feeds the units collector and the Nix store figures on this
// machine: a copy of the units collector's NixOS cgroup v2 fixture (this
// machine's cgroups are hybrid, so no v2 tree can be made here) for
// --path.sysfs, and a rootfs holding a real Nix store made by Debian's
// nix-bin, with its database, a registered system closure behind
// /run/current-system, a nix-store --optimise, and one nix-collect-garbage
// run through the NixOS module's wrapper (nixos/panther-nix-gc.sh).
type PerfRoot struct {
	Sys  string // for --path.sysfs
	Root string // for --path.rootfs
}

// stdoutOf runs a command and returns its stdout; stderr (Debian's nix
// warns about the missing nixbld group) is only shown on failure.
func stdoutOf(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func newPerfRoot(t testing.TB) *PerfRoot {
	t.Helper()
	p := &PerfRoot{Sys: filepath.Join(t.TempDir(), "sys"), Root: t.TempDir()}
	if err := os.CopyFS(p.Sys, os.DirFS("../exporter/collector/units/testdata/nixos/sys")); err != nil {
		t.Fatal(err)
	}
	nixStore := requireTool(t, "nix-store")
	src := t.TempDir()
	blob := bytes.Repeat([]byte("panther store blob\n"), 20000)
	for name, b := range map[string][]byte{"a.bin": blob, "c.bin": blob, "garbage.txt": []byte("garbage\n"),
		"big.txt": bytes.Repeat([]byte("closure "), 8000)} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdoutOf(t, "", nixStore, "--store", p.Root, "--add", filepath.Join(src, "a.bin"), filepath.Join(src, "c.bin"), filepath.Join(src, "garbage.txt"))
	expr := filepath.Join(src, "lib.nix")
	os.WriteFile(expr, []byte("let big = builtins.toFile \"big\" (builtins.readFile ./big.txt);\nin builtins.toFile \"lib\" \"lib uses ${big}\"\n"), 0o644)
	lib, err := strconv.Unquote(strings.TrimSpace(stdoutOf(t, "", requireTool(t, "nix-instantiate"),
		"--store", p.Root, "--eval", "--read-write-mode", expr)))
	if err != nil {
		t.Fatal(err)
	}
	system := "/nix/store/f5zcpnmbr2gmws5ncmlcdajnbswg9d8l-nixos-system-panther-24.05"
	sysDir := filepath.Join(p.Root, system)
	os.MkdirAll(sysDir, 0o755)
	os.WriteFile(filepath.Join(sysDir, "nixos-version"), []byte("24.05.e2e\n"), 0o444)
	os.Symlink(lib, filepath.Join(sysDir, "sw"))
	hash := strings.TrimSpace(stdoutOf(t, "", requireTool(t, "nix-hash"), "--type", "sha256", sysDir))
	nar := stdoutOf(t, "", nixStore, "--dump", sysDir)
	stdoutOf(t, fmt.Sprintf("%s\nsha256:%s\n%d\n\n1\n%s\n", system, hash, len(nar), lib), nixStore, "--store", p.Root, "--load-db")
	for _, d := range []string{"run", "nix/var/nix/gcroots"} {
		os.MkdirAll(filepath.Join(p.Root, d), 0o755)
	}
	for _, l := range []string{"run/current-system", "run/booted-system", "nix/var/nix/gcroots/current-system"} {
		if err := os.Symlink(system, filepath.Join(p.Root, l)); err != nil {
			t.Fatal(err)
		}
	}
	stdoutOf(t, "", nixStore, "--store", p.Root, "--optimise")
	p.GC(t)
	return p
}

// GC runs nix-collect-garbage on the store through the wrapper the NixOS
// module installs around nix-gc.service, writing the state file the nix
// collector reads (its default path, under the rootfs).
func (p *PerfRoot) GC(t testing.TB) string {
	t.Helper()
	return stdoutOf(t, "", "bash", "../nixos/panther-nix-gc.sh", filepath.Join(p.Root, "var/lib/panther/nix-gc-last-run"),
		requireTool(t, "nix-collect-garbage"), "--store", p.Root)
}
