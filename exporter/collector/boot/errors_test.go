package boot

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/pantheros/monitoring/exporter/collector/inputerr/inputerrtest"
)

// The answers of a D-Bus peer that an error could quote, with the marker in
// each: the error message of a D-Bus error reply, its error name, a value
// of the wrong type. safeErr keeps the error name and the kind only.
func TestDBusErrorsQuoteNoInput(t *testing.T) {
	const m = inputerrtest.Marker
	reply := dbus.Error{Name: "org.freedesktop.systemd1.NoSuchUnit", Body: []any{"Unit " + m + ".service not loaded."}}
	var u uint64
	storeErr := dbus.Store([]any{dbus.MakeVariant(m)}, &u)
	if storeErr == nil {
		t.Fatal("Store of a string into a uint64 succeeded")
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{reply, "D-Bus error org.freedesktop.systemd1.NoSuchUnit"},
		{&reply, "D-Bus error org.freedesktop.systemd1.NoSuchUnit"},
		{fmt.Errorf("get: %w", reply), "D-Bus error org.freedesktop.systemd1.NoSuchUnit"},
		{dbus.Error{Name: "org." + m + ".x y", Body: []any{m}}, "D-Bus error (malformed name)"},
		{storeErr, "dbus.Store: type mismatch"},
		{errors.New("dbus: authentication failed"), "dbus: authentication failed"},
		{errors.New("unexpected " + m), "withheld"},
	} {
		got := safeErr(c.err)
		if !strings.Contains(got.Error(), c.want) {
			t.Errorf("safeErr(%q) = %q, want %q in it", c.err, got, c.want)
		}
		inputerrtest.CheckErr(t, "safeErr", got)
	}
	if !isDBusError(safeErr(reply)) {
		t.Error("safeErr lost the D-Bus error for errors.As")
	}
}
