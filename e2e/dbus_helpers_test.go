//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

// DBus is a private dbus-daemon (Debian's dbus) on a unix socket in a temp
// directory, with a session-like policy that lets root own any name.
type DBus struct {
	*Process
	t       testing.TB
	Dir     string
	Socket  string // path of the unix socket
	Address string // unix:path=...
	config  string
}

const dbusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
`

// startDBus starts a private dbus-daemon and waits until it accepts
// connections. It is stopped at cleanup.
func startDBus(t testing.TB) *DBus {
	t.Helper()
	requireTool(t, "dbus-daemon")
	dir, err := os.MkdirTemp("", "panther-dbus") // short path: unix sockets are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &DBus{t: t, Dir: dir, Socket: filepath.Join(dir, "bus.sock")}
	d.Address = "unix:path=" + d.Socket
	d.config = filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(d.config, []byte(fmt.Sprintf(dbusConfig, d.Socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()
	return d
}

func (d *DBus) start() {
	d.t.Helper()
	os.Remove(d.Socket)
	d.Process = startProcess(d.t, nil, "dbus-daemon", "--config-file="+d.config, "--print-address", "--nofork")
	eventually(d.t, 10*time.Second, "dbus-daemon listens on "+d.Socket, func() error {
		if d.Exited() {
			d.t.Fatalf("dbus-daemon exited: %s", d.Output())
		}
		c, err := net.Dial("unix", d.Socket)
		if err != nil {
			return err
		}
		c.Close()
		if !strings.Contains(d.Output(), d.Socket) {
			return fmt.Errorf("address not printed yet")
		}
		return nil
	})
}

// Kill kills the daemon (SIGKILL): every connection on it breaks.
func (d *DBus) Kill() { d.Process.Kill() }

// Restart starts a new daemon on the same socket after Kill.
func (d *DBus) Restart() {
	d.t.Helper()
	d.Process.Kill()
	d.start()
}

// startFakeSystemd serves a fake org.freedesktop.systemd1 (package
// e2e/fakesystemd) seeded with seed on the bus. It leaves the bus at
// cleanup.
func startFakeSystemd(t testing.TB, bus *DBus, seed fakesystemd.Seed) *fakesystemd.Fake {
	t.Helper()
	f, err := fakesystemd.Start(bus.Address, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// startBootExporter runs the exporter with only the boot collector, talking
// to the (fake) systemd on bus.
func startBootExporter(t testing.TB, bus *DBus, args ...string) *Exporter {
	t.Helper()
	return startExporter(t, append([]string{"--collector.disable-defaults", "--collector.boot",
		"--collector.boot.dbus-address=" + bus.Address}, args...)...)
}

// systemdAnalyze runs systemd-analyze (real, Debian's) against the fake on bus:
// inside `unshare -m` with a tmpfs on /run/systemd holding an empty
// /run/systemd/system, which systemd-analyze wants to see before it talks to
// a system manager, and DBUS_SYSTEM_BUS_ADDRESS pointing at bus.
func systemdAnalyze(t testing.TB, bus *DBus, args ...string) (string, error) {
	t.Helper()
	requireTool(t, "systemd-analyze")
	requireTool(t, "unshare")
	script := `mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec systemd-analyze --no-pager "$@"`
	cmdArgs := append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, args...)
	return runEnv(t, []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus.Address, "SYSTEMD_COLORS=0", "LC_ALL=C"}, "unshare", cmdArgs...)
}

// runEnv runs a command with extra environment and returns its standard
// output; the error carries stderr (it does not fail the test).
func runEnv(t testing.TB, env []string, name string, args ...string) (string, error) {
	t.Helper()
	return runOutput(env, name, args...)
}
