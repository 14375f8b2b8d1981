// Package server holds the HTTP side of panther-exporter: the metrics
// handler with collect[]/exclude[] filtering and a request limit, and the
// landing page that shows every collector's state.
package server

import (
	"bytes"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/pantheros/monitoring/exporter/collector"
)

// Config is what the handler needs to know.
type Config struct {
	Logger        *slog.Logger
	Scraper       *collector.Scraper
	Exporter      prometheus.Gatherer // go, process, build info and sink metrics
	TelemetryPath string
	MaxRequests   int      // concurrent scrapes; beyond it, 503
	AllCollectors []string // every registered collector, for the landing page
	Version       string
}

// New returns the exporter's whole HTTP handler.
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(cfg.TelemetryPath, limit(cfg.MaxRequests, &metricsHandler{cfg: cfg}))
	if cfg.TelemetryPath != "/" {
		mux.Handle("/", &landingHandler{cfg: cfg})
	}
	return mux
}

// limit answers 503 to requests beyond max in flight, as promhttp's
// MaxRequestsInFlight does, but shared by filtered and unfiltered scrapes.
func limit(max int, next http.Handler) http.Handler {
	if max <= 0 {
		return next
	}
	slots := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", max),
				http.StatusServiceUnavailable)
		}
	})
}

type metricsHandler struct{ cfg Config }

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reg, err := h.cfg.Scraper.Filter(q["collect[]"], q["exclude[]"])
	if err != nil {
		http.Error(w, "Couldn't create filtered metrics handler: "+err.Error(), http.StatusBadRequest)
		return
	}
	collectors := prometheus.NewRegistry()
	collectors.MustRegister(reg)
	gatherers := prometheus.Gatherers{collectors}
	if h.cfg.Exporter != nil {
		gatherers = append(gatherers, h.cfg.Exporter)
	}
	promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(h.cfg.Logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP(w, r)
}

type landingHandler struct{ cfg Config }

var statusTable = template.Must(template.New("collectors").Parse(`
<h2>Collectors</h2>
<table class="collectors">
<tr><th>collector</th><th>state</th><th>last run</th></tr>
{{range .}}<tr><td>{{.Name}}</td><td class="{{.Class}}">{{.State}}</td><td>{{.LastRun}}</td></tr>
{{end}}</table>`))

type statusRow struct{ Name, State, Class, LastRun string }

func (h *landingHandler) rows() []statusRow {
	enabled := map[string]collector.Status{}
	for _, s := range h.cfg.Scraper.Statuses() {
		enabled[s.Name] = s
	}
	var rows []statusRow
	for _, name := range h.cfg.AllCollectors {
		s, on := enabled[name]
		row := statusRow{Name: name, State: "disabled", Class: "off", LastRun: "-"}
		switch {
		case !on:
		case s.LastRun.IsZero():
			row.State, row.Class = "enabled, not run yet", "ok"
		case s.LastError != "":
			row.State, row.Class = "failing: "+s.LastError, "err"
		default:
			row.State, row.Class = "ok", "ok"
		}
		if on && s.Note != "" {
			row.State += " (" + s.Note + ")"
		}
		if on && !s.LastRun.IsZero() {
			row.LastRun = s.LastRun.UTC().Format(time.RFC3339)
		}
		rows = append(rows, row)
	}
	return rows
}

func (h *landingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var table bytes.Buffer
	if err := statusTable.Execute(&table, h.rows()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The toolkit renders a static page; render it per request so the
	// collector table is current. It is small and rarely fetched.
	page, err := web.NewLandingPage(web.LandingConfig{
		Name:        "panther-exporter",
		Description: "pantherOS host exporter: system, Btrfs, Podman, boot and Nix metrics",
		Version:     h.cfg.Version,
		Links:       []web.LandingLinks{{Address: h.cfg.TelemetryPath, Text: "Metrics"}},
		ExtraHTML:   table.String(),
		Profiling:   "false",
		ExtraCSS:    `table.collectors td.err{color:#b00} table.collectors td.off{color:#888} table.collectors td,table.collectors th{padding:2px 10px;text-align:left}`,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	page.ServeHTTP(w, r)
}
