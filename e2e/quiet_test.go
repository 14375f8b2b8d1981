//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// notUnderTest are metric_relabel_configs entries (YAML, indented for a
// scrape job's list) for the alert tests that run exporters with the
// system collector: dropped at scrape time are other tests' filesystems on
// this shared machine (every Btrfs; mounts under /tmp), the series that
// follow this machine's load (CPU, PSI, disk busy time), which the other
// engineers' builds saturate, and its clock, which no NTP daemon
// disciplines here (ClockNotSynchronised would be right about it).
const notUnderTest = `      - source_labels: [__name__, mountpoint]
        regex: 'panther_filesystem_.*;/tmp/.*'
        action: drop
      - source_labels: [__name__]
        regex: 'panther_(cpu_seconds_total|pressure_waiting_seconds_total|disk_io_time_seconds_total|time_synchronized)'
        action: drop
`

// alertKey names one alert of one host.
type alertKey struct{ alert, instance string }

// quietWatch samples, once a second, everything by which an alert reaches a
// person: Prometheus firing it, Alertmanager holding it, a page, a chat
// message. Whatever is not one of the allowed alerts is a violation. An
// alert only pending is not one: a condition true for less than its `for:`
// (on a loaded 2-core machine a scrape slower than the tests' 1 s interval
// makes up 0 once) is what `for:` is there to absorb; it is counted and
// logged.
type quietWatch struct {
	allowed []alertKey
	start   time.Time

	mu         sync.Mutex
	violations []string
	pending    map[string]int // alert labels -> seconds seen pending

	done, watched chan struct{}
}

func watchQuiet(prom *Prometheus, am *Alertmanager, pd *FakePagerDuty, chat *FakeChat, allowed ...alertKey) *quietWatch {
	w := &quietWatch{allowed: allowed, start: time.Now(), pending: map[string]int{},
		done: make(chan struct{}), watched: make(chan struct{})}
	go func() {
		defer close(w.watched)
		tick := time.NewTicker(time.Second) // a sampling interval, not a wait for a condition
		defer tick.Stop()
		for {
			w.sample(prom, am, pd, chat)
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *quietWatch) sample(prom *Prometheus, am *Alertmanager, pd *FakePagerDuty, chat *FakeChat) {
	alerts, err := prom.Alerts()
	if err != nil {
		w.violate("Prometheus alerts: %v", err)
	}
	for _, a := range alerts {
		l, _ := a["labels"].(map[string]any)
		name, _ := l["alertname"].(string)
		inst, _ := l["instance"].(string)
		switch {
		case w.allows(name, inst):
		case a["state"] == "firing":
			w.violate("Prometheus fires %v", l)
		default:
			w.mu.Lock()
			w.pending[fmt.Sprint(l)]++
			w.mu.Unlock()
		}
	}
	ams, err := am.Alerts()
	if err != nil {
		w.violate("Alertmanager alerts: %v", err)
	}
	for _, a := range ams {
		if !w.allows(a.Labels["alertname"], a.Labels["instance"]) {
			w.violate("Alertmanager has %v", a.Labels)
		}
	}
	for _, ev := range pd.Events() {
		if ev.Payload != nil && !w.allowsSource(ev.Payload.Source) {
			w.violate("PagerDuty got %s %q from %s", ev.EventAction, ev.Payload.Summary, ev.Payload.Source)
		}
	}
	for _, title := range chat.Titles() {
		if !w.allowsTitle(title) {
			w.violate("the chat got %q", title)
		}
	}
}

func (w *quietWatch) allows(alert, instance string) bool {
	for _, k := range w.allowed {
		if k.alert == alert && k.instance == instance {
			return true
		}
	}
	return false
}

// allowsSource: a page carries its host as source, not its alert name.
func (w *quietWatch) allowsSource(source string) bool {
	for _, k := range w.allowed {
		if k.instance == source {
			return true
		}
	}
	return false
}

// allowsTitle: the example's chat titles read "[severity] Alert on instance".
func (w *quietWatch) allowsTitle(title string) bool {
	for _, k := range w.allowed {
		if strings.Contains(title, k.alert+" on "+k.instance) {
			return true
		}
	}
	return false
}

func (w *quietWatch) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) < 20 {
		w.violations = append(w.violations, fmt.Sprintf("after %s: ", time.Since(w.start).Round(time.Second))+fmt.Sprintf(format, args...))
	}
}

// Stop ends the watch, logs what was only pending and returns the
// violations.
func (w *quietWatch) Stop(t *testing.T) []string {
	t.Helper()
	close(w.done)
	<-w.watched
	w.mu.Lock()
	defer w.mu.Unlock()
	for a, n := range w.pending {
		t.Logf("pending (never firing) for %ds: %s", n, a)
	}
	return w.violations
}
