package timex

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pantheros/monitoring/exporter/collector/samples"
)

// A chrony-synchronised laptop as `adjtimex -p` shows it: status 0x2001
// (STA_PLL|STA_NANO), offset -238761 ns, frequency -1193091 (about -18.2
// ppm), maxerror 6500 us, esterror 312 us, return value 0 (TIME_OK).
func TestSynchronised(t *testing.T) {
	read := func(tx *unix.Timex) (int, error) {
		if tx.Modes != 0 {
			t.Errorf("modes %#x: the collector must only read", tx.Modes)
		}
		tx.Status = unix.STA_PLL | unix.STA_NANO
		tx.Offset = -238761
		tx.Freq = -1193091
		tx.Maxerror = 6500
		tx.Esterror = 312
		return unix.TIME_OK, nil
	}
	s, err := samples.Collect(t, New(read))
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 1, "panther_time_synchronized")
	s.Want(t, -0.000238761, "panther_time_offset_seconds")
	s.Want(t, 0.000312, "panther_time_estimated_error_seconds")
	s.Want(t, 0.0065, "panther_time_maximum_error_seconds")
	s.Want(t, -1193091.0/65536/1e6, "panther_time_frequency_adjustment_ratio")
}

// No NTP daemon (this CI machine): STA_UNSYNC, microsecond offsets,
// maxerror and esterror at the kernel's 16 s ceiling, TIME_ERROR.
func TestUnsynchronised(t *testing.T) {
	read := func(tx *unix.Timex) (int, error) {
		tx.Status = unix.STA_UNSYNC
		tx.Offset = 1500 // microseconds without STA_NANO
		tx.Maxerror = 16000000
		tx.Esterror = 16000000
		return unix.TIME_ERROR, nil
	}
	s, err := samples.Collect(t, New(read))
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, 0, "panther_time_synchronized")
	s.Want(t, 0.0015, "panther_time_offset_seconds")
	s.Want(t, 16, "panther_time_maximum_error_seconds")
	s.Want(t, 16, "panther_time_estimated_error_seconds")
}

// A denied call (a seccomp filter without adjtimex) is an error that names
// the call, and nothing is sent.
func TestDenied(t *testing.T) {
	s, err := samples.Collect(t, New(func(*unix.Timex) (int, error) { return -1, unix.EPERM }))
	if err == nil || !strings.Contains(err.Error(), "adjtimex") || !errors.Is(err, unix.EPERM) {
		t.Errorf("error %v, want adjtimex: EPERM", err)
	}
	if len(s) != 0 {
		t.Errorf("sent %d families with an error", len(s))
	}
}

// The real call on this machine answers and agrees with itself.
func TestKernel(t *testing.T) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := samples.Collect(t, New(unix.Adjtimex))
	if err != nil {
		t.Fatal(err)
	}
	s.Want(t, boolFloat(state != unix.TIME_ERROR), "panther_time_synchronized")
}
