package boot

import (
	"errors"
	"regexp"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/pantheros/monitoring/exporter/collector/inputerr"
)

// errorName is what a D-Bus error name looks like (org.freedesktop.systemd1.NoSuchUnit).
var errorName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

// godbusTexts are fixed messages of godbus, safe to show as they are.
var godbusTexts = map[string]bool{
	"dbus: authentication failed":                                  true,
	"dbus: authentication protocol error":                          true,
	"dbus: invalid bus address (no transport)":                     true,
	"dbus: invalid bus address (invalid or unsupported transport)": true,
	"dbus.Store: length mismatch":                                  true,
}

// safeErr keeps of a D-Bus failure what identifies it: the error name of
// the peer's answer, never its message (systemd's messages quote unit names,
// paths and whatever a unit file said), the transport's system error, or a
// fixed godbus message; the rest through inputerr.
func safeErr(err error) error {
	if err == nil {
		return nil
	}
	var de dbus.Error
	var dep *dbus.Error
	name := ""
	switch {
	case errors.As(err, &dep) && dep != nil:
		name = dep.Name
	case errors.As(err, &de):
		name = de.Name
	default:
		s := err.Error()
		if godbusTexts[s] || (strings.HasPrefix(s, "dbus.Store: type mismatch: cannot convert ") && !strings.ContainsAny(s, `"'`)) {
			return inputerr.Because("", s, err) // types of the answer, not its values
		}
		return inputerr.Wrap("", err)
	}
	if len(name) > 255 || !errorName.MatchString(name) {
		name = "(malformed name)"
	}
	return inputerr.Because("", "D-Bus error "+name, err)
}
