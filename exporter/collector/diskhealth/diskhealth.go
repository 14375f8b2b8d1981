// Package diskhealth reports the SMART health of every NVMe and SATA (and
// SAS) disk: the overall verdict, NVMe critical warnings, wear, available
// spare, media errors, unsafe shutdowns, power-on time, temperature, and
// ATA's reallocated, pending and uncorrectable sectors.
//
// It runs smartmontools' `smartctl --json -x -n standby` per disk, in the
// background every --collector.diskhealth.interval (6h), never on a
// scrape: a scrape reads the last figures. Why smartctl and not the NVMe
// and ATA ioctls: smartctl knows the quirks of thousands of drives and
// USB bridges (its drive database, SAT/SCSI translation, vendor attribute
// meanings), its JSON is a stable, versioned schema, and the privileged
// part runs in a short-lived child instead of in the exporter. -n standby
// makes smartctl check the ATA power mode first and leave a sleeping disk
// asleep (NVMe has no such state to check; its power states wake in
// milliseconds).
//
// What it needs from the service (nixos/hardening.nix, diskHealth): the
// device nodes (PrivateDevices off, DeviceAllow block-sd and block-blkext
// read-only), CAP_SYS_RAWIO for ATA pass-through (SG_IO), CAP_SYS_ADMIN
// for NVMe admin commands (the kernel lets unprivileged callers send only
// Identify, not Get Log Page), and CAP_DAC_READ_SEARCH to open the root-only
// device nodes. smartctl inherits them as ambient capabilities.
package diskhealth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
)

const name = "diskhealth"

var (
	healthOK = collector.Gauge(name, "disk_health_ok",
		"1 when the disk passes its own SMART health check (smartctl smart_status.passed), 0 when it says it is failing.", "device")
	criticalWarning = collector.Gauge(name, "disk_critical_warning",
		"1 while an NVMe critical warning bit is set (type: spare below threshold, temperature, reliability degraded, read_only, volatile_backup_failed, pmr_read_only).",
		"device", "type")
	wear = collector.Gauge(name, "disk_wear_ratio",
		"Share of the rated endurance used: NVMe percentage used / 100, or the SATA SSD Percentage Used Endurance Indicator; may exceed 1.", "device")
	spare = collector.Gauge(name, "disk_available_spare_ratio",
		"NVMe available spare, 0..1 of the reserve blocks left.", "device")
	spareThreshold = collector.Gauge(name, "disk_available_spare_threshold_ratio",
		"NVMe available spare threshold set by the vendor: below it the drive raises the spare critical warning.", "device")
	mediaErrors = collector.Counter(name, "disk_media_errors_total",
		"NVMe media and data integrity errors: unrecovered data the drive could not return.", "device")
	errorLogEntries = collector.Counter(name, "disk_error_log_entries_total",
		"NVMe error information log entries over the drive's life.", "device")
	unsafeShutdowns = collector.Counter(name, "disk_unsafe_shutdowns_total",
		"NVMe unsafe shutdowns: power lost without a shutdown notification.", "device")
	powerOn = collector.Counter(name, "disk_power_on_seconds_total",
		"Time the disk has been powered on over its life.", "device")
	powerCycles = collector.Counter(name, "disk_power_cycles_total",
		"Power cycles over the disk's life.", "device")
	temperature = collector.Gauge(name, "disk_temperature_celsius",
		"Disk temperature as SMART reports it (NVMe composite temperature; ATA attribute 194/190 or SCT status) when last read.", "device")
	reallocated = collector.Gauge(name, "disk_reallocated_sectors",
		"ATA reallocated sectors (attribute 5 raw): sectors the disk replaced with spares.", "device")
	pending = collector.Gauge(name, "disk_pending_sectors",
		"ATA current pending sectors (attribute 197 raw): unreadable sectors waiting to be rewritten or reallocated.", "device")
	uncorrectable = collector.Gauge(name, "disk_uncorrectable_sectors",
		"ATA offline uncorrectable sectors (attribute 198 raw).", "device")
	info = collector.Gauge(name, "disk_info",
		"Disk model and firmware as smartctl reads them; value 1.", "device", "model", "firmware", "protocol")
	success = collector.Gauge(name, "disk_smart_success",
		"1 when the last smartctl run read the disk (or found it asleep and left it so), 0 when it failed.", "device")
	asleep = collector.Gauge(name, "disk_smart_asleep",
		"1 when the last run found the disk in standby and did not wake it; the other figures are then from the run before.", "device")
	readTime = collector.Gauge(name, "disk_smart_read_timestamp_seconds",
		"When the disk's figures were last read.", "device")
)

