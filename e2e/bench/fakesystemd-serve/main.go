// Command fakesystemd-serve serves the fake systemd manager of package
// e2e/fakesystemd on a D-Bus bus until it is killed, for the benchmark
// scripts (a shell script cannot call the e2e test helpers):
//
//	fakesystemd-serve -address unix:path=/tmp/bus.sock -units 300
//
// It serves fakesystemd.Workstation(units), the Laptop seed grown to the
// size of a NixOS workstation, and prints "ready" once it owns
// org.freedesktop.systemd1.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pantheros/monitoring/e2e/fakesystemd"
)

func main() {
	address := flag.String("address", os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"), "D-Bus address of the bus to serve on")
	units := flag.Int("units", 300, "units the fake manager has (at least 50)")
	flag.Parse()
	if *address == "" {
		fmt.Fprintln(os.Stderr, "fakesystemd-serve: -address is required")
		os.Exit(2)
	}
	// The bus may have made its socket and not yet listen on it: retry.
	var f *fakesystemd.Fake
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		f, err = fakesystemd.Start(*address, fakesystemd.Workstation(*units))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakesystemd-serve:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	f.Close()
}
