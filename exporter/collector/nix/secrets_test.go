package nix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

// A nixos-version file that is not a version (several lines, too long)
// fails with an error naming the file, not quoting it. Symlink targets
// are file names and may be named (see TestDanglingKernelAndProfile).
func TestVersionErrorQuotesNoInput(t *testing.T) {
	for _, content := range []string{
		"24.05\n" + inputerrtest.Marker + "\n",
		inputerrtest.Marker + strings.Repeat("x", 300),
		inputerrtest.Marker + "\x00",
	} {
		root := t.TempDir()
		sys := "/nix/store/vbx3y7l2mfjvlg4r8yls8j2dfkdrq5j3-nixos-system-panther"
		os.MkdirAll(filepath.Join(root, sys), 0o755)
		os.MkdirAll(filepath.Join(root, "run"), 0o755)
		os.WriteFile(filepath.Join(root, sys, "nixos-version"), []byte(content), 0o644)
		os.Symlink(sys, filepath.Join(root, "run/current-system"))
		_, err := samples(t, newNix(t, root))
		if err == nil || !strings.Contains(err.Error(), filepath.Join(root, sys, "nixos-version")) {
			t.Fatalf("error %v does not name nixos-version", err)
		}
		inputerrtest.CheckErr(t, "nix error", err)
	}
}
