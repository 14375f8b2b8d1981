// Package limits collects the kernel limits that node_exporter users alert
// on: allocated and maximum file handles (/proc/sys/fs/file-nr), conntrack
// entries and limit (/proc/sys/net/netfilter, when nf_conntrack is
// loaded), and TCP retransmits and listen-queue overflows (/proc/net/snmp,
// /proc/net/netstat). These are node_exporter's filefd, conntrack and
// netstat collectors, cut down to what the rules use.
//
// The snmp/netstat files are parsed here rather than with procfs's
// Proc.Snmp/Proc.Netstat: those read /proc/<pid>/net and put the offending
// bytes of a bad file into their errors, which must not reach the log.
package limits

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pantheros/monitoring/exporter/collector"
	"github.com/pantheros/monitoring/exporter/collector/sysfile"
)

const name = "limits"

var (
	filefdAllocated = collector.Gauge(name, "filefd_allocated",
		"File handles the kernel has allocated (first field of /proc/sys/fs/file-nr).")
	filefdMaximum = collector.Gauge(name, "filefd_maximum",
		"Most file handles the kernel will allocate (fs.file-max, third field of /proc/sys/fs/file-nr).")
	conntrackEntries = collector.Gauge(name, "conntrack_entries",
		"Connections in the conntrack table (net.netfilter.nf_conntrack_count); absent when nf_conntrack is not loaded.")
	conntrackLimit = collector.Gauge(name, "conntrack_limit",
		"Size limit of the conntrack table (net.netfilter.nf_conntrack_max); a full table drops new connections.")
	tcpOutSegments = collector.Counter(name, "tcp_out_segments_total",
		"TCP segments sent, retransmissions left out (Tcp OutSegs of /proc/net/snmp).")
	tcpRetransmits = collector.Counter(name, "tcp_retransmitted_segments_total",
		"TCP segments retransmitted (Tcp RetransSegs of /proc/net/snmp).")
	tcpListenOverflows = collector.Counter(name, "tcp_listen_overflows_total",
		"Connections dropped because a listening socket's accept queue was full (TcpExt ListenOverflows of /proc/net/netstat).")
	tcpListenDrops = collector.Counter(name, "tcp_listen_drops_total",
		"Connections dropped by a listening socket for any reason, overflows included (TcpExt ListenDrops).")
)

func init() {
	collector.Register(name, true, func(cfg collector.Config) (collector.Collector, error) {
		return &Limits{cfg: cfg}, nil
	})
}

// Limits is the limits collector.
type Limits struct{ cfg collector.Config }

// Update reads each source on its own: one that fails is reported, the
// others are still sent.
func (l *Limits) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	var errs []error
	if err := l.filefd(ch); err != nil {
		errs = append(errs, err)
	}
	if err := l.conntrack(ch); err != nil {
		errs = append(errs, err)
	}
	if err := l.tcp(ch); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (l *Limits) filefd(ch chan<- prometheus.Metric) error {
	path := l.cfg.Proc("sys/fs/file-nr")
	b, err := sysfile.Read(path)
	if err != nil {
		return err
	}
	allocated, maximum, err := ParseFileNr(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ch <- filefdAllocated.Const(float64(allocated))
	ch <- filefdMaximum.Const(float64(maximum))
	return nil
}

// ParseFileNr parses /proc/sys/fs/file-nr: allocated, free (always 0
// since Linux 2.6) and maximum handles, separated by tabs.
func ParseFileNr(b []byte) (allocated, maximum uint64, err error) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("%d fields, want 3", len(f))
	}
	if allocated, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return 0, 0, errors.New("allocated handles: not a number")
	}
	if maximum, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return 0, 0, errors.New("maximum handles: not a number")
	}
	return allocated, maximum, nil
}

// conntrack sends nothing, and no error, when nf_conntrack is not loaded:
// a host without the module has no table to fill.
func (l *Limits) conntrack(ch chan<- prometheus.Metric) error {
	count, err := readUint(l.cfg.Proc("sys/net/netfilter/nf_conntrack_count"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	limit, err := readUint(l.cfg.Proc("sys/net/netfilter/nf_conntrack_max"))
	if err != nil {
		return err
	}
	ch <- conntrackEntries.Const(float64(count))
	ch <- conntrackLimit.Const(float64(limit))
	return nil
}

func readUint(path string) (uint64, error) {
	b, err := sysfile.Read(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a number", path)
	}
	return v, nil
}

func (l *Limits) tcp(ch chan<- prometheus.Metric) error {
	var errs []error
	snmp, err := readCounters(l.cfg.Proc("net/snmp"))
	if err != nil {
		errs = append(errs, err)
	} else {
		sendCounter(ch, tcpOutSegments, snmp, "Tcp", "OutSegs")
		sendCounter(ch, tcpRetransmits, snmp, "Tcp", "RetransSegs")
	}
	netstat, err := readCounters(l.cfg.Proc("net/netstat"))
	if err != nil {
		errs = append(errs, err)
	} else {
		sendCounter(ch, tcpListenOverflows, netstat, "TcpExt", "ListenOverflows")
		sendCounter(ch, tcpListenDrops, netstat, "TcpExt", "ListenDrops")
	}
	return errors.Join(errs...)
}

func sendCounter(ch chan<- prometheus.Metric, m *collector.Metric, c Counters, proto, field string) {
	if v, ok := c[proto][field]; ok {
		ch <- m.Const(v)
	}
}

func readCounters(path string) (Counters, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCounters(b, "Tcp", "TcpExt")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Counters holds /proc/net/snmp or /proc/net/netstat: protocol -> field ->
// value.
type Counters map[string]map[string]float64

// ParseCounters parses the two-line format of /proc/net/snmp and
// /proc/net/netstat: for each protocol a line of field names, then a line of
// values, both starting with "Proto:". Errors name the line, never its text.
// With protos, only those protocols' pairs are split into fields (a
// scrape needs Tcp and TcpExt of some twenty); the others are only checked
// to be pairs of the same protocol.
func ParseCounters(b []byte, protos ...string) (Counters, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines)%2 != 0 {
		return nil, fmt.Errorf("%d lines, want pairs of names and values", len(lines))
	}
	out := Counters{}
	for i := 0; i < len(lines); i += 2 {
		if len(protos) > 0 {
			p1, _, _ := strings.Cut(lines[i], " ")
			p2, _, _ := strings.Cut(lines[i+1], " ")
			if !strings.HasSuffix(p1, ":") {
				return nil, fmt.Errorf("line %d: not a \"Proto: names...\" line", i+1)
			}
			if p2 != p1 {
				return nil, fmt.Errorf("line %d: values do not match the names of line %d", i+2, i+1)
			}
			if !slices.Contains(protos, strings.TrimSuffix(p1, ":")) {
				continue
			}
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) < 2 || !strings.HasSuffix(names[0], ":") {
			return nil, fmt.Errorf("line %d: not a \"Proto: names...\" line", i+1)
		}
		if len(values) != len(names) || values[0] != names[0] {
			return nil, fmt.Errorf("line %d: values do not match the names of line %d", i+2, i+1)
		}
		proto := strings.TrimSuffix(names[0], ":")
		fields := make(map[string]float64, len(names)-1)
		for j := 1; j < len(names); j++ {
			// Signed: Tcp MaxConn is -1 (no limit).
			v, err := strconv.ParseInt(values[j], 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(values[j], 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("line %d: %s %s: not a number", i+2, proto, names[j])
				}
				fields[names[j]] = float64(u)
				continue
			}
			fields[names[j]] = float64(v)
		}
		out[proto] = fields
	}
	return out, nil
}
