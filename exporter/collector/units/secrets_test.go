package units

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

// Garbled cgroup files fail with errors naming the file and the kind of
// problem, never quoting what the file held.
func TestErrorsQuoteNoInput(t *testing.T) {
	root := copyFixture(t)
	sys := filepath.Join(root, "sys/fs/cgroup/system.slice")
	m := inputerrtest.Marker
	for f, content := range map[string]string{
		"sshd.service/memory.current":       m + "\n",
		"sshd.service/cpu.stat":             "usage_usec " + m + "\n",
		"sshd.service/io.stat":              "259:0 rbytes=" + m + " wbytes=0\n",
		"sshd.service/memory.pressure":      "some avg10=0.00 total=" + m + "\n",
		"sshd.service/memory.events":        m + "\n",
		"nginx.service/cpu.pressure":        m + " total=1\n",
		"nginx.service/io.stat":             m + "\n",
		"nginx.service/memory.max":          m,
		"dbus.service/memory.swap.current":  "1" + m + "\n",
		"dbus.service/cpu.stat":             "usage_usec 1\n" + m,
		"dhcpcd.service/memory.events":      "oom_kill " + m + "\n",
		"dhcpcd.service/pids.current":       "-" + m + "\n",
		"nix-daemon.service/memory.peak":    m + " " + m + "\n",
		"nix-daemon.service/io.pressure":    "full total=1\n" + m + "\n",
		"systemd-logind.service/io.stat":    "8:0 " + m + "\n",
		"systemd-udevd.service/io.stat":     "8:0 wbytes=" + m + "\n",
		"systemd-oomd.service/memory.peak":  "",
		"systemd-oomd.service/cpu.pressure": "some total=1\nfull " + m + "\n",
	} {
		if err := os.WriteFile(filepath.Join(sys, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "proc/vmstat"), []byte("oom_kill "+m+"\n"), 0o644)
	_, err := samples(t, newUnits(t, root, Options{}))
	if err == nil {
		t.Fatal("no error")
	}
	inputerrtest.CheckErr(t, "units error", err)
}