// NVMe critical warning bits (NVMe base specification, SMART / Health
// Information log, byte 0).
var warningBits = []struct {
	bit  uint64
	name string
}{
	{1 << 0, "spare"},
	{1 << 1, "temperature"},
	{1 << 2, "reliability"},
	{1 << 3, "read_only"},
	{1 << 4, "volatile_backup_failed"},
	{1 << 5, "pmr_read_only"},
}

// Options are the collector's flags.
type Options struct {
	Smartctl string
	Interval time.Duration
	Timeout  time.Duration
	Include  string
	Exclude  string
}

// DefaultInclude is every SCSI/SATA disk and every NVMe namespace.
const DefaultInclude = `^(sd[a-z]+|nvme[0-9]+n[0-9]+)$`

var flags Options

func init() {
	kingpin.Flag("collector.diskhealth.smartctl", "smartctl binary (smartmontools 7.0 or newer).").
		Default("smartctl").StringVar(&flags.Smartctl)
	kingpin.Flag("collector.diskhealth.interval", "How often every disk is read; SMART figures move over days.").
		Default("6h").DurationVar(&flags.Interval)
	kingpin.Flag("collector.diskhealth.timeout", "How long one smartctl run may take.").
		Default("1m").DurationVar(&flags.Timeout)
	kingpin.Flag("collector.diskhealth.devices-include", "Regexp of block devices (names in /sys/block) to read.").
		Default(DefaultInclude).StringVar(&flags.Include)
	kingpin.Flag("collector.diskhealth.devices-exclude", "Regexp of block devices to leave out.").
		Default("").StringVar(&flags.Exclude)
	// Off by default: it needs smartctl and privileges (see the package doc).
	collector.Register(name, false, func(cfg collector.Config) (collector.Collector, error) {
		return New(cfg, flags, ExecRunner(flags.Smartctl))
	})
}

// Runner runs smartctl for one device node and returns its stdout and
// exit status. A status is not an error: smartctl reports findings in it.
type Runner func(ctx context.Context, dev string) (stdout []byte, status int, err error)

// ExecRunner runs the smartctl binary.
func ExecRunner(smartctl string) Runner {
	return func(ctx context.Context, dev string) ([]byte, int, error) {
		var out, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, smartctl, "--json=c", "-x", "-n", "standby", dev)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return out.Bytes(), ee.ExitCode(), nil
		}
		if err != nil {
			return nil, -1, fmt.Errorf("%s: %w", smartctl, err)
		}
		return out.Bytes(), 0, nil
	}
}

// DiskHealth is the diskhealth collector.
type DiskHealth struct {
	cfg     collector.Config
	logger  *slog.Logger
	opts    Options
	run     Runner
	include *regexp.Regexp
	exclude *regexp.Regexp

	start     sync.Once
	firstDone chan struct{}

	mu    sync.Mutex
	disks map[string]*disk
}

type disk struct {
	health *Health
	err    error
	asleep bool
	readAt time.Time
}

// New builds the collector; the first Update starts the background reads.
func New(cfg collector.Config, opts Options, run Runner) (*DiskHealth, error) {
	d := &DiskHealth{cfg: cfg, logger: cfg.Logger, opts: opts, run: run, firstDone: make(chan struct{}), disks: map[string]*disk{}}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if d.include, err = regexp.Compile(opts.Include); err != nil {
		return nil, fmt.Errorf("--collector.diskhealth.devices-include: %w", err)
	}
	if opts.Exclude != "" {
		if d.exclude, err = regexp.Compile(opts.Exclude); err != nil {
			return nil, fmt.Errorf("--collector.diskhealth.devices-exclude: %w", err)
		}
	}
	if opts.Interval <= 0 {
		return nil, errors.New("--collector.diskhealth.interval must be positive")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
		d.opts.Timeout = opts.Timeout
	}
	return d, nil
}

