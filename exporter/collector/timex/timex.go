// Package timex reports the kernel's clock discipline state, as
// node_exporter's timex collector does: whether an NTP daemon (chrony,
// systemd-timesyncd, ntpd) keeps the clock synchronised, its estimated and
// maximum error, the current offset and the frequency correction.
//
// It calls adjtimex(2) with modes 0, which only reads and needs no
// privilege. systemd's ProtectClock= and a SystemCallFilter without @clock
// deny the system call as a whole (a filter cannot tell a read from a
// write), so the unit allows adjtimex alone and keeps CAP_SYS_TIME out of
// the bounding set instead: the kernel then refuses every write. See
// nixos/hardening.nix.
package timex

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/pantheros/monitoring/exporter/collector"
)

const name = "timex"

var (
	synchronized = collector.Gauge(name, "time_synchronized",
		"1 when the kernel clock is synchronised to a time source (adjtimex does not return TIME_ERROR: STA_UNSYNC clear, no PLL error), 0 otherwise.")
	offset = collector.Gauge(name, "time_offset_seconds",
		"Time offset between the kernel clock and the time source, as the NTP daemon last told the kernel (adjtimex offset).")
	estimatedError = collector.Gauge(name, "time_estimated_error_seconds",
		"Estimated error of the kernel clock (adjtimex esterror).")
	maximumError = collector.Gauge(name, "time_maximum_error_seconds",
		"Maximum error of the kernel clock (adjtimex maxerror); grows by 500 ppm while nothing synchronises it, up to 16 s.")
	frequency = collector.Gauge(name, "time_frequency_adjustment_ratio",
		"Frequency correction applied to the system clock, as a ratio (adjtimex freq, 2^-16 ppm, divided by 1e6).")
)

// Reader reads the kernel's clock state; unix.Adjtimex with a zero Timex
// in the service, a fixed answer in tests.
type Reader func(*unix.Timex) (state int, err error)

func init() {
	collector.Register(name, true, func(collector.Config) (collector.Collector, error) {
		return New(unix.Adjtimex), nil
	})
}

// Timex is the timex collector.
type Timex struct{ read Reader }

// New returns a timex collector reading through read.
func New(read Reader) *Timex { return &Timex{read: read} }

// Update makes one read-only adjtimex call.
func (t *Timex) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	var tx unix.Timex // Modes 0: read only
	state, err := t.read(&tx)
	if err != nil {
		return fmt.Errorf("adjtimex: %w", err)
	}
	s := Decode(state, &tx)
	ch <- synchronized.Const(boolFloat(s.Synchronized))
	ch <- offset.Const(s.Offset)
	ch <- estimatedError.Const(s.EstimatedError)
	ch <- maximumError.Const(s.MaximumError)
	ch <- frequency.Const(s.Frequency)
	return nil
}

// State is an adjtimex answer in base units.
type State struct {
	Synchronized   bool
	Offset         float64 // seconds
	EstimatedError float64 // seconds
	MaximumError   float64 // seconds
	Frequency      float64 // ratio
}

// Decode turns adjtimex's return value and struct into base units. The
// offset is in nanoseconds when STA_NANO is set, else in microseconds;
// errors are always microseconds; freq is ppm with a 16-bit fraction.
func Decode(state int, tx *unix.Timex) State {
	off := float64(tx.Offset) / 1e6
	if tx.Status&unix.STA_NANO != 0 {
		off = float64(tx.Offset) / 1e9
	}
	return State{
		Synchronized:   state != unix.TIME_ERROR,
		Offset:         off,
		EstimatedError: float64(tx.Esterror) / 1e6,
		MaximumError:   float64(tx.Maxerror) / 1e6,
		Frequency:      float64(tx.Freq) / 65536 / 1e6,
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
