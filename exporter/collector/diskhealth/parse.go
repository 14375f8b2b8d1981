package diskhealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// report is the part of smartctl's JSON output (smartmontools 7.x,
// json_format_version 1) that the collector reads.
type report struct {
	FormatVersion []int `json:"json_format_version"`
	Smartctl      struct {
		Messages []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
		ExitStatus *int `json:"exit_status"`
	} `json:"smartctl"`
	Device struct {
		Type     string `json:"type"`
		Protocol string `json:"protocol"`
	} `json:"device"`
	ModelName       string `json:"model_name"`
	FirmwareVersion string `json:"firmware_version"`
	SmartStatus     *struct {
		Passed *bool `json:"passed"`
	} `json:"smart_status"`
	NVMe *struct {
		CriticalWarning         *uint64 `json:"critical_warning"`
		AvailableSpare          *uint64 `json:"available_spare"`
		AvailableSpareThreshold *uint64 `json:"available_spare_threshold"`
		PercentageUsed          *uint64 `json:"percentage_used"`
		MediaErrors             *uint64 `json:"media_errors"`
		ErrorLogEntries         *uint64 `json:"num_err_log_entries"`
		UnsafeShutdowns         *uint64 `json:"unsafe_shutdowns"`
	} `json:"nvme_smart_health_information_log"`
	Attributes *struct {
		Table []struct {
			ID  int `json:"id"`
			Raw struct {
				Value *uint64 `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	DeviceStatistics *struct {
		Pages []struct {
			Number int `json:"number"`
			Table  []struct {
				Offset int     `json:"offset"`
				Value  *uint64 `json:"value"`
				Flags  struct {
					Valid *bool `json:"valid"`
				} `json:"flags"`
			} `json:"table"`
		} `json:"pages"`
	} `json:"ata_device_statistics"`
	Temperature *struct {
		Current *float64 `json:"current"`
	} `json:"temperature"`
	PowerOnTime *struct {
		Hours   *uint64 `json:"hours"`
		Minutes *uint64 `json:"minutes"`
	} `json:"power_on_time"`
	PowerCycles *uint64 `json:"power_cycle_count"`
}

// Health is what one smartctl run says about a disk, in base units. A nil
// field is a figure this disk (or this kind of disk) does not report.
type Health struct {
	Protocol, Model, Firmware string

	Passed          *bool
	CriticalWarning *uint64 // NVMe critical warning bits
	Wear            *float64
	Spare           *float64
	SpareThreshold  *float64
	MediaErrors     *float64
	ErrorLogEntries *float64
	UnsafeShutdowns *float64
	PowerOnSeconds  *float64
	PowerCycles     *float64
	Temperature     *float64
	Reallocated     *float64 // ATA attribute 5
	Pending         *float64 // ATA attribute 197
	Uncorrectable   *float64 // ATA attribute 198
}

// ErrAsleep says the disk was in standby or sleep and smartctl left it
// so (-n standby): keep the last figures, read again next round.
var ErrAsleep = errors.New("disk is asleep (standby), not woken")

// smartctl's exit status bits (smartctl(8), RETURN VALUES). Bits 3 and up
// are findings about the disk, not failures to read it.
const (
	exitCommandLine = 1 << 0
	exitOpenFailed  = 1 << 1 // also: the disk is asleep, with -n
)

// Parse reads smartctl --json output. It returns ErrAsleep when smartctl
// skipped a sleeping disk, and an error carrying smartctl's own error
// messages when it could not read the disk; the errors never quote the
// JSON itself.
func Parse(b []byte) (*Health, error) {
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("smartctl output is not JSON (offset %d)", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("smartctl output: field %s is not a %s", te.Field, te.Type)
		}
		return nil, errors.New("smartctl output is not JSON")
	}
	if len(r.FormatVersion) == 0 || r.FormatVersion[0] != 1 {
		return nil, fmt.Errorf("smartctl output: json_format_version %v, want 1", r.FormatVersion)
	}
	var errMsgs []string
	for _, m := range r.Smartctl.Messages {
		if m.Severity == "information" && strings.HasPrefix(m.String, "Device is in ") && strings.Contains(m.String, " mode") {
			return nil, ErrAsleep
		}
		if m.Severity == "error" {
			errMsgs = append(errMsgs, oneLine(m.String))
		}
	}
	status := 0
	if r.Smartctl.ExitStatus != nil {
		status = *r.Smartctl.ExitStatus
	}
	if status&(exitCommandLine|exitOpenFailed) != 0 || (r.SmartStatus == nil && r.NVMe == nil && r.Attributes == nil) {
		if len(errMsgs) == 0 {
			errMsgs = append(errMsgs, "no SMART data")
		}
		return nil, fmt.Errorf("smartctl exit status %d: %s", status, strings.Join(errMsgs, "; "))
	}

	h := &Health{Protocol: oneLine(r.Device.Protocol), Model: oneLine(r.ModelName), Firmware: oneLine(r.FirmwareVersion)}
	if r.SmartStatus != nil {
		h.Passed = r.SmartStatus.Passed
	}
	if n := r.NVMe; n != nil {
		h.CriticalWarning = n.CriticalWarning
		h.Wear = ratio(n.PercentageUsed)
		h.Spare = ratio(n.AvailableSpare)
		h.SpareThreshold = ratio(n.AvailableSpareThreshold)
		h.MediaErrors = num(n.MediaErrors)
		h.ErrorLogEntries = num(n.ErrorLogEntries)
		h.UnsafeShutdowns = num(n.UnsafeShutdowns)
	}
	if a := r.Attributes; a != nil {
		for _, at := range a.Table {
			switch at.ID {
			case 5:
				h.Reallocated = num(at.Raw.Value)
			case 197:
				h.Pending = num(at.Raw.Value)
			case 198:
				h.Uncorrectable = num(at.Raw.Value)
			}
		}
	}
	// ATA device statistics, page 7 (Solid State Device Statistics),
	// offset 8: Percentage Used Endurance Indicator, the SATA counterpart
	// of NVMe's percentage used.
	if ds := r.DeviceStatistics; ds != nil && h.Wear == nil {
		for _, p := range ds.Pages {
			if p.Number != 7 {
				continue
			}
			for _, e := range p.Table {
				if e.Offset == 8 && (e.Flags.Valid == nil || *e.Flags.Valid) {
					h.Wear = ratio(e.Value)
				}
			}
		}
	}
	if t := r.Temperature; t != nil && t.Current != nil {
		v := *t.Current
		h.Temperature = &v
	}
	if p := r.PowerOnTime; p != nil && p.Hours != nil {
		s := float64(*p.Hours) * 3600
		if p.Minutes != nil {
			s += float64(*p.Minutes) * 60
		}
		h.PowerOnSeconds = &s
	}
	h.PowerCycles = num(r.PowerCycles)
	return h, nil
}

func num(v *uint64) *float64 {
	if v == nil {
		return nil
	}
	f := float64(*v)
	return &f
}

func ratio(v *uint64) *float64 {
	if v == nil {
		return nil
	}
	f := float64(*v) / 100
	return &f
}

// oneLine keeps a label or message to one short line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120])
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