// Devices lists the disks to read from /sys/block: names that match the
// filters, not removable media, and one namespace per NVMe controller
// (the health log belongs to the controller).
func (d *DiskHealth) Devices() ([]string, error) {
	entries, err := os.ReadDir(d.cfg.Sys("block"))
	if err != nil {
		return nil, err
	}
	var out []string
	controllers := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if !d.include.MatchString(n) || (d.exclude != nil && d.exclude.MatchString(n)) {
			continue
		}
		if b, err := os.ReadFile(d.cfg.Sys("block", n, "removable")); err == nil && strings.TrimSpace(string(b)) == "1" {
			continue
		}
		if strings.HasPrefix(n, "nvme") {
			ctrl := n
			if dev, err := filepath.EvalSymlinks(d.cfg.Sys("block", n, "device")); err == nil {
				ctrl = filepath.Base(dev)
			}
			if controllers[ctrl] {
				continue
			}
			controllers[ctrl] = true
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Round reads every disk once. A disk that is gone is forgotten; one that
// is asleep keeps its last figures.
func (d *DiskHealth) Round(ctx context.Context) error {
	devs, err := d.Devices()
	if err != nil {
		return err
	}
	now := map[string]bool{}
	for _, dev := range devs {
		now[dev] = true
		rctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
		out, status, err := d.run(rctx, "/dev/"+dev)
		cancel()
		var h *Health
		if err == nil {
			h, err = Parse(out)
			if err == nil && status&exitOpenFailed != 0 {
				err = fmt.Errorf("smartctl exit status %d", status)
			}
		}
		d.mu.Lock()
		st := d.disks[dev]
		if st == nil {
			st = &disk{}
			d.disks[dev] = st
		}
		prev := st.err
		switch {
		case errors.Is(err, ErrAsleep):
			st.asleep, st.err = true, nil
		case err != nil:
			st.asleep, st.err = false, fmt.Errorf("/dev/%s: %w", dev, err)
			st.health = nil
		default:
			st.asleep, st.err, st.health, st.readAt = false, nil, h, time.Now()
		}
		if st.err != nil && (prev == nil || prev.Error() != st.err.Error()) {
			d.logger.Warn("cannot read disk health", "err", st.err)
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	for dev := range d.disks {
		if !now[dev] {
			delete(d.disks, dev)
		}
	}
	d.mu.Unlock()
	return nil
}

func (d *DiskHealth) loop() {
	for first := true; ; first = false {
		if err := d.Round(context.Background()); err != nil {
			d.logger.Warn("cannot list disks", "err", err)
		}
		if first {
			close(d.firstDone)
		}
		time.Sleep(d.opts.Interval)
	}
}

// Update starts the background reads on the first call and waits for the
// first round until the scrape's deadline; later scrapes only read.
func (d *DiskHealth) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	d.start.Do(func() { go d.loop() })
	select {
	case <-d.firstDone:
	case <-ctx.Done():
		return errors.New("first read of the disks still running")
	}
	return d.Send(ch)
}

// Send sends the figures of the last round; the error names every disk
// that could not be read.
func (d *DiskHealth) Send(ch chan<- prometheus.Metric) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	devs := make([]string, 0, len(d.disks))
	for dev := range d.disks {
		devs = append(devs, dev)
	}
	sort.Strings(devs)
	var errs []error
	for _, dev := range devs {
		st := d.disks[dev]
		ok := 1.0
		if st.err != nil {
			ok = 0
			errs = append(errs, st.err)
		}
		ch <- success.Const(ok, dev)
		sleeping := 0.0
		if st.asleep {
			sleeping = 1
		}
		ch <- asleep.Const(sleeping, dev)
		if st.health == nil {
			continue
		}
		ch <- readTime.Const(float64(st.readAt.UnixNano())/1e9, dev)
		sendHealth(ch, dev, st.health)
	}
	return errors.Join(errs...)
}

func sendHealth(ch chan<- prometheus.Metric, dev string, h *Health) {
	ch <- info.Const(1, dev, h.Model, h.Firmware, h.Protocol)
	if h.Passed != nil {
		v := 0.0
		if *h.Passed {
			v = 1
		}
		ch <- healthOK.Const(v, dev)
	}
	if h.CriticalWarning != nil {
		for _, b := range warningBits {
			v := 0.0
			if *h.CriticalWarning&b.bit != 0 {
				v = 1
			}
			ch <- criticalWarning.Const(v, dev, b.name)
		}
	}
	for _, f := range []struct {
		m *collector.Metric
		v *float64
	}{
		{wear, h.Wear}, {spare, h.Spare}, {spareThreshold, h.SpareThreshold},
		{mediaErrors, h.MediaErrors}, {errorLogEntries, h.ErrorLogEntries}, {unsafeShutdowns, h.UnsafeShutdowns},
		{powerOn, h.PowerOnSeconds}, {powerCycles, h.PowerCycles}, {temperature, h.Temperature},
		{reallocated, h.Reallocated}, {pending, h.Pending}, {uncorrectable, h.Uncorrectable},
	} {
		if f.v != nil {
			ch <- f.m.Const(*f.v, dev)
		}
	}
}
